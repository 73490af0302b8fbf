/* seccomp filters in every thread: kernel TSYNC first, a diverging
 * sibling's TID reported, force-add on request, exact errors. */
#include "sec_common.h"

#include <stdio.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define SECCOMP_FILTER_FLAG_LOG_ (1u << 1)
#define SECCOMP_FILTER_FLAG_NEW_LISTENER_ (1u << 3)

static int try_getpgrp(void)
{
	errno = 0;
	return syscall(SYS_getpgrp) < 0 ? errno : 0;
}

static void need_nnp(void)
{
	PW_EQ_LONG(procwide_no_new_privs(), 0);
}

static void tsync_every_thread(void)
{
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	sw_expect(sw_try_getppid, 0, "getppid before");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, 0, NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 9);
	PW_EQ_LONG(sw_all_status("Seccomp_filters", "1"), 9);
	sw_status_is(raw, "Seccomp", "2");
	sw_expect(sw_try_getppid, ENOTTY, "getppid after");
	/* A second filter on top: the chain is shared, TSYNC works again. */
	static struct sw_filter g;
	sw_filter_init(&g, SYS_getpgrp, EXDEV);
	PW_EQ_LONG(procwide_seccomp_load_ex(&g.prog, SECCOMP_FILTER_FLAG_LOG_, NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(sw_all_status("Seccomp_filters", "2"), 9);
	sw_expect(try_getpgrp, EXDEV, "getpgrp after the second");
}

static void tsync_copies_nnp_for_root(void)
{
	if (!pw_have_cap(21 /* CAP_SYS_ADMIN */))
		pw_skip("without no_new_privs a filter needs CAP_SYS_ADMIN (root)");
	sw_start(2, 2);
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	PW_EQ_LONG(procwide_seccomp_load(&f.prog, 0), 0);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "0"), 5);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 5);
	sw_expect(sw_try_getppid, ENOTTY, "getppid");
}

/* ---- a sibling with its own filter (syd-style per-thread confinement) --- */
#define start_self_confining sw_start_self_confining

static void divergence_reported(void)
{
	sw_start(4, 2);
	pid_t odd = start_self_confining();
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, 0, NULL, &rep), -ESRCH);
	PW_EQ_LONG(rep.tid, odd);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(rep.verified, 0);
	PW_CHECK(strstr(rep.message, "FORCE_ADD"), "%s", rep.message);
	/* Nothing changed: the others have no filter, the odd one its own. */
	PW_EQ_LONG(sw_all_status_except("Seccomp", "0", odd), 7);
	sw_status_is(odd, "Seccomp", "2");
	sw_expect(sw_try_getppid, 0, "getppid");
	/* With NEW_LISTENER the kernel says ESRCH without naming it. */
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, SECCOMP_FILTER_FLAG_NEW_LISTENER_, NULL, &rep),
		   -ESRCH);
	PW_EQ_LONG(rep.tid, 0);
}

static void force_add_composes(void)
{
	sw_start(4, 2);
	pid_t raw = pw_start_raw_thread();
	pid_t odd = start_self_confining();
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, 0, &o, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	PW_EQ_LONG(rep.tid, odd); /* the thread that diverged, for the record */
	/* Every thread has the new filter; the odd one keeps its own too. */
	sw_status_is(odd, "Seccomp_filters", "2");
	sw_status_is(raw, "Seccomp_filters", "1");
	sw_status_is(pw_gettid(), "Seccomp_filters", "1");
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 9);
	sw_expect(sw_try_getppid, ENOTTY, "getppid");
	sw_expect(try_getpgrp, 0, "getpgrp (only the odd thread denies it)");
	/* FORCE_ADD when there is no divergence: TSYNC, the kernel path. */
	static struct sw_filter g;
	sw_filter_init(&g, SYS_getuid, EXDEV);
	PW_EQ_LONG(procwide_seccomp_load_ex(&g.prog, 0, &o, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE); /* the odd one still diverges */
	sw_status_is(odd, "Seccomp_filters", "3");
}

static void force_add_without_divergence_uses_tsync(void)
{
	sw_start(2, 2);
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, 0, &o, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(rep.tid, 0);
	PW_EQ_LONG(sw_all_status("Seccomp_filters", "1"), 5);
}

static void listener_returns_fd(void)
{
	sw_start(2, 1);
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	f.insn[5].k = 0x7fc00000u; /* user notification: never reached here */
	f.insn[4].k = (uint32_t)SYS_getpgid;
	struct procwide_sec_report rep = {.size = sizeof rep};
	int fd = procwide_seccomp_load_ex(&f.prog, SECCOMP_FILTER_FLAG_NEW_LISTENER_, NULL, &rep);
	PW_CHECK(fd >= 0, "listener: %d (%s)", fd, rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 4);
	PW_EQ_LONG(fcntl(fd, F_GETFD) >= 0, 1);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, SECCOMP_FILTER_FLAG_NEW_LISTENER_, &o, NULL),
		   -EINVAL);
}

static void bad_input(void)
{
	sw_start(2, 1);
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	if (!pw_have_cap(21)) {
		/* Neither no_new_privs nor CAP_SYS_ADMIN: the kernel's EACCES. */
		PW_EQ_LONG(procwide_seccomp_load(&f.prog, 0), -EACCES);
	}
	need_nnp();
	PW_EQ_LONG(procwide_seccomp_load(NULL, 0), -EFAULT);
	PW_EQ_LONG(procwide_seccomp_load(&f.prog, 1u << 20), -EINVAL);
	struct sock_fprog empty = {0, f.insn};
	PW_EQ_LONG(procwide_seccomp_load(&empty, 0), -EINVAL);
	struct sw_filter bad = f;
	bad.prog.filter = bad.insn;
	bad.insn[6].code = 0xff; /* not an instruction */
	PW_EQ_LONG(procwide_seccomp_load(&bad.prog, 0), -EINVAL);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = 1u << 5};
	PW_EQ_LONG(procwide_seccomp_load_ex(&f.prog, 0, &o, NULL), -EINVAL);
	/* Nothing changed anywhere. */
	PW_EQ_LONG(sw_all_status("Seccomp", "0"), 4);
	sw_expect(sw_try_getppid, 0, "getppid");
}

/* More threads than the verifier keeps status files open for (half of
 * RLIMIT_NOFILE, lowered here to 512): the rest are read again at check
 * time. */
static void force_add_many_threads(void)
{
	struct rlimit rl;
	PW_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
	rl.rlim_cur = 512;
	PW_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
	sw_start(4, 400);
	pid_t odd = start_self_confining();
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD,
				      .deadline_ms = 5000};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_seccomp_load_ex(&f.prog, 0, &o, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 406);
	PW_EQ_LONG(sw_all_status_except("Seccomp_filters", "1", odd), 405);
	sw_status_is(odd, "Seccomp_filters", "2");
	sw_expect(sw_try_getppid, ENOTTY, "getppid");
	PW_EQ_LONG(sw_nthreads(), 406);
}

/* ---- threads that block every signal ----------------------------------- */
/* The kernel path: TSYNC reaches the two workers that block every signal by
 * itself (no_new_privs before it goes through the engine, so through the
 * ptrace helper for them).  Each then gets the filter's errno. */
static void tsync_reaches_blocked_thread(void)
{
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	need_nnp();
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 11);
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	sw_expect(sw_try_getppid, 0, "getppid before");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_seccomp_load_ex(&f.prog, 0, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 11);
	PW_EQ_LONG(sw_all_status("Seccomp_filters", "1"), 11);
	for (int i = 0; i < 2; i++) {
		sw_status_is(blk[i], "Seccomp", "2");
		sw_status_is(blk[i], "Seccomp_filters", "1");
	}
	sw_status_is(raw, "Seccomp_filters", "1");
	sw_expect(sw_try_getppid, ENOTTY, "getppid after");
	sw_blocked_intact();
}

/* The engine path: FORCE_ADD with a diverging sibling installs the filter
 * in each thread, through the ptrace helper for the two workers that block
 * every signal.  Each then gets the filter's errno. */
static void force_add_reaches_blocked_thread(void)
{
	sw_start(4, 2);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	pid_t odd = start_self_confining();
	need_nnp();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	sw_expect(sw_try_getppid, 0, "getppid before");
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_seccomp_load_ex(&f.prog, 0, &o, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(rep.tid, odd);
	sw_status_is(odd, "Seccomp_filters", "2");
	PW_EQ_LONG(sw_all_status_except("Seccomp_filters", "1", odd), 10);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 11);
	for (int i = 0; i < 2; i++) {
		sw_status_is(blk[i], "Seccomp", "2");
		sw_status_is(blk[i], "Seccomp_filters", "1");
	}
	sw_status_is(raw, "Seccomp_filters", "1");
	sw_expect(sw_try_getppid, ENOTTY, "getppid after");
	sw_expect(try_getpgrp, 0, "getpgrp (only the odd thread denies it)");
	sw_blocked_intact();
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(tsync_every_thread),
		PW_CASE(tsync_copies_nnp_for_root),
		PW_CASE(divergence_reported),
		PW_CASE(force_add_composes),
		PW_CASE(force_add_without_divergence_uses_tsync),
		PW_CASE(tsync_reaches_blocked_thread),
		PW_CASE(force_add_reaches_blocked_thread),
		PW_CASE(listener_returns_fd),
		PW_CASE(bad_input),
		PW_CASE_T(force_add_many_threads, 60),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
