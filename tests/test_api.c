/* The public API's contract: results, errno, sizes, bad input. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void single_thread_returns_caller_result(void)
{
	long r = procwide_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
	PW_EQ_LONG(r, pw_gettid());
	PW_CHECK(strcmp(procwide_last_error(), "") == 0, "last error '%s'", procwide_last_error());
}

static void caller_failure_sets_errno(void)
{
	errno = 0;
	long r = procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK + 1000, 0, 0, 0, 0, 0);
	PW_EQ_LONG(r, -1);
	PW_EQ_LONG(errno, EINVAL);
	PW_CHECK(strstr(procwide_last_error(), "failed in the calling thread"), "%s",
		 procwide_last_error());
}

static void unknown_syscall_is_enosys_not_mismatch(void)
{
	struct pw_idle *idle = pw_idle_start(4);
	errno = 0;
	long r = procwide_syscall(100000, 0, 0, 0, 0, 0, 0);
	PW_EQ_LONG(r, -1);
	PW_EQ_LONG(errno, ENOSYS);
	struct procwide_call call = {.nr = 100000};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), -ENOSYS);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_CALLER_FAILED);
	PW_EQ_LONG(rep.result, -ENOSYS);
	PW_EQ_LONG(rep.nthreads, 5);
	for (size_t i = 0; i < rep.nthreads; i++)
		PW_CHECK(rep.threads[i].status == (rep.threads[i].tid == pw_gettid()
							    ? PROCWIDE_THREAD_CALLER
							    : PROCWIDE_THREAD_NOT_RUN),
			 "thread %d status %s", rep.threads[i].tid,
			 procwide_thread_status_name(rep.threads[i].status));
	procwide_report_release(&rep);
	pw_idle_stop(idle);
}

static void null_call_is_efault(void)
{
	PW_EQ_LONG(procwide_run(NULL, NULL, NULL), -EFAULT);
}

static void bad_opts_sizes_are_einval(void)
{
	struct procwide_call call = {.nr = SYS_getpid};
	struct procwide_opts o = {.size = 0};
	PW_EQ_LONG(procwide_run(&call, &o, NULL), -EINVAL);
	o.size = sizeof(size_t) - 1;
	PW_EQ_LONG(procwide_run(&call, &o, NULL), -EINVAL);

	/* A newer, larger struct: zero tail accepted, non-zero refused. */
	struct {
		struct procwide_opts o;
		long future;
	} big;
	memset(&big, 0, sizeof big);
	big.o.size = sizeof big;
	PW_EQ_LONG(procwide_run(&call, &big.o, NULL), 0);
	big.future = 1;
	PW_EQ_LONG(procwide_run(&call, &big.o, NULL), -EINVAL);

	/* An older, smaller struct: fields past it take defaults. */
	o.size = sizeof(size_t);
	PW_EQ_LONG(procwide_run(&call, &o, NULL), 0);

	struct procwide_opts bad = {.size = sizeof bad, .mismatch = 7};
	PW_EQ_LONG(procwide_run(&call, &bad, NULL), -EINVAL);
	bad = (struct procwide_opts){.size = sizeof bad, .flags = 1u << 7};
	PW_EQ_LONG(procwide_run(&call, &bad, NULL), -EINVAL);
	bad = (struct procwide_opts){.size = sizeof bad,
				     .flags = PROCWIDE_NO_PTRACE | PROCWIDE_PTRACE_ALL};
	PW_EQ_LONG(procwide_run(&call, &bad, NULL), -EINVAL);
	bad = (struct procwide_opts){.size = sizeof bad, .signal = 33};
	PW_EQ_LONG(procwide_run(&call, &bad, NULL), -EINVAL);
	bad = (struct procwide_opts){.size = sizeof bad, .signal = 65};
	PW_EQ_LONG(procwide_run(&call, &bad, NULL), -EINVAL);
}

static void bad_report_size_is_einval(void)
{
	struct procwide_call call = {.nr = SYS_getpid};
	struct procwide_report rep = {.size = 3};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), -EINVAL);
	/* A report that stops before the thread list still gets what fits. */
	struct procwide_report small;
	memset(&small, 0x5a, sizeof small);
	small.size = offsetof(struct procwide_report, nthreads);
	PW_EQ_LONG(procwide_run(&call, NULL, &small), 0);
	PW_EQ_LONG(small.outcome, PROCWIDE_OUTCOME_OK);
	PW_EQ_LONG(small.result, getpid());
	PW_EQ_LONG((unsigned char)small.message[0], 0x5a); /* untouched */
}

static void unbroadcastable_syscalls_are_einval(void)
{
	/* rt_sigprocmask, sigaltstack: sigreturn would undo them in every
	 * thread reached by signal; arch_prctl: restoring the registers
	 * would undo it in threads reached through ptrace. */
	long nrs[] = {SYS_exit,		  SYS_clone,	   SYS_fork,	   SYS_vfork,
		      SYS_execve,	  SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_sigaltstack,
		      SYS_arch_prctl,	  0x40000000 | 60 /* x32 exit */};
	for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
		errno = 0;
		PW_EQ_LONG(procwide_syscall(nrs[i], 0, 0, 0, 0, 0, 0), -1);
		PW_EQ_LONG(errno, EINVAL);
	}
}

static void report_lists_every_thread(void)
{
	struct pw_idle *idle = pw_idle_start(20);
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 77777}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, NULL, &rep), 0);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_OK);
	PW_EQ_LONG(rep.nthreads, 21);
	PW_EQ_LONG(rep.nmismatch, 0);
	PW_EQ_LONG(rep.nunreachable, 0);
	PW_CHECK(rep.signal >= 35 && rep.signal <= 64, "signal %d", rep.signal);
	PW_CHECK(rep.elapsed_ns > 0, "elapsed %llu", (unsigned long long)rep.elapsed_ns);
	size_t callers = 0;
	for (size_t i = 0; i < rep.nthreads; i++) {
		struct procwide_thread *t = &rep.threads[i];
		PW_EQ_LONG(t->result, 0);
		if (t->status == PROCWIDE_THREAD_CALLER) {
			callers++;
			PW_EQ_LONG(t->tid, pw_gettid());
			PW_EQ_LONG(t->path, PROCWIDE_PATH_SELF);
		} else {
			PW_EQ_LONG(t->status, PROCWIDE_THREAD_OK);
			PW_EQ_LONG(t->path, PROCWIDE_PATH_SIGNAL);
		}
	}
	PW_EQ_LONG(callers, 1);
	procwide_report_release(&rep);
	PW_CHECK(rep.threads == NULL && rep.nthreads == 0, "released");
	procwide_report_release(&rep); /* twice is safe */
	pw_idle_stop(idle);
}

static void status_names(void)
{
	PW_CHECK(strcmp(procwide_thread_status_name(PROCWIDE_THREAD_OK), "ok") == 0, "ok");
	PW_CHECK(strcmp(procwide_thread_status_name(PROCWIDE_THREAD_BLOCKED), "blocked") == 0, "b");
	PW_CHECK(strcmp(procwide_thread_status_name(-1), "unknown") == 0, "neg");
	PW_CHECK(strcmp(procwide_thread_status_name(99), "unknown") == 0, "big");
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(single_thread_returns_caller_result),
		PW_CASE(caller_failure_sets_errno),
		PW_CASE(unknown_syscall_is_enosys_not_mismatch),
		PW_CASE(null_call_is_efault),
		PW_CASE(bad_opts_sizes_are_einval),
		PW_CASE(bad_report_size_is_einval),
		PW_CASE(unbroadcastable_syscalls_are_einval),
		PW_CASE(report_lists_every_thread),
		PW_CASE(status_names),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
