/* The direct path (enum procwide_mode): when procwide takes it, that the
 * call still reaches every thread, and what happens when a thread cannot be
 * reached after others have run the call (the process is killed). */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP_SYS_PTRACE 19

static char name[16];

/* Whether the last call reached a thread through ptrace: a thread that had
 * not yet run its start routine (glibc starts threads with every signal
 * blocked), or one that did not get a CPU within a millisecond on a loaded
 * machine, is reached that way, and the call after is then parked. */
static bool last_used_ptrace;
/* And how it was proven complete (enum procwide_proof). */
static int last_proof;

/* The path the next call with the kill policy takes, by the rule. */
static int next_mode(void)
{
	return last_used_ptrace ? PROCWIDE_MODE_PARKED : PROCWIDE_MODE_DIRECT;
}

/* Sets every thread's name with procwide_run (kill policy unless opts says
 * otherwise); returns the report's mode, checks that every thread ran it. */
static int set_names(const char *to, const struct procwide_opts *opts, int want_ret)
{
	snprintf(name, sizeof name, "%s", to);
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, opts, &rep), want_ret);
	/* Completed by parking or not, the call took the direct path. */
	int mode = rep.mode == PROCWIDE_MODE_DIRECT_THEN_PARKED ? PROCWIDE_MODE_DIRECT : rep.mode;
	last_proof = rep.proof;
	last_used_ptrace = false;
	for (size_t i = 0; i < rep.nthreads; i++)
		last_used_ptrace |= rep.threads[i].path == PROCWIDE_PATH_PTRACE;
	procwide_report_release(&rep);
	if (want_ret)
		return mode;
	pid_t tids[64];
	size_t n = pw_list_tids(tids, 64);
	for (size_t i = 0; i < n; i++) {
		char got[32];
		if (pw_task_comm(tids[i], got, sizeof got))
			PW_CHECK(strcmp(got, to) == 0, "thread %d is named %s, not %s", tids[i], got, to);
	}
	return mode;
}

static void first_call_parked_then_direct(void)
{
	struct pw_idle *idle = pw_idle_start(4);
	PW_EQ_LONG(set_names("pw-one", NULL, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(set_names("pw-two", NULL, 0), next_mode());
	PW_EQ_LONG(set_names("pw-three", NULL, 0), next_mode());
	/* procwide_syscall takes the same path. */
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)"pw-four", 0, 0, 0, 0), 0);
	pw_idle_stop(idle);
}

static void flags_and_report_policy_keep_it_parked(void)
{
	struct pw_idle *idle = pw_idle_start(3);
	PW_EQ_LONG(set_names("pw-a", NULL, 0), PROCWIDE_MODE_PARKED);
	struct procwide_opts o = {.size = sizeof o, .flags = PROCWIDE_ATOMIC};
	PW_EQ_LONG(set_names("pw-b", &o, 0), PROCWIDE_MODE_PARKED);
	o = (struct procwide_opts){.size = sizeof o, .mismatch = PROCWIDE_MISMATCH_REPORT};
	PW_EQ_LONG(set_names("pw-c", &o, 0), PROCWIDE_MODE_PARKED);
	o = (struct procwide_opts){.size = sizeof o, .flags = PROCWIDE_NO_PTRACE};
	PW_EQ_LONG(set_names("pw-d", &o, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(set_names("pw-e", NULL, 0), next_mode());
	/* After a call through ptrace alone, which threads block the signal is
	 * unknown: the next call is parked again. */
	o = (struct procwide_opts){.size = sizeof o, .flags = PROCWIDE_PTRACE_ALL};
	PW_EQ_LONG(set_names("pw-f", &o, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(set_names("pw-g", NULL, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(set_names("pw-h", NULL, 0), next_mode());
	pw_idle_stop(idle);
}

static void caller_failure_changes_nothing(void)
{
	struct pw_idle *idle = pw_idle_start(3);
	PW_EQ_LONG(set_names("pw-before", NULL, 0), PROCWIDE_MODE_PARKED);
	/* The next call would be direct: it fails in the caller (a bad
	 * pointer), before any other thread is signalled. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, 8}};
	struct procwide_report rep = {.size = sizeof rep};
	int want = next_mode();
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), -EFAULT);
	PW_EQ_LONG(rep.mode, want);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_CALLER_FAILED);
	procwide_report_release(&rep);
	pid_t tids[16];
	size_t n = pw_list_tids(tids, 16);
	PW_EQ_LONG(n, 4);
	for (size_t i = 0; i < n; i++) {
		char got[32];
		PW_CHECK(pw_task_comm(tids[i], got, sizeof got) && strcmp(got, "pw-before") == 0,
			 "thread %d changed to %s", tids[i], got);
	}
	/* A failed call is not a success: the next one is parked. */
	PW_EQ_LONG(set_names("pw-after", NULL, 0), PROCWIDE_MODE_PARKED);
	pw_idle_stop(idle);
}

/* ---- the proof by the machine's count of created tasks ------------------ */

/* Few enough threads for set_names to check each.  Every case runs with
 * PROCWIDE_TEST_FORK_COUNT_ALWAYS=1, so that the count is read whatever it
 * costs on this machine. */
#define PW_MANY_IDLE 56
#define PW_ALWAYS "PROCWIDE_TEST_FORK_COUNT_ALWAYS"

/* Runs the case again with the count always read; true in that run. */
static bool with_count_always_read(const char *case_name)
{
	if (getenv(PW_ALWAYS))
		return true;
	pw_rerun_with(case_name, PW_ALWAYS);
	return false;
}

/* The machine's count of created tasks, read as procwide reads it (the
 * kernel's own /proc/stat, nothing mounted over it); false if it cannot
 * be (openat2 missing or refused, a file mounted over /proc/stat). */
static bool machine_forks(unsigned long long *count)
{
	struct {
		uint64_t flags, mode, resolve;
	} how = {O_RDONLY | O_CLOEXEC, 0, 0x01 | 0x04 /* RESOLVE_NO_XDEV | _NO_SYMLINKS */};
	int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0)
		return false;
	struct stat st;
	struct statfs fs;
	if (fstat(proc, &st) != 0 || st.st_ino != 1 || fstatfs(proc, &fs) != 0 ||
	    fs.f_type != 0x9fa0 /* PROC_SUPER_MAGIC */) {
		close(proc);
		return false;
	}
	int fd = (int)syscall(437 /* openat2 */, proc, "stat", &how, sizeof how);
	close(proc);
	if (fd < 0)
		return false;
	static char buf[1 << 20];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	char *p = strstr(buf, "\nprocesses ");
	if (!p)
		return false;
	*count = strtoull(p + sizeof "\nprocesses " - 1, NULL, 10);
	return true;
}

/* Calls until one is proven by the count of created tasks: the first is
 * parked, the second direct and proven by listing; after that the count
 * moves only if a task was created somewhere on the machine.  Whenever the
 * count was the same before call i-1 and after call i, call i-1 proven and
 * neither reaching a thread through ptrace, call i must have been proven
 * by it.  A machine that creates tasks all the time never lets that happen
 * in 200 calls: the case is skipped, saying so. */
static void *no_op(void *arg)
{
	return arg;
}

static void until_proven_by_fork_count(const char *prefix)
{
	unsigned long long before_prev, before_this, after;
	if (!machine_forks(&before_prev))
		pw_skip("/proc/stat cannot be opened as procwide opens it (openat2, procfs root)");
	/* procwide trusts only a count that moves (not gVisor's constant 0). */
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, no_op, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	PW_CHECK(machine_forks(&after), "/proc/stat");
	if (after == before_prev)
		pw_skip("the count of created tasks in /proc/stat did not move for a new thread");
	char to[32];
	snprintf(to, sizeof to, "%s-0", prefix);
	PW_EQ_LONG(set_names(to, NULL, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(last_proof, PROCWIDE_PROOF_PARKED);
	int prev_proof = last_proof;
	bool prev_ptrace = last_used_ptrace;
	PW_CHECK(machine_forks(&before_prev), "/proc/stat");
	int prev_mode = PROCWIDE_MODE_PARKED;
	for (int i = 1; i < 200; i++) {
		PW_CHECK(machine_forks(&before_this), "/proc/stat");
		snprintf(to, sizeof to, "%s-%d", prefix, i);
		int mode = set_names(to, NULL, 0);
		PW_CHECK(last_proof != PROCWIDE_PROOF_NONE, "call %d not proven", i);
		PW_CHECK(machine_forks(&after), "/proc/stat");
		/* procwide read the count within call i-1 and within call i: the
		 * same if it did not move from before the one to after the
		 * other. */
		/* Both direct: a call after one where ptrace refused a thread
		 * (which then answered the signal) is parked. */
		if (after == before_prev && !prev_ptrace && !last_used_ptrace &&
		    prev_mode == PROCWIDE_MODE_DIRECT && mode == PROCWIDE_MODE_DIRECT &&
		    (prev_proof == PROCWIDE_PROOF_LISTING || prev_proof == PROCWIDE_PROOF_FORK_COUNT)) {
			PW_CHECK(last_proof == PROCWIDE_PROOF_FORK_COUNT,
				 "call %d proven by %d with no task created since call %d began", i,
				 last_proof, i - 1);
			pw_diag("proven by the count of created tasks at call %d", i);
			return;
		}
		before_prev = before_this;
		prev_proof = last_proof;
		prev_ptrace = last_used_ptrace;
		prev_mode = mode;
	}
	pw_skip("tasks were created on this machine during every two calls in a row, 200 calls");
}

static void calls_in_a_row_skip_the_listing(void)
{
	if (!with_count_always_read("calls_in_a_row_skip_the_listing"))
		return;
	struct pw_idle *idle = pw_idle_start(PW_MANY_IDLE);
	until_proven_by_fork_count("pw-row");
	pw_idle_stop(idle);
}

static void *sleeper(void *arg)
{
	atomic_store((atomic_int *)arg, (int)syscall(SYS_gettid));
	for (;;)
		pause();
	return NULL;
}

static pid_t start_sleeper(void)
{
	static atomic_int tid;
	atomic_store(&tid, 0);
	pthread_t t;
	return pw_start_thread(&t, sleeper, &tid, &tid);
}

/* A thread made between two calls moves the count: the second call lists
 * the threads, and reaches the new one.  A count not checked would leave
 * it out (it is not among the threads the first call knew). */
static void thread_made_between_calls_is_reached(bool raw)
{
	if (!with_count_always_read(raw ? "raw_thread_made_between_calls_is_reached"
					: "pthread_made_between_calls_is_reached"))
		return;
	struct pw_idle *idle = pw_idle_start(PW_MANY_IDLE);
	until_proven_by_fork_count(raw ? "pw-raw" : "pw-new");
	pid_t made = raw ? pw_start_raw_thread() : start_sleeper();
	PW_EQ_LONG(set_names("pw-after", NULL, 0), next_mode());
	PW_CHECK(last_proof == PROCWIDE_PROOF_LISTING || last_proof == PROCWIDE_PROOF_PARKED,
		 "proven by %d after a thread was made", last_proof);
	char got[32];
	PW_CHECK(pw_task_comm(made, got, sizeof got), "thread %d gone", (int)made);
	PW_CHECK(strcmp(got, "pw-after") == 0, "thread %d made between the calls is named %s",
		 (int)made, got);
	pw_idle_stop(idle);
}

static void pthread_made_between_calls_is_reached(void)
{
	thread_made_between_calls_is_reached(false);
}

static void raw_thread_made_between_calls_is_reached(void)
{
	thread_made_between_calls_is_reached(true);
}

/* A /proc/stat that is not the kernel's (a container manager's, mounted
 * over it) is not trusted: here, once procwide has loaded, its count moves
 * once and then never again, as if no task were ever created. */
static void fake_proc_stat_is_not_trusted(void)
{
	if (!getenv("PW_TEST_FAKE_PROC_STAT")) {
		if (getuid() != 0)
			pw_skip("mounting a file over /proc/stat needs root in a new mount namespace");
		char path[] = "/tmp/pw-fake-stat-XXXXXX";
		int fd = mkstemp(path);
		PW_CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
		const char text[] = "cpu  1 0 1 1 0 0 0 0 0 0\nprocesses 7\n";
		PW_CHECK(write(fd, text, sizeof text - 1) == (ssize_t)sizeof text - 1, "write");
		close(fd);
		if (unshare(CLONE_NEWNS) != 0) {
			int e = errno;
			unlink(path);
			if (e == EPERM)
				pw_skip("no new mount namespace for this root (CAP_SYS_ADMIN missing)");
			PW_CHECK(false, "unshare: %s", strerror(e));
		}
		PW_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "mount private");
		PW_CHECK(mount(path, "/proc/stat", NULL, MS_BIND, NULL) == 0, "bind: %s",
			 strerror(errno));
		unlink(path);
		/* procwide opens /proc/stat when it loads: in a new program. */
		PW_CHECK(setenv(PW_ALWAYS, "1", 1) == 0, "setenv");
		pw_rerun_with("fake_proc_stat_is_not_trusted", "PW_TEST_FAKE_PROC_STAT");
		return;
	}
	int fd = open("/proc/stat", O_RDWR | O_TRUNC);
	const char moved[] = "cpu  1 0 1 1 0 0 0 0 0 0\nprocesses 8\n";
	PW_CHECK(fd >= 0 && write(fd, moved, sizeof moved - 1) == (ssize_t)sizeof moved - 1,
		 "rewrite the fake /proc/stat: %s", strerror(errno));
	close(fd);
	char now[128] = "";
	fd = open("/proc/stat", O_RDONLY);
	PW_CHECK(fd >= 0 && read(fd, now, sizeof now - 1) > 0, "read /proc/stat");
	close(fd);
	PW_CHECK(strstr(now, "\nprocesses 8\n") != NULL, "/proc/stat is not the fake one: %s", now);
	struct pw_idle *idle = pw_idle_start(PW_MANY_IDLE);
	char to[32];
	for (int i = 0; i < 6; i++) {
		snprintf(to, sizeof to, "pw-fake-%d", i);
		set_names(to, NULL, 0);
		PW_CHECK(last_proof != PROCWIDE_PROOF_FORK_COUNT, "call %d trusted the fake count", i);
	}
	pid_t made = pw_start_raw_thread();
	set_names("pw-fake-new", NULL, 0);
	char got[32];
	PW_CHECK(pw_task_comm(made, got, sizeof got) && strcmp(got, "pw-fake-new") == 0,
		 "thread %d made between the calls is named %s", (int)made, got);
	pw_idle_stop(idle);
}

/* A thread that blocks every signal, started after a call went through
 * with signals alone. */
#define start_blocked pw_start_blocking_thread

static void new_blocking_thread_reached_through_ptrace(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	PW_EQ_LONG(set_names("pw-one", NULL, 0), PROCWIDE_MODE_PARKED);
	pid_t blocked = start_blocked();
	snprintf(name, sizeof name, "pw-two");
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_report rep = {.size = sizeof rep};
	int want = next_mode();
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	PW_EQ_LONG(rep.mode, want);
	pw_expect_thread(&rep, blocked, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
	procwide_report_release(&rep);
	char got[32];
	PW_CHECK(pw_task_comm(blocked, got, sizeof got) && strcmp(got, "pw-two") == 0,
		 "blocked thread named %s", got);
	/* Known now to block the signal: the next call is parked. */
	PW_EQ_LONG(set_names("pw-three", NULL, 0), PROCWIDE_MODE_PARKED);
	pw_idle_stop(idle);
}

/* A thread that blocks every signal only for a while (a runtime starting
 * up) is reached through ptrace meanwhile, and the calls after seize it at
 * once; every 16th call looks again, so once it takes signals the process
 * goes back to signals alone, and then to the direct path. */
static atomic_bool unblock, unblocked, stop_it;
static _Atomic pid_t for_a_while_tid;

static void *blocks_for_a_while(void *arg)
{
	(void)arg;
	sigset_t set;
	sigfillset(&set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	atomic_store(&for_a_while_tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&unblock))
		usleep(1000);
	sigemptyset(&set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	atomic_store(&unblocked, true);
	while (!atomic_load(&stop_it))
		usleep(1000);
	return NULL;
}

static void thread_that_stops_blocking_goes_back_to_signals(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	PW_EQ_LONG(set_names("pw-one", NULL, 0), PROCWIDE_MODE_PARKED);
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, blocks_for_a_while, NULL) == 0, "create");
	while (!atomic_load(&for_a_while_tid))
		usleep(100);
	int want = next_mode();
	PW_EQ_LONG(set_names("pw-two", NULL, 0), want);
	PW_CHECK(last_used_ptrace, "the blocking thread was not reached through ptrace");
	PW_EQ_LONG(set_names("pw-three", NULL, 0), PROCWIDE_MODE_PARKED);
	PW_CHECK(last_used_ptrace, "a known blocking thread was signalled at once");
	atomic_store(&unblock, true);
	while (!atomic_load(&unblocked))
		usleep(100);
	int calls = 0;
	while (last_used_ptrace && calls < 64) {
		char to[32];
		snprintf(to, sizeof to, "pw-x%d", calls++);
		PW_EQ_LONG(set_names(to, NULL, 0), PROCWIDE_MODE_PARKED);
	}
	/* Every 16th call looks; a look that itself meets a slow thread
	 * (ptrace again) waits for the next. */
	PW_CHECK(!last_used_ptrace && calls <= 48, "still reached through ptrace after %d calls",
		 calls);
	PW_EQ_LONG(set_names("pw-last", NULL, 0), PROCWIDE_MODE_DIRECT);
	atomic_store(&stop_it, true);
	pthread_join(t, NULL);
	pw_idle_stop(idle);
}

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif

/* Sets `unblock` after arg microseconds (procwide's signal cuts a sleep
 * short: nanosleep is not restarted). */
static void *unblock_later(void *arg)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t ns = (uint64_t)(uintptr_t)arg * 1000u + (uint64_t)t.tv_nsec;
	t.tv_sec += (time_t)(ns / 1000000000u);
	t.tv_nsec = (long)(ns % 1000000000u);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
	atomic_store(&unblock, true);
	return NULL;
}

/* A thread that ptrace cannot reach may only be slow: it stays with its
 * signal until the deadline.  Here the caller alone enters a Landlock
 * domain after the other threads exist, so the helper forked from it may
 * trace none of them (Landlock allows tracing only into one's own domain
 * or a nested one); then one of them blocks every signal for 300 ms.  The
 * direct call hands it to the helper, which is refused, and the thread
 * runs the call once it unblocks. */
static atomic_bool block_now;

static void *blocks_when_told(void *arg)
{
	(void)arg;
	atomic_store(&for_a_while_tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&block_now))
		usleep(1000);
	pw_block_all_signals();
	atomic_store(&block_now, false);
	while (!atomic_load(&unblock))
		usleep(1000);
	sigset_t set;
	sigemptyset(&set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	while (!atomic_load(&stop_it))
		usleep(1000);
	return NULL;
}

/* `traceable`: also a thread made after the caller entered its domain
 * (so in it, and traceable) that blocks every signal for good: ptrace
 * refusing one thread must not keep it from the others. */
static void ptrace_refused_for(bool traceable)
{
	struct pw_idle *idle = pw_idle_start(2);
	pthread_t t, later;
	PW_CHECK(pthread_create(&t, NULL, blocks_when_told, NULL) == 0, "create");
	while (!atomic_load(&for_a_while_tid))
		usleep(100);
	struct { uint64_t fs, net, scoped; } attr = {1ull << 4 /* REMOVE_DIR */, 0, 0};
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr.fs, 0);
	if (fd < 0)
		pw_skip("Landlock unavailable: %s", strerror(errno));
	PW_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
	PW_CHECK(syscall(SYS_landlock_restrict_self, fd, 0) == 0, "landlock: %s", strerror(errno));
	/* Until a call goes through with signals alone: the next is direct. */
	do
		set_names("pw-one", NULL, 0);
	while (last_used_ptrace);
	pid_t held = traceable ? pw_start_blocking_thread() : 0;
	atomic_store(&block_now, true);
	while (atomic_load(&block_now))
		usleep(100);
	/* This thread is in the caller's domain: not the one to wait for. */
	PW_CHECK(pthread_create(&later, NULL, unblock_later, (void *)(uintptr_t)300000) == 0,
		 "create");
	PW_EQ_LONG(set_names("pw-two", NULL, 0), PROCWIDE_MODE_DIRECT);
	PW_CHECK(atomic_load(&unblock), "the call ended before the thread could answer");
	PW_CHECK(last_used_ptrace == traceable, "reached through ptrace: %d", last_used_ptrace);
	char got[32];
	if (held)
		PW_CHECK(pw_task_comm(held, got, sizeof got) && strcmp(got, "pw-two") == 0,
			 "blocked thread named %s", got);
	/* ptrace failed in that call: the next does not count on it. */
	PW_EQ_LONG(set_names("pw-three", NULL, 0), PROCWIDE_MODE_PARKED);
	pthread_join(later, NULL);
	atomic_store(&stop_it, true);
	pthread_join(t, NULL);
	pw_idle_stop(idle);
}

static void ptrace_refused_thread_that_is_only_slow(void)
{
	ptrace_refused_for(false);
}

static void ptrace_refused_one_thread_reaches_others(void)
{
	ptrace_refused_for(true);
}

/* The child: a direct call whose blocked thread a "debugger" holds. */
static void unreachable_child(int errfd)
{
	dup2(errfd, 2);
	struct pw_idle *idle = pw_idle_start(2);
	/* Until a call goes through with signals alone (see last_used_ptrace). */
	do {
		if (set_names("pw-one", NULL, 0) != PROCWIDE_MODE_PARKED && last_used_ptrace)
			_exit(10);
	} while (last_used_ptrace);
	if (pw_start_tracer(start_blocked()) < 0)
		_exit(12);
	procwide_syscall(SYS_prctl, PR_SET_NAME, (long)"pw-two", 0, 0, 0, 0);
	pw_idle_stop(idle);
	_exit(13); /* not reached: the call kills the process */
}

static void unreachable_after_others_ran_kills(void)
{
	int p[2];
	PW_CHECK(pipe(p) == 0, "pipe");
	pid_t child = fork();
	PW_CHECK(child >= 0, "fork");
	if (child == 0) {
		close(p[0]);
		unreachable_child(p[1]);
	}
	close(p[1]);
	char buf[1024];
	size_t got = 0;
	ssize_t k;
	while (got < sizeof buf - 1 && (k = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	int st;
	PW_CHECK(waitpid(child, &st, 0) == child, "waitpid");
	pw_diag("%s", buf);
	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x", st);
	PW_CHECK(strstr(buf, "ptrace failed") && strstr(buf, "after the calling thread had run the call"),
		 "diagnostic: %s", buf);
}

/* Runs a call that changes nothing observable here; returns its mode. */
static int mode_of(long nr, long a0, long a1, long a2)
{
	struct procwide_call call = {.nr = nr, .args = {a0, a1, a2}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	last_used_ptrace = false;
	for (size_t i = 0; i < rep.nthreads; i++)
		last_used_ptrace |= rep.threads[i].path == PROCWIDE_PATH_PTRACE;
	procwide_report_release(&rep);
	return rep.mode;
}

static void calls_that_could_stop_the_caller_stay_parked(void)
{
	struct pw_idle *idle = pw_idle_start(3);
	PW_EQ_LONG(set_names("pw-one", NULL, 0), PROCWIDE_MODE_PARKED);
	/* Ids left as they are: direct. */
	uid_t r, e, sv;
	PW_CHECK(getresuid(&r, &e, &sv) == 0, "getresuid");
	int want = next_mode();
	PW_EQ_LONG(mode_of(SYS_setresuid, -1, -1, -1), want);
	want = next_mode();
	PW_EQ_LONG(mode_of(SYS_setresuid, (long)r, (long)e, -1), want);
	/* A prctl option outside the short list of harmless ones (this one
	 * changes nothing: the process is dumpable already), and setresgid to
	 * other ids would be parked; the first is enough to show the rule. */
	PW_EQ_LONG(mode_of(SYS_prctl, PR_SET_DUMPABLE, 1, 0), PROCWIDE_MODE_PARKED);
	want = next_mode();
	PW_EQ_LONG(mode_of(SYS_prctl, PR_SET_TIMERSLACK, 50000, 0), want);
	/* Anything off the short list is parked, even a harmless call. */
	PW_EQ_LONG(mode_of(SYS_getpid, 0, 0, 0), PROCWIDE_MODE_PARKED);
	/* A setresgid naming other ids, as root (it changes the process:
	 * done last). */
	if (getuid() == 0) {
		want = next_mode();
		PW_EQ_LONG(mode_of(SYS_setresgid, -1, -1, -1), want);
		PW_EQ_LONG(mode_of(SYS_setresgid, -1, -1, 12345), PROCWIDE_MODE_PARKED);
	}
	pw_idle_stop(idle);
}

static void seccomp_filter_or_non_dumpable_keep_it_parked(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	PW_EQ_LONG(set_names("pw-one", NULL, 0), PROCWIDE_MODE_PARKED);
	PW_EQ_LONG(set_names("pw-two", NULL, 0), next_mode());
	/* Not dumpable: the ptrace helper needs CAP_SYS_PTRACE. */
	PW_CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable");
	PW_EQ_LONG(set_names("pw-three", NULL, 0),
		   pw_have_cap(CAP_SYS_PTRACE) ? next_mode() : PROCWIDE_MODE_PARKED);
	PW_CHECK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0, "dumpable");
	PW_EQ_LONG(set_names("pw-four", NULL, 0), next_mode());
	/* A seccomp filter in the caller (which the helper would inherit),
	 * even one that allows everything. */
	/* Spelled out: musl's headers have no <linux/filter.h>. */
	struct {
		uint16_t code;
		uint8_t jt, jf;
		uint32_t k;
	} allow = {0x06 /* BPF_RET | BPF_K */, 0, 0, 0x7fff0000u /* SECCOMP_RET_ALLOW */};
	struct {
		unsigned short len;
		void *filter;
	} prog = {1, &allow};
	PW_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "nnp");
	PW_CHECK(syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &prog) == 0, "seccomp");
	PW_EQ_LONG(set_names("pw-five", NULL, 0), PROCWIDE_MODE_PARKED);
	pw_idle_stop(idle);
}

/* Once the ended thread x is reaped (a moment after a join returns), makes
 * x the next id the pid allocator hands out (root, own pid namespace). */
static bool next_tid_is(pid_t x)
{
	while (syscall(SYS_tgkill, getpid(), x, 0) == 0)
		sched_yield();
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	if (fd < 0)
		return false;
	char below[16];
	int len = snprintf(below, sizeof below, "%d", (int)x - 1);
	bool ok = pwrite(fd, below, (size_t)len, 0) == len;
	close(fd);
	return ok;
}

/* A thread that has run the call ends, and a thread made by one that had
 * not yet run it is given the same tid (ns_last_pid set just below it).
 * The direct path must not take the newcomer for the thread that ran the
 * call (its /proc entry's inode number tells them apart, in the wait's
 * re-listing or in the proof): the newcomer gets the call, on the direct
 * path. */
#define PW_NEWCOMERS 8

static struct {
	pthread_t leaver;
	_Atomic pid_t leaver_tid;
	char target[24];
	pid_t newcomer_tid[PW_NEWCOMERS];
	pthread_t newcomer[PW_NEWCOMERS];
	atomic_int nnew;
	_Atomic bool reused_unchanged; /* a newcomer with the leaver's tid was
					  born without the change */
	_Atomic bool release;
} R;

static bool named(const char *want)
{
	char cur[16] = "";
	prctl(PR_GET_NAME, cur, 0, 0, 0);
	return strcmp(cur, want) == 0;
}

static void *leaver(void *arg)
{
	(void)arg;
	atomic_store(&R.leaver_tid, (pid_t)syscall(SYS_gettid));
	while (!named(R.target))
		usleep(20);
	return NULL; /* ends as soon as it has run the call */
}

static void *newcomer(void *arg)
{
	int i = (int)(intptr_t)arg;
	pid_t me = (pid_t)syscall(SYS_gettid);
	if (me == atomic_load(&R.leaver_tid) && !named(R.target))
		atomic_store(&R.reused_unchanged, true);
	R.newcomer_tid[i] = me;
	while (!atomic_load(&R.release))
		usleep(1000);
	return NULL;
}

/* Blocks every signal (procwide reaches it through ptrace, a millisecond
 * after the others have answered), and meanwhile makes threads with the
 * leaver's tid as soon as it is free. */
static void *maker(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	pthread_join(R.leaver, NULL);
	pid_t x = atomic_load(&R.leaver_tid);
	for (int i = 0; i < PW_NEWCOMERS; i++) {
		if (!next_tid_is(x))
			break;
		R.newcomer_tid[i] = 0;
		if (pthread_create(&R.newcomer[i], NULL, newcomer, (void *)(intptr_t)i) != 0)
			break;
		atomic_fetch_add(&R.nnew, 1);
		while (!((volatile pid_t *)R.newcomer_tid)[i])
			sched_yield();
		if (R.newcomer_tid[i] == x)
			break;
	}
	return NULL;
}

/* Up to 20 rounds until `round` has met its case 3 times (a round that
 * does not meet it proves nothing either way); at least once, or fail. */
static void exercise_rounds(bool (*round)(int r), const char *what)
{
	struct pw_idle *idle = pw_idle_start(2);
	unsigned exercised = 0;
	for (int r = 0; r < 20 && exercised < 3; r++)
		exercised += round(r);
	pw_diag("%u rounds %s", exercised, what);
	PW_CHECK(exercised > 0, "no round %s", what);
	pw_idle_stop(idle);
}

static bool reuse_round(int round)
{
	memset(&R, 0, sizeof R);
	snprintf(R.target, sizeof R.target, "pw-r%d-b", round);
	PW_CHECK(pthread_create(&R.leaver, NULL, leaver, NULL) == 0, "leaver");
	while (!atomic_load(&R.leaver_tid))
		sched_yield();
	/* Signals alone: the next call takes the direct path. */
	char first[24];
	snprintf(first, sizeof first, "pw-r%d-a", round);
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)first, 0, 0, 0, 0), 0);
	pthread_t m;
	PW_CHECK(pthread_create(&m, NULL, maker, NULL) == 0, "maker");
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)R.target}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	int mode = rep.mode;
	procwide_report_release(&rep);
	pthread_join(m, NULL);
	int n = atomic_load(&R.nnew);
	/* Every thread made before the call returned has the change,
	 * newcomers included. */
	for (int i = 0; i < n; i++) {
		char got[32];
		PW_CHECK(pw_task_comm(R.newcomer_tid[i], got, sizeof got), "comm");
		PW_CHECK(strcmp(got, R.target) == 0,
			 "newcomer %d (tid %d, the leaver's: %s) is named %s, not %s", i,
			 R.newcomer_tid[i],
			 R.newcomer_tid[i] == R.leaver_tid ? "yes" : "no", got, R.target);
	}
	bool met = atomic_load(&R.reused_unchanged);
	if (met) /* Told apart by the proof, not settled by parking. */
		PW_EQ_LONG(mode, PROCWIDE_MODE_DIRECT);
	atomic_store(&R.release, true);
	for (int i = 0; i < n; i++)
		pthread_join(R.newcomer[i], NULL);
	return met;
}

static int reuse_in_own_pid_namespace(void)
{
	exercise_rounds(reuse_round,
			"had a thread without the call take a finished thread's tid before it was reached");
	return 0;
}

/* Runs fn in a new pid namespace with a /proc of its own, where moving
 * ns_last_pid disturbs nothing else (root only). */
static void in_own_pid_namespace(int (*fn)(void))
{
	if (getuid() != 0)
		pw_skip("setting ns_last_pid needs root (CAP_CHECKPOINT_RESTORE) in a new pid namespace");
	PW_CHECK(unshare(CLONE_NEWPID | CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	pid_t child = fork();
	PW_CHECK(child >= 0, "fork");
	if (child == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("proc", "/proc", "proc", 0, NULL) != 0)
			_exit(20);
		_exit(fn());
	}
	int st;
	PW_CHECK(waitpid(child, &st, 0) == child, "waitpid");
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

static void reused_tid_is_told_apart(void)
{
	in_own_pid_namespace(reuse_in_own_pid_namespace);
}

/* A thread ends with procwide's signal still pending, and a thread that
 * spins (runnable, as the one it replaces would be) gets its tid: the call
 * must not wait for the ended one forever, and the newcomer gets the call. */
static struct {
	_Atomic pid_t tid;
	atomic_bool arm, armed, release;
	pthread_t ender;
	_Atomic pid_t spinner_tid;
	pthread_t spinner;
	bool spinning;
} G;

static void *ender(void *arg)
{
	(void)arg;
	atomic_store(&G.tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&G.arm))
		usleep(200);
	sigset_t set;
	sigfillset(&set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	atomic_store(&G.armed, true);
	for (;;) { /* ends as soon as a real-time signal is pending */
		sigpending(&set);
		for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
			if (sigismember(&set, sig))
				return NULL;
	}
}

/* Spins if it got the ended thread's tid; ends at once if not. */
static void *spinner(void *arg)
{
	(void)arg;
	pid_t me = (pid_t)syscall(SYS_gettid);
	bool reused = me == atomic_load(&G.tid);
	atomic_store(&G.spinner_tid, me);
	while (reused && !atomic_load(&G.release))
		;
	return NULL;
}

static void *replacer(void *arg)
{
	(void)arg;
	pthread_join(G.ender, NULL);
	pid_t x = atomic_load(&G.tid);
	/* The kernel frees a tid a moment after tgkill stops finding it
	 * (from Linux 6.15, after dropping its /proc entries): try again. */
	for (int i = 0; i < 20 && !G.spinning; i++) {
		atomic_store(&G.spinner_tid, 0);
		if (!next_tid_is(x) || pthread_create(&G.spinner, NULL, spinner, NULL) != 0)
			break;
		while (!atomic_load(&G.spinner_tid))
			sched_yield();
		if (atomic_load(&G.spinner_tid) == x)
			G.spinning = true;
		else
			pthread_join(G.spinner, NULL);
	}
	return NULL;
}

static bool pending_round(int round)
{
	memset(&G, 0, sizeof G);
	PW_CHECK(pthread_create(&G.ender, NULL, ender, NULL) == 0, "ender");
	while (!atomic_load(&G.tid))
		sched_yield();
	char a[24], b[24];
	snprintf(a, sizeof a, "pw-p%d-a", round);
	snprintf(b, sizeof b, "pw-p%d-b", round);
	/* Signals alone (the ender takes them for now): direct next. */
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)a, 0, 0, 0, 0), 0);
	atomic_store(&G.arm, true);
	while (!atomic_load(&G.armed))
		sched_yield();
	pthread_t r;
	PW_CHECK(pthread_create(&r, NULL, replacer, NULL) == 0, "replacer");
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)b}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	procwide_report_release(&rep);
	pthread_join(r, NULL);
	if (!G.spinning)
		return false;
	char got[32];
	PW_CHECK(pw_task_comm(G.spinner_tid, got, sizeof got), "comm");
	/* Made before the call returned: it must have the change. */
	PW_CHECK(strcmp(got, b) == 0, "spinner %d named %s, not %s", (int)G.spinner_tid, got,
		 b);
	atomic_store(&G.release, true);
	pthread_join(G.spinner, NULL);
	return true;
}

static int pending_in_own_pid_namespace(void)
{
	exercise_rounds(pending_round, "gave a signalled thread's tid to a spinning one");
	return 0;
}

static void thread_ending_with_signal_pending_is_no_hang(void)
{
	in_own_pid_namespace(pending_in_own_pid_namespace);
}

/* Runs case `name` in this program executed again with each counted entry
 * looked up again by path, as on kernels before 6.15 (whose readdir may
 * show an ended thread's inode number for a new thread with its tid).  The
 * library reads PROCWIDE_TEST_PROC_REVALIDATE when it loads.  On a newer
 * kernel this shows that the lookup counts the same threads, not that it
 * is needed.  The inner run has its own 60 s timeout, within the outer
 * case's, so that it never outlives it; its TAP lines go to stderr. */

static void reused_tid_is_told_apart_by_lookup(void)
{
	if (getuid() != 0)
		pw_skip("setting ns_last_pid needs root (CAP_CHECKPOINT_RESTORE) in a new pid namespace");
	pw_rerun_with("reused_tid_is_told_apart", "PROCWIDE_TEST_PROC_REVALIDATE");
}

/* errno is the caller's after a successful call, while threads end between
 * the listing of /proc/self/task and the lookups that follow it. */
static void errno_kept_while_threads_end(void)
{
	struct pw_churn *churn = pw_churn_start(3);
	PW_CHECK(churn, "churn");
	for (int i = 0; i < 500; i++) {
		errno = 4242;
		long r = procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 50000 + i, 0, 0, 0, 0);
		int e = errno;
		PW_EQ_LONG(r, 0);
		PW_EQ_LONG(e, 4242);
	}
	pw_churn_stop(churn);
}

static void errno_kept_while_threads_end_by_lookup(void)
{
	pw_rerun_with("errno_kept_while_threads_end", "PROCWIDE_TEST_PROC_REVALIDATE");
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(first_call_parked_then_direct),
		PW_CASE(flags_and_report_policy_keep_it_parked),
		PW_CASE(caller_failure_changes_nothing),
		PW_CASE(calls_in_a_row_skip_the_listing),
		PW_CASE(pthread_made_between_calls_is_reached),
		PW_CASE(raw_thread_made_between_calls_is_reached),
		PW_CASE(fake_proc_stat_is_not_trusted),
		PW_CASE(new_blocking_thread_reached_through_ptrace),
		PW_CASE(thread_that_stops_blocking_goes_back_to_signals),
		PW_CASE_T(ptrace_refused_thread_that_is_only_slow, 30),
		PW_CASE_T(ptrace_refused_one_thread_reaches_others, 30),
		PW_CASE_T(unreachable_after_others_ran_kills, 30),
		PW_CASE(calls_that_could_stop_the_caller_stay_parked),
		PW_CASE(seccomp_filter_or_non_dumpable_keep_it_parked),
		PW_CASE_T(reused_tid_is_told_apart, 60),
		PW_CASE_T(reused_tid_is_told_apart_by_lookup, 90),
		PW_CASE_T(errno_kept_while_threads_end, 60),
		PW_CASE_T(errno_kept_while_threads_end_by_lookup, 90),
		PW_CASE_T(thread_ending_with_signal_pending_is_no_hang, 60),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
