/* SPDX-License-Identifier: MIT */
/* A seccomp filter in every thread.  Kernel first: SECCOMP_FILTER_FLAG_TSYNC
 * installs it on every thread atomically (Linux 3.17).  TSYNC fails, and
 * changes nothing, when a sibling has a filter of its own that is not an
 * ancestor of the caller's (syd-style pools whose threads confine
 * themselves): the kernel returns that thread's TID.  That is reported; on
 * explicit request (PROCWIDE_SEC_SECCOMP_FORCE_ADD) the filter is instead
 * added in each thread on top of whatever it already has, through the
 * engine: the "force-add, compose with existing filters" semantics of the
 * 2014 TSYNC discussion, which the kernel itself never offered. */
#include "security.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 1: TSYNC works, 0: it does not, -1: not probed yet. */
static atomic_int pws_tsync_state = -1;

/* seccomp(SET_MODE_FILTER, TSYNC, NULL) cannot take effect: EFAULT where
 * TSYNC is known, EINVAL where it is not. */
static bool pws_have_tsync(void)
{
	int s = atomic_load(&pws_tsync_state);
	if (s < 0) {
		long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
				 NULL);
		s = r < 0 && errno == EFAULT;
		atomic_store(&pws_tsync_state, s);
	}
	return s == 1;
}

struct pws_seccomp_want {
	bool force_add;
	bool nnp; /* the caller has no_new_privs: every thread must */
};

static int check_seccomp(const struct procwide_audit_thread *t,
			 const struct procwide_audit_thread *caller,
			 const struct pws_verify_thread *before, const void *arg, char *why,
			 size_t whysz)
{
	const struct pws_seccomp_want *w = arg;
	if (t->seccomp != 2) {
		snprintf(why, whysz, "Seccomp is %d, not 2 (filter)", t->seccomp);
		return 1;
	}
	if (!(t->present & (1u << PROCWIDE_AUDIT_SECCOMP_FILTERS))) {
		/* Linux < 5.9 has no count: the mode is all there is to see. */
	} else if (w->force_add) {
		/* One more filter than before, in every thread; a thread born
		 * since inherited its creator's filters, at least the new one. */
		int want = before && before->have_before ? before->seccomp_filters + 1 : 1;
		if (before && before->have_before ? t->seccomp_filters != want
						  : t->seccomp_filters < want) {
			snprintf(why, whysz, "Seccomp_filters is %d, expected %d", t->seccomp_filters,
				 want);
			return 1;
		}
	} else if (t->seccomp_filters != caller->seccomp_filters) {
		/* TSYNC gives every thread the caller's filter chain. */
		snprintf(why, whysz, "Seccomp_filters is %d, the caller's is %d", t->seccomp_filters,
			 caller->seccomp_filters);
		return 1;
	}
	if (w->nnp && t->no_new_privs != 1) {
		snprintf(why, whysz, "NoNewPrivs is %d, the caller has it", t->no_new_privs);
		return 1;
	}
	return 0;
}

int procwide__seccomp_apply(struct pws_ctx *ctx, const struct sock_fprog *prog, unsigned int flags,
			    struct pws_verify *v)
{
	int err;
	bool listener = flags & SECCOMP_FILTER_FLAG_NEW_LISTENER;
	bool force = ctx->flags & PROCWIDE_SEC_SECCOMP_FORCE_ADD;
	/* One listener descriptor per thread would mean nothing. */
	if (listener && force) {
		procwide__sec_msg(ctx, "procwide_seccomp_load: FORCE_ADD cannot be combined with "
				       "SECCOMP_FILTER_FLAG_NEW_LISTENER");
		return -EINVAL;
	}
	flags &= ~(unsigned int)(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH);
	struct pws_seccomp_want w = {.force_add = false, .nnp = procwide__sec_have_nnp()};
	long ret = 0;
	if (pws_have_tsync()) {
		unsigned long kflags = flags | SECCOMP_FILTER_FLAG_TSYNC;
		if (listener)
			kflags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
		ctx->path = PROCWIDE_SEC_PATH_KERNEL; /* also on error: what was tried */
		ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, kflags, prog);
		if (ret < 0 && !(listener && errno == ESRCH))
			return -errno;
		/* Without TSYNC_ESRCH, a positive value is the TID of a thread
		 * whose own filter diverges; with it, -1/ESRCH says the same
		 * without naming the thread.  Nothing was installed. */
		bool diverged = listener ? ret < 0 : ret > 0;
		if (!diverged)
			goto verify;
		ctx->tid = listener ? 0 : (pid_t)ret;
		if (!force) {
			if (ctx->tid)
				procwide__sec_msg(ctx, "seccomp TSYNC: thread %d has a filter of its "
						       "own that is not an ancestor of the caller's; "
						       "nothing changed (PROCWIDE_SEC_SECCOMP_FORCE_ADD "
						       "adds the filter on top of each thread's own)",
						  (int)ctx->tid);
			else
				procwide__sec_msg(ctx, "seccomp TSYNC: a thread has a filter of its "
						       "own that is not an ancestor of the caller's; "
						       "nothing changed");
			return -ESRCH;
		}
		ret = 0; /* report->tid keeps naming the diverging thread */
	} else if (listener) {
		/* No TSYNC: a per-thread listener would be meaningless. */
		return -EOPNOTSUPP;
	}
	/* Force-add (or no TSYNC in this kernel): the filter in each thread,
	 * on top of its own.  First no_new_privs everywhere when the caller
	 * has it, as TSYNC would have copied it. */
	w.force_add = true;
	ctx->path = PROCWIDE_SEC_PATH_ENGINE;
	err = procwide__sec_copy_nnp(ctx);
	if (!err)
		err = procwide__sec_engine(ctx, SYS_seccomp, SECCOMP_SET_MODE_FILTER, (long)flags,
					   (long)prog, 0, 0);
	if (err)
		return err;
verify:
	err = procwide__verify_check(v, ctx, check_seccomp, &w);
	if (err) {
		if (listener && ret >= 0)
			close((int)ret);
		return err;
	}
	return listener ? (int)ret : 0;
}

int procwide_seccomp_load_ex(const struct sock_fprog *prog, unsigned int flags,
			     const struct procwide_sec_opts *opts, struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_seccomp_load", opts,
				      PROCWIDE_SEC_SECCOMP_FORCE_ADD, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* The status files are opened before the filter is installed: the
	 * filter may deny opening them later.  After a Landlock domain that
	 * denies /proc this open fails, before anything changed; the policy
	 * call (procwide_apply_policy) opens them before its Landlock step. */
	struct pws_verify v;
	err = procwide__verify_open(&v, true);
	if (err) {
		procwide__sec_msg(&ctx, "cannot open /proc/self/task to verify (a Landlock domain "
					"denies it? procwide_apply_policy opens it before "
					"enforcing): %s",
				  strerror(-err));
		return procwide__sec_end(&ctx, err);
	}
	err = procwide__seccomp_apply(&ctx, prog, flags, &v);
	procwide__verify_close(&v);
	return procwide__sec_end(&ctx, err);
}

int procwide_seccomp_load(const struct sock_fprog *prog, unsigned int flags)
{
	return procwide_seccomp_load_ex(prog, flags, NULL, NULL);
}
