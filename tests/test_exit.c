/* Threads that end: a main thread that called pthread_exit stays a zombie
 * for the life of the process; threads exiting during a call. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t main_tid;

static void check_all_nnp(void)
{
	pid_t tids[512];
	size_t n = pw_list_tids(tids, 512);
	for (size_t i = 0; i < n; i++) {
		char v[16];
		if (!pw_task_status(tids[i], "NoNewPrivs", v, sizeof v))
			continue;
		if (pw_task_state(tids[i]) == 'Z')
			continue; /* a zombie runs no code and shows nothing */
		PW_CHECK(strcmp(v, "1") == 0, "thread %d NoNewPrivs %s", tids[i], v);
	}
}

/* Calls made after the main thread has exited: `calls` of them, each must
 * report the main thread as a zombie (the first, a parked call; later
 * ones, which may take the direct path, too). */
static int calls_after_exit;
/* And made with PROCWIDE_PTRACE_ALL: the helper finds the main thread a
 * zombie (PTRACE_SEIZE refuses it). */
static bool ptrace_all;
static const struct procwide_opts all = {.size = sizeof all, .flags = PROCWIDE_PTRACE_ALL};

static void *after_main_exits(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000 && pw_task_state(main_tid) != 'Z'; i++)
		usleep(1000);
	PW_CHECK(pw_task_state(main_tid) == 'Z', "main thread is not a zombie");
	/* The calls after the first set the threads' names (readable as any
	 * user, unlike another thread's timer slack). */
	static char name[16];
	bool prev_ptrace = false;
	for (int c = 0; c < calls_after_exit; c++) {
		snprintf(name, sizeof name, "pw-after-%u", (unsigned)c % 10u);
		struct procwide_call call = {.nr = SYS_prctl,
					     .args = {c ? PR_SET_NAME : PR_SET_NO_NEW_PRIVS,
						      c ? (long)name : 1}};
		struct procwide_report rep = {.size = sizeof rep};
		PW_EQ_LONG(procwide_run(&call, ptrace_all ? &all : NULL, &rep), 0);
		size_t zombies = 0;
		for (size_t i = 0; i < rep.nthreads; i++)
			if (rep.threads[i].status == PROCWIDE_THREAD_ZOMBIE) {
				PW_EQ_LONG(rep.threads[i].tid, main_tid);
				zombies++;
			}
		PW_EQ_LONG(zombies, 1);
		/* After a call that reached no thread through ptrace, the next
		 * takes the direct path: the zombie is found there too. */
		if (c > 0 && !ptrace_all && !prev_ptrace)
			PW_EQ_LONG(rep.mode, PROCWIDE_MODE_DIRECT);
		prev_ptrace = false;
		for (size_t i = 0; i < rep.nthreads; i++)
			prev_ptrace |= rep.threads[i].path == PROCWIDE_PATH_PTRACE;
		procwide_report_release(&rep);
	}
	if (calls_after_exit > 1) {
		pid_t tids[16];
		size_t n = pw_list_tids(tids, 16);
		for (size_t i = 0; i < n && i < 16; i++) {
			char got[32];
			if (tids[i] == main_tid)
				continue;
			PW_CHECK(pw_task_comm(tids[i], got, sizeof got), "thread %d gone", tids[i]);
			PW_CHECK(strcmp(got, name) == 0, "thread %d is named %s, not %s", tids[i],
				 got, name);
		}
	}
	check_all_nnp();
	fflush(stdout);
	exit(0);
}

static void zombie_main_thread(void)
{
	main_tid = pw_gettid();
	calls_after_exit = 1;
	struct pw_idle *idle = pw_idle_start(5);
	(void)idle;
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, after_main_exits, NULL) == 0, "create");
	pthread_exit(NULL);
}

/* The main thread answered the calls before it exited: procwide then
 * signals it without reading its state, and must find it a zombie by
 * the wait, on the direct path as on the parked one. */
static void main_thread_exits_between_calls(void)
{
	main_tid = pw_gettid();
	calls_after_exit = 3;
	struct pw_idle *idle = pw_idle_start(5);
	(void)idle;
	for (int c = 0; c < 3; c++)
		PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 50000 + c, 0, 0, 0, 0), 0);
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, after_main_exits, NULL) == 0, "create");
	pthread_exit(NULL);
}

static void main_thread_exits_between_calls_ptrace_all(void)
{
	ptrace_all = true;
	main_thread_exits_between_calls();
}

static void threads_exiting_mid_call(void)
{
	struct pw_churn *churn = pw_churn_start(3);
	PW_CHECK(churn, "churn");
	size_t exited = 0;
	for (int i = 0; i < 300; i++) {
		struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 50000 + i}};
		struct procwide_report rep = {.size = sizeof rep};
		PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "call %d: %s", i, rep.message);
		for (size_t k = 0; k < rep.nthreads; k++)
			exited += rep.threads[k].status == PROCWIDE_THREAD_EXITED;
		procwide_report_release(&rep);
	}
	pw_churn_stop(churn);
	pw_diag("%zu threads exited during calls", exited);
}

struct kf_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct kf_prog {
	unsigned short len;
	struct kf_insn *filter;
};

static atomic_int killed_tid;

static void *killed_caller(void *arg)
{
	(void)arg;
	atomic_store(&killed_tid, pw_gettid());
	/* The filter kills the thread that runs getppid: this caller, in
	 * the middle of its own call, with every other thread parked. */
	procwide_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
	return NULL; /* not reached */
}

static void caller_killed_mid_call(void)
{
	struct kf_insn f[] = {
		{0x20, 0, 0, 0},		 /* ld nr */
		{0x15, 0, 1, SYS_getppid},	 /* jeq getppid */
		{0x06, 0, 0, 0x00000000u},	 /* KILL_THREAD */
		{0x06, 0, 0, 0x7fff0000u},	 /* ALLOW */
	};
	struct kf_prog prog = {4, f};
	struct pw_idle *idle = pw_idle_start(3);
	PW_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "nnp");
	PW_CHECK(syscall(SYS_seccomp, 1, 1 /* TSYNC */, &prog) == 0, "seccomp");
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, killed_caller, NULL) == 0, "create");
	/* Wait for the kernel to remove it (not pthread_join: musl waits for
	 * its own exit path, which a thread killed by the kernel never runs). */
	while (!atomic_load(&killed_tid))
		usleep(1000);
	for (int i = 0; i < 5000 && pw_task_state(atomic_load(&killed_tid)); i++)
		usleep(1000);
	PW_CHECK(pw_task_state(atomic_load(&killed_tid)) == 0, "the caller was not killed");
	/* The parked threads noticed and went back to work, and the lock the
	 * dead caller held is taken over: the next call works. */
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 77777, 0, 0, 0, 0), 0);
	pw_idle_stop(idle);
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(zombie_main_thread),
		PW_CASE(main_thread_exits_between_calls),
		PW_CASE(main_thread_exits_between_calls_ptrace_all),
		PW_CASE_T(threads_exiting_mid_call, 60),
		PW_CASE(caller_killed_mid_call),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
