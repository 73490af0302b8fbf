/* Never hang: with ptrace turned off (PROCWIDE_NO_PTRACE), a thread that
 * blocks procwide's signal is reported by the deadline, naming the thread,
 * and no thread (not even the caller) has changed.  test_inject.c covers
 * reaching such threads. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];
static volatile pid_t blocker_tid;

static void *blocker(void *arg)
{
	(void)arg;
	/* Every signal blocked with the raw system call, the way a runtime's
	 * service thread might: the C library's wrappers would keep their own
	 * internal signals open. */
	uint64_t all = ~0ULL;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	blocker_tid = pw_gettid();
	char c;
	ssize_t n = read(pipefd[0], &c, 1);
	return (void *)(intptr_t)n;
}

static void start_blocker(void)
{
	PW_CHECK(pipe(pipefd) == 0, "pipe");
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, blocker, NULL) == 0, "create");
	while (!blocker_tid)
		usleep(1000);
}

static void blocked_thread_reported_nothing_changed(void)
{
	static char name[16] = "pw-changed";
	struct pw_idle *idle = pw_idle_start(8);
	start_blocker();
	pid_t tids[64];
	size_t n = pw_list_tids(tids, 64);
	char before[64][32];
	for (size_t i = 0; i < n; i++)
		PW_CHECK(pw_task_comm(tids[i], before[i], sizeof before[i]), "comm");

	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_opts opts = {.size = sizeof opts, .deadline_ms = 300,
				     .flags = PROCWIDE_NO_PTRACE};
	struct procwide_report rep = {.size = sizeof rep};
	double t0 = pw_now_s();
	PW_EQ_LONG(procwide_run(&call, &opts, &rep), -ETIMEDOUT);
	double took = pw_now_s() - t0;
	PW_CHECK(took >= 0.29 && took < 1.5, "took %.3f s for a 300 ms deadline", took);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_UNREACHABLE);
	PW_EQ_LONG(rep.nunreachable, 1);
	PW_EQ_LONG(rep.nthreads, 10);
	for (size_t i = 0; i < rep.nthreads; i++) {
		struct procwide_thread *t = &rep.threads[i];
		int want = t->tid == blocker_tid ? PROCWIDE_THREAD_BLOCKED
			   : t->tid == pw_gettid() ? PROCWIDE_THREAD_CALLER
						   : PROCWIDE_THREAD_NOT_RUN;
		PW_CHECK(t->status == want, "thread %d: %s", t->tid,
			 procwide_thread_status_name(t->status));
	}
	char tidstr[32];
	snprintf(tidstr, sizeof tidstr, "thread %d ", (int)blocker_tid);
	PW_CHECK(strstr(rep.message, tidstr) && strstr(rep.message, "blocks"), "message: %s",
		 rep.message);
	PW_CHECK(strcmp(procwide_last_error(), rep.message) == 0, "last error: %s",
		 procwide_last_error());
	procwide_report_release(&rep);

	/* Nothing changed anywhere, the caller included. */
	for (size_t i = 0; i < n; i++) {
		char now[32];
		PW_CHECK(pw_task_comm(tids[i], now, sizeof now), "comm");
		PW_CHECK(strcmp(now, before[i]) == 0, "thread %d changed to %s", tids[i], now);
	}

	/* The blocked thread is unharmed and still reads its pipe. */
	PW_CHECK(write(pipefd[1], "x", 1) == 1, "write");
	pw_idle_stop(idle);
}

static void late_signal_after_unblock_is_harmless(void)
{
	/* The refused call leaves procwide's signal pending in the blocker;
	 * when it unblocks, the stale delivery must be ignored, not run a
	 * call or kill the process. */
	static char name[16] = "pw-late";
	start_blocker();
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_opts opts = {.size = sizeof opts, .deadline_ms = 100,
				     .flags = PROCWIDE_NO_PTRACE};
	PW_EQ_LONG(procwide_run(&call, &opts, NULL), -ETIMEDOUT);
	char before[32];
	PW_CHECK(pw_task_comm(blocker_tid, before, sizeof before), "comm");
	pid_t was = blocker_tid;
	PW_CHECK(write(pipefd[1], "x", 1) == 1, "write"); /* blocker exits */
	for (int i = 0; i < 1000 && pw_task_state(was); i++)
		usleep(1000);
	PW_CHECK(pw_task_state(was) == 0, "blocker still there");
	/* A new call works normally. */
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)name, 0, 0, 0, 0), 0);
}

static void *unblocking_late(void *arg)
{
	(void)arg;
	uint64_t all = ~0ULL, none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	usleep(50000);
	/* Unblocks well before the deadline: only a snapshot said "blocked". */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
	pause();
	return NULL;
}

static void briefly_blocked_thread_is_reached(void)
{
	static char name[16] = "pw-brief";
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, unblocking_late, NULL) == 0, "create");
	usleep(5000);
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	PW_EQ_LONG(rep.nthreads, 2);
	procwide_report_release(&rep);
	pid_t tids[8];
	size_t n = pw_list_tids(tids, 8);
	for (size_t i = 0; i < n; i++) {
		char c[32];
		PW_CHECK(pw_task_comm(tids[i], c, sizeof c) && strcmp(c, name) == 0, "%d: %s",
			 tids[i], c);
	}
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(blocked_thread_reported_nothing_changed),
		PW_CASE(late_signal_after_unblock_is_harmless),
		PW_CASE(briefly_blocked_thread_is_reached),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
