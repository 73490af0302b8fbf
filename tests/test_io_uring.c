/* io_uring workers are threads of the process that never run user code: no
 * signal handler runs in them and a system call set up through ptrace never
 * runs either.  procwide must leave them alone and report them, on every
 * path, instead of waiting for them until the deadline and killing the
 * process. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#define IORING_SETUP_SQPOLL 2u

/* Starts an io_uring with a submission-queue polling thread (iou-sqp-*):
 * an io_uring worker that lives as long as the ring.  Returns its tid. */
static pid_t start_sqpoll_worker(void)
{
	/* struct io_uring_params, spelled out (musl has no <linux/io_uring.h>):
	 * sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, ... */
	uint32_t params[30];
	memset(params, 0, sizeof params);
	params[2] = IORING_SETUP_SQPOLL;
	params[4] = 60000; /* sq_thread_idle, ms */
	long fd = syscall(SYS_io_uring_setup, 4, params);
	if (fd < 0)
		pw_skip("io_uring is not available to this process (%s; kernel.io_uring_disabled?)",
			strerror(errno));
	for (int tries = 0; tries < 200; tries++) {
		pid_t tids[64];
		size_t n = pw_list_tids(tids, 64);
		for (size_t i = 0; i < n && i < 64; i++) {
			char comm[32];
			if (pw_task_comm(tids[i], comm, sizeof comm) && strncmp(comm, "iou-sqp-", 8) == 0)
				return tids[i];
		}
		usleep(5000);
	}
	PW_CHECK(0, "no iou-sqp thread appeared");
	return 0;
}

static char name[16];

/* Sets every thread's name; checks the report thread by thread. */
static void set_names_around(pid_t worker, const char *to, unsigned flags, int want_mode)
{
	snprintf(name, sizeof name, "%s", to);
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_opts opts = {.size = sizeof opts, .flags = flags};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, &opts, &rep), 0);
	PW_EQ_LONG(rep.mode, want_mode);
	bool seen = false;
	for (size_t i = 0; i < rep.nthreads; i++) {
		struct procwide_thread *t = &rep.threads[i];
		if (t->tid == worker) {
			seen = true;
			PW_EQ_LONG(t->status, PROCWIDE_THREAD_KERNEL_WORKER);
			PW_EQ_LONG(t->path, PROCWIDE_PATH_NONE);
			PW_CHECK(strcmp(procwide_thread_status_name(t->status), "kernel-worker") == 0,
				 "status name %s", procwide_thread_status_name(t->status));
			continue;
		}
		PW_CHECK(t->status == PROCWIDE_THREAD_OK || t->status == PROCWIDE_THREAD_CALLER,
			 "thread %d: %s", t->tid, procwide_thread_status_name(t->status));
		char got[32];
		PW_CHECK(pw_task_comm(t->tid, got, sizeof got) && strcmp(got, to) == 0,
			 "thread %d is named %s", t->tid, got);
	}
	PW_CHECK(seen, "the io_uring worker %d is not in the report", worker);
	procwide_report_release(&rep);
}

static void sqpoll_worker_is_left_alone(void)
{
	struct pw_idle *idle = pw_idle_start(3);
	pid_t worker = start_sqpoll_worker();
	char before[32];
	PW_CHECK(pw_task_comm(worker, before, sizeof before), "comm");
	set_names_around(worker, "pw-one", 0, PROCWIDE_MODE_PARKED);
	/* Found through ptrace, so the next call is parked too, and hands it
	 * to the helper at once. */
	set_names_around(worker, "pw-two", 0, PROCWIDE_MODE_PARKED);
	set_names_around(worker, "pw-three", PROCWIDE_PTRACE_ALL, PROCWIDE_MODE_PARKED);
	char after[32];
	PW_CHECK(pw_task_comm(worker, after, sizeof after) && strcmp(before, after) == 0,
		 "the worker was renamed: %s", after);
	/* procwide_syscall succeeds too. */
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)"pw-four", 0, 0, 0, 0), 0);
	pw_idle_stop(idle);
}

static void sqpoll_worker_without_ptrace_is_unreachable(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	pid_t worker = start_sqpoll_worker();
	/* Without ptrace procwide cannot tell a worker from a thread that
	 * blocks its signal: it fails, nothing changed. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)"pw-no"}};
	struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_NO_PTRACE,
				     .deadline_ms = 200};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, &opts, &rep), -ETIMEDOUT);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_UNREACHABLE);
	for (size_t i = 0; i < rep.nthreads; i++)
		if (rep.threads[i].tid == worker)
			/* The kernel shows a worker blocking every signal. */
			PW_EQ_LONG(rep.threads[i].status, PROCWIDE_THREAD_BLOCKED);
	procwide_report_release(&rep);
	char comm[32];
	PW_CHECK(pw_task_comm(pw_gettid(), comm, sizeof comm) && strcmp(comm, "pw-no") != 0,
		 "the caller changed");
	pw_idle_stop(idle);
}

/* A user thread can be stopped with its instruction and stack pointers at
 * 0 as well (it jumped to address 0 with a zero stack pointer and takes
 * the fault on an alternate stack): it must never pass for a worker. */
static __thread sigjmp_buf back;
static _Atomic pid_t jumper;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(back, 1);
}

static void *jump_to_zero(void *arg)
{
	(void)arg;
	stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
	sigaltstack(&ss, NULL);
	atomic_store(&jumper, pw_gettid());
	sigsetjmp(back, 1);
	for (;;)
		__asm__ volatile("xor %%esp, %%esp\n\txor %%eax, %%eax\n\tjmp *%%rax" ::: "memory");
	return NULL;
}

static void user_thread_at_address_zero_is_not_a_worker(void)
{
	struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_ONSTACK | SA_NODEFER};
	PW_CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, jump_to_zero, NULL) == 0, "create");
	while (!atomic_load(&jumper))
		usleep(1000);
	unsigned ok = 0, refused = 0;
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof name, "pw-z%d", i);
		struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
		struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_PTRACE_ALL,
					     .mismatch = PROCWIDE_MISMATCH_REPORT};
		struct procwide_report rep = {.size = sizeof rep};
		int r = procwide_run(&call, &opts, &rep);
		for (size_t k = 0; k < rep.nthreads; k++)
			PW_CHECK(rep.threads[k].status != PROCWIDE_THREAD_KERNEL_WORKER,
				 "call %d: user thread %d taken for a kernel worker", i,
				 rep.threads[k].tid);
		procwide_report_release(&rep);
		char got[32];
		if (r == 0) {
			ok++;
			PW_CHECK(pw_task_comm(atomic_load(&jumper), got, sizeof got) &&
					 strcmp(got, name) == 0,
				 "call %d succeeded but the thread is named %s", i, got);
		} else {
			refused++; /* stopped at 0: no call can run there */
		}
	}
	pw_diag("%u calls ran everywhere, %u were refused (thread stopped at address 0)", ok,
		refused);
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(sqpoll_worker_is_left_alone),
		PW_CASE(sqpoll_worker_without_ptrace_is_unreachable),
		PW_CASE(user_thread_at_address_zero_is_not_a_worker),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
