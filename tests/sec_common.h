/* Shared by the process-wide security tests (header only, static): worker
 * threads that attempt an operation on request and record its errno, busy
 * threads spinning on an atomic flag, threads that block every signal (only
 * the ptrace helper reaches them), a raw clone() thread, /proc checks, and a
 * small seccomp filter built by hand (musl has no <linux/filter.h>). */
#ifndef PW_SEC_COMMON_H
#define PW_SEC_COMMON_H

#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- workers: odd ones spin (busy), even ones poll with a short sleep --- */
#define SW_MAX 8
static atomic_int sw_gen, sw_done, sw_ready;
static __attribute__((unused)) int (*volatile sw_fn)(void);
static atomic_int sw_result[SW_MAX];
static __attribute__((unused)) pid_t sw_tid[SW_MAX];
static __attribute__((unused)) int sw_n;

/* How a worker waits between requests. */
enum sw_kind {
	SW_POLLING,		/* usleep between looks at sw_gen */
	SW_BUSY,		/* spins on sw_gen */
	SW_BLOCKED_NANOSLEEP,	/* every signal blocked; nanosleep between looks */
	SW_BLOCKED_FUTEX,	/* every signal blocked; a futex wait on sw_gen */
};
static __attribute__((unused)) enum sw_kind sw_kind[SW_MAX];

static __attribute__((unused)) const char *sw_kind_name(enum sw_kind k)
{
	switch (k) {
	case SW_POLLING:
		return "polling";
	case SW_BUSY:
		return "busy";
	case SW_BLOCKED_NANOSLEEP:
		return "blocking every signal, in nanosleep";
	case SW_BLOCKED_FUTEX:
		return "blocking every signal, in a futex wait";
	}
	return "?";
}

static __attribute__((unused)) void *sw_main(void *arg)
{
	long id = (long)arg;
	int seen = 0;
	sw_tid[id] = pw_gettid();
	atomic_fetch_add(&sw_ready, 1);
	for (;;) {
		int g;
		while ((g = atomic_load(&sw_gen)) == seen)
			if (!(id & 1))
				usleep(500);
		seen = g;
		atomic_store(&sw_result[id], sw_fn());
		atomic_fetch_add(&sw_done, 1);
	}
	return NULL;
}

/* ---- workers that block every signal (GHC's ticker, runtime threads) ----
 * They block every signal with the raw system call (the C library's
 * wrappers keep their own signals back), so neither procwide's signal nor
 * the C library's setxid broadcast reaches them: the ptrace helper must.
 * They then wait and, when sw_expect asks, attempt the operation with every
 * signal still blocked and record its errno like any worker.  A wait they
 * are in is never meant to end with EINTR: those are counted. */
static atomic_int sw_blocked_eintr;
static atomic_int sw_blocked_mask_err;

static __attribute__((unused)) void *sw_blocked_main(void *arg)
{
	long id = (long)arg;
	uint64_t all = ~0ULL;
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8) != 0)
		atomic_store(&sw_blocked_mask_err, errno);
	int seen = atomic_load(&sw_gen);
	sw_tid[id] = pw_gettid();
	atomic_fetch_add(&sw_ready, 1);
	for (;;) {
		int g;
		while ((g = atomic_load(&sw_gen)) == seen) {
			long r;
			if (sw_kind[id] == SW_BLOCKED_FUTEX) {
				r = syscall(SYS_futex, (void *)&sw_gen, 128 /* FUTEX_WAIT_PRIVATE */,
					    seen, NULL, NULL, 0);
			} else {
				struct timespec ts = {0, 1000000};
				r = nanosleep(&ts, NULL);
			}
			if (r != 0 && errno == EINTR)
				atomic_fetch_add(&sw_blocked_eintr, 1);
		}
		seen = g;
		atomic_store(&sw_result[id], sw_fn());
		atomic_fetch_add(&sw_done, 1);
	}
	return NULL;
}

/* The SigBlk every signal gives: all but SIGKILL and SIGSTOP. */
#define SW_SIGBLK_ALL "fffffffffffbfeff"

/* n workers (half busy) plus `idle` threads of the harness. */
static __attribute__((unused)) void sw_start(int n, size_t idle)
{
	PW_CHECK(n <= SW_MAX, "too many workers");
	pw_idle_start(idle);
	for (long i = 0; i < n; i++) {
		pthread_t t;
		sw_kind[i] = i & 1 ? SW_BUSY : SW_POLLING;
		PW_CHECK(pthread_create(&t, NULL, sw_main, (void *)i) == 0, "pthread_create");
		pthread_detach(t);
	}
	sw_n = n;
	while (atomic_load(&sw_ready) < n)
		usleep(1000);
}

/* Runs fn in every worker (and the caller) and checks that each returns
 * `want` (an errno value, 0 for success). */
static __attribute__((unused)) void sw_expect(int (*fn)(void), int want, const char *what)
{
	int mine = fn();
	PW_CHECK(mine == want, "%s in the caller: %d (%s), want %d", what, mine, strerror(mine), want);
	sw_fn = fn;
	atomic_store(&sw_done, 0);
	atomic_fetch_add(&sw_gen, 1);
	syscall(SYS_futex, (void *)&sw_gen, 129 /* FUTEX_WAKE_PRIVATE */, INT_MAX, NULL, NULL, 0);
	while (atomic_load(&sw_done) < sw_n)
		usleep(500);
	for (int i = 0; i < sw_n; i++) {
		int r = atomic_load(&sw_result[i]);
		PW_CHECK(r == want, "%s in worker %d (tid %d, %s): %d (%s), want %d", what, i,
			 sw_tid[i], sw_kind_name(sw_kind[i]), r, strerror(r), want);
	}
}

/* Adds a worker that blocks every signal and waits the way `kind` says
 * (after sw_start); sw_expect runs its operations too.  Returns its tid,
 * checked from /proc to block every signal. */
static __attribute__((unused)) pid_t sw_start_blocked(enum sw_kind kind)
{
	PW_CHECK(kind == SW_BLOCKED_NANOSLEEP || kind == SW_BLOCKED_FUTEX, "kind %d", (int)kind);
	PW_CHECK(sw_n < SW_MAX, "too many workers");
	long id = sw_n;
	sw_kind[id] = kind;
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, sw_blocked_main, (void *)id) == 0, "pthread_create");
	pthread_detach(t);
	sw_n++;
	while (atomic_load(&sw_ready) < sw_n)
		usleep(1000);
	PW_EQ_LONG(atomic_load(&sw_blocked_mask_err), 0);
	char v[64];
	PW_CHECK(pw_task_status(sw_tid[id], "SigBlk", v, sizeof v), "thread %d gone", sw_tid[id]);
	PW_CHECK(strcmp(v, SW_SIGBLK_ALL) == 0, "thread %d SigBlk %s", sw_tid[id], v);
	return sw_tid[id];
}

/* After the calls: every worker that blocked every signal still does (the
 * ptrace helper restored it exactly), and none of their waits saw EINTR.
 * Reads /proc: call it before anything forbids /proc. */
static __attribute__((unused)) void sw_blocked_intact(void)
{
	int n = 0;
	for (int i = 0; i < sw_n; i++) {
		if (sw_kind[i] != SW_BLOCKED_NANOSLEEP && sw_kind[i] != SW_BLOCKED_FUTEX)
			continue;
		char v[64];
		PW_CHECK(pw_task_status(sw_tid[i], "SigBlk", v, sizeof v), "thread %d gone",
			 sw_tid[i]);
		PW_CHECK(strcmp(v, SW_SIGBLK_ALL) == 0, "thread %d (%s) SigBlk %s", sw_tid[i],
			 sw_kind_name(sw_kind[i]), v);
		n++;
	}
	PW_CHECK(n > 0, "no worker blocks every signal");
	PW_EQ_LONG(atomic_load(&sw_blocked_eintr), 0);
}

static __attribute__((unused)) void sw_rtrim(char *v)
{
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n'))
		v[--n] = 0;
}

/* Removes path (rm -rf) once this case's process has exited: the harness
 * ends a case with _exit (no atexit), and a case that dropped root or
 * entered a Landlock domain could not remove it itself.  The cleaner is
 * forked before any change, so it keeps the caller's rights; it leaves the
 * case's process group so that the harness's final kill spares it. */
static __attribute__((unused)) void sw_remove_at_exit(const char *path)
{
	int p[2];
	PW_CHECK(pipe(p) == 0, "pipe");
	pid_t pid = fork();
	PW_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		setpgid(0, 0);
		close(p[1]);
		char c;
		while (read(p[0], &c, 1) > 0)
			;
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid); /* also here: the child may not have run yet */
	close(p[0]); /* p[1] stays open, without CLOEXEC, until this process ends */
}

/* ---- /proc --------------------------------------------------------------- */
/* Every live thread's status field equals want; returns how many threads. */
static __attribute__((unused)) size_t sw_all_status_except(const char *field, const char *want,
								pid_t except)
{
	static pid_t tids[2048];
	size_t n = pw_list_tids(tids, 2048), checked = 0;
	for (size_t i = 0; i < n; i++) {
		char v[512];
		if (pw_task_state(tids[i]) == 'Z' || tids[i] == except)
			continue;
		if (!pw_task_status(tids[i], field, v, sizeof v))
			continue;
		sw_rtrim(v);
		PW_CHECK(strcmp(v, want) == 0, "thread %d %s is \"%s\", want \"%s\"", tids[i], field,
			 v, want);
		checked++;
	}
	return checked;
}

static __attribute__((unused)) size_t sw_all_status(const char *field, const char *want)
{
	return sw_all_status_except(field, want, 0);
}

/* The status field of one thread. */
static __attribute__((unused)) void sw_status_is(pid_t tid, const char *field, const char *want)
{
	char v[512];
	PW_CHECK(pw_task_status(tid, field, v, sizeof v), "thread %d gone", tid);
	sw_rtrim(v);
	PW_CHECK(strcmp(v, want) == 0, "thread %d %s is \"%s\", want \"%s\"", tid, field, v, want);
}

static __attribute__((unused)) int sw_nthreads(void)
{
	static pid_t tids[2048];
	return (int)pw_list_tids(tids, 2048);
}

/* ---- seccomp: a filter that makes syscall `nr` fail with errno `e` -------- */
struct sw_sock_filter {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct sw_sock_filter *filter;
};

struct sw_filter {
	struct sw_sock_filter insn[7];
	struct sock_fprog prog;
};

static __attribute__((unused)) void sw_filter_init(struct sw_filter *f, long nr, int e)
{
	const struct sw_sock_filter insn[7] = {
		{0x20, 0, 0, 4},			 /* ld arch */
		{0x15, 1, 0, 0xc000003eu},		 /* jeq x86_64 */
		{0x06, 0, 0, 0x80000000u},		 /* kill process */
		{0x20, 0, 0, 0},			 /* ld nr */
		{0x15, 0, 1, (uint32_t)nr},		 /* jeq nr */
		{0x06, 0, 0, 0x00050000u | (uint32_t)e}, /* errno e */
		{0x06, 0, 0, 0x7fff0000u},		 /* allow */
	};
	memcpy(f->insn, insn, sizeof insn);
	f->prog.len = 7;
	f->prog.filter = f->insn;
}

static __attribute__((unused)) const char *sw_uid_line(unsigned int id)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "%u\t%u\t%u\t%u", id, id, id, id);
	return buf;
}


/* ---- a scratch tree and denied operations, shared by the tests --------- */
/* TREE/a/f lies inside the rulesets the tests build, TREE/b/f outside. */
static char sw_tree[64], sw_a_dir[96], sw_b_dir[96], sw_a_file[128], sw_b_file[128];

static __attribute__((unused)) void sw_tree_make(const char *prefix)
{
	snprintf(sw_tree, sizeof sw_tree, "/tmp/%s.XXXXXX", prefix);
	PW_CHECK(mkdtemp(sw_tree), "mkdtemp: %s", strerror(errno));
	sw_remove_at_exit(sw_tree);
	/* Readable by the uid a test may drop to. */
	PW_CHECK(chmod(sw_tree, 0755) == 0, "chmod");
	snprintf(sw_a_dir, sizeof sw_a_dir, "%s/a", sw_tree);
	snprintf(sw_b_dir, sizeof sw_b_dir, "%s/b", sw_tree);
	snprintf(sw_a_file, sizeof sw_a_file, "%s/f", sw_a_dir);
	snprintf(sw_b_file, sizeof sw_b_file, "%s/f", sw_b_dir);
	PW_CHECK(mkdir(sw_a_dir, 0755) == 0 && mkdir(sw_b_dir, 0755) == 0, "mkdir");
	const char *files[] = {sw_a_file, sw_b_file};
	for (int i = 0; i < 2; i++) {
		int fd = open(files[i], O_CREAT | O_WRONLY, 0644);
		PW_CHECK(fd >= 0, "create %s", files[i]);
		close(fd);
	}
}

/* 0, or the errno of opening p for reading. */
static __attribute__((unused)) int sw_open_errno(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static __attribute__((unused)) int sw_open_a(void) { return sw_open_errno(sw_a_file); }
static __attribute__((unused)) int sw_open_b(void) { return sw_open_errno(sw_b_file); }

static __attribute__((unused)) int sw_try_getppid(void)
{
	return syscall(SYS_getppid) < 0 ? errno : 0;
}

static __attribute__((unused)) int sw_try_setuid_root(void)
{
	return syscall(SYS_setresuid, 0, 0, 0) == 0 ? 0 : errno;
}

/* A thread that installs a seccomp filter of its own (getpgrp fails with
 * EXDEV) and sleeps: a thread whose filters diverge from the caller's, as
 * TSYNC refuses.  Returns its tid once the filter is in. */
static atomic_int sw_own_state; /* 1: installed, -1: failed */
static atomic_int sw_own_tid;

static void *sw_self_confining(void *arg)
{
	(void)arg;
	static struct sw_filter own;
	atomic_store(&sw_own_tid, pw_gettid());
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	sw_filter_init(&own, SYS_getpgrp, EXDEV);
	long r = syscall(SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, &own.prog);
	atomic_store(&sw_own_state, r == 0 ? 1 : -1);
	for (;;)
		pause();
	return NULL;
}

static __attribute__((unused)) pid_t sw_start_self_confining(void)
{
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, sw_self_confining, NULL) == 0, "create");
	while (!atomic_load(&sw_own_state))
		usleep(1000);
	PW_EQ_LONG(atomic_load(&sw_own_state), 1);
	return atomic_load(&sw_own_tid);
}

#endif
