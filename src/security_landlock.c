/* SPDX-License-Identifier: MIT */
/* A Landlock domain for every thread.  Kernel first: from Landlock ABI 8
 * (Linux 7.0) LANDLOCK_RESTRICT_SELF_TSYNC applies the caller's new domain
 * to every thread, all or nothing, and REPLACES each sibling's own domain
 * with the caller's.  Below ABI 8 the engine runs landlock_restrict_self in
 * each thread, which STACKS the new layer on each thread's own domain (a
 * sibling that was more restricted stays so).  Landlock has no /proc field:
 * on the engine path each thread's own result is the check (a thread whose
 * result differs from the caller's kills the process); on the kernel path
 * the kernel's all-or-nothing answer is. */
#include "inject.h"
#include "security.h"
#include "internal.h" /* procwide__lock, procwide__taskdir_ensure */

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 0: not probed yet; else the ABI, or -errno. */
static atomic_int pws_ll_abi;

int procwide__landlock_abi_probe(void)
{
	int abi = atomic_load(&pws_ll_abi);
	if (abi == 0) {
		/* Cannot take effect: only asks for the version. */
		long r = syscall(SYS_landlock_create_ruleset, NULL, 0,
				 LANDLOCK_CREATE_RULESET_VERSION);
		abi = r > 0 ? (int)r : r == 0 ? -ENOSYS : -errno;
		atomic_store(&pws_ll_abi, abi);
	}
	return abi;
}

int procwide_landlock_abi(void)
{
	return procwide__landlock_abi_probe();
}

/* The ABI that chooses between the kernel's TSYNC and the engine.  The test
 * hook PROCWIDE_TEST_LANDLOCK_ABI overrides it (secure_getenv: never in a
 * set-user-ID or otherwise AT_SECURE program).  It selects the path only,
 * never which access rights a ruleset gets: claiming 8 on an older kernel
 * makes the kernel refuse the TSYNC flag (fail closed); claiming less on a
 * newer one takes the engine path, which restricts every thread too. */
static int pws_ll_path_abi(void)
{
	static atomic_int cached; /* 0: not read yet */
	int abi = atomic_load(&cached);
	if (abi)
		return abi;
	abi = procwide__landlock_abi_probe();
	const char *o = secure_getenv("PROCWIDE_TEST_LANDLOCK_ABI");
	if (o && *o) {
		char *end;
		long v = strtol(o, &end, 10);
		if (!*end && v > 0 && v < 1000)
			abi = (int)v;
	}
	atomic_store(&cached, abi);
	return abi;
}

int procwide_landlock_restrict_ex(int ruleset_fd, unsigned int flags,
				  const struct procwide_sec_opts *opts,
				  struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_landlock_restrict", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* procwide decides how the other threads are reached. */
	flags &= ~PWS_LL_RESTRICT_SELF_TSYNC;
	int abi = pws_ll_path_abi();
	if (abi >= 8) {
		/* All or nothing in the kernel; no_new_privs is copied when
		 * the caller has it.  Thread count: the kernel's own. */
		ctx.path = PROCWIDE_SEC_PATH_KERNEL; /* also on error: what was tried */
		/* The engine finds threads through /proc/self/task, opened when
		 * the library loads and again after a fork: make sure it is
		 * open before a domain may forbid opening it. */
		pid_t pid = getpid();
		if (procwide__lock(pid, (pid_t)syscall(SYS_gettid)) == 0) {
			(void)procwide__taskdir_ensure(pid); /* under the engine's lock */
			procwide__unlock();
		}
		long r = syscall(SYS_landlock_restrict_self, ruleset_fd,
				 flags | PWS_LL_RESTRICT_SELF_TSYNC);
		if (r < 0) {
			err = -errno;
			procwide__sec_msg(&ctx, "landlock_restrict_self(TSYNC): %s%s", strerror(errno),
					  errno == EINVAL ? " (no Landlock ABI 8 in this kernel?)"
							  : "");
			return procwide__sec_end(&ctx, err);
		}
		if (ruleset_fd != -1)
			procwide__inject_split_domains(false); /* all in the caller's */
		ctx.verified = 1;
		struct pws_verify v;
		/* Counting may be denied by the new domain: the kernel's answer
		 * stands either way. */
		if (procwide__verify_open(&v, false) == 0) {
			ctx.nthreads = v.n;
			procwide__verify_close(&v);
		}
		return procwide__sec_end(&ctx, 0);
	}
	/* Engine path.  Every thread needs no_new_privs (or CAP_SYS_ADMIN):
	 * give it to all when the caller has it, as TSYNC would. */
	ctx.path = PROCWIDE_SEC_PATH_ENGINE;
	err = procwide__sec_copy_nnp(&ctx);
	if (!err)
		err = procwide__sec_engine(&ctx, SYS_landlock_restrict_self, ruleset_fd,
					   (long)flags, 0, 0, 0);
	if (!err)
		ctx.verified = 1; /* every thread's own result equalled the caller's 0 */
	return procwide__sec_end(&ctx, err);
}

int procwide_landlock_restrict(int ruleset_fd, unsigned int flags)
{
	return procwide_landlock_restrict_ex(ruleset_fd, flags, NULL, NULL);
}
