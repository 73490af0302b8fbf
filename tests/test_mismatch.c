/* Differing results: killed by default, reported on request.  gettid
 * returns a different value in every thread, a guaranteed mismatch. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void mismatch_kills_the_process(void)
{
	int pfd[2];
	PW_CHECK(pipe(pfd) == 0, "pipe");
	pid_t p = fork();
	PW_CHECK(p >= 0, "fork");
	if (p == 0) {
		dup2(pfd[1], 2);
		pw_idle_start(3);
		procwide_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
		_exit(0); /* must not be reached */
	}
	close(pfd[1]);
	pw_expect_mismatch_kill(p, pfd[0]);
}

static void mismatch_reported_on_request(void)
{
	struct pw_idle *idle = pw_idle_start(4);
	struct procwide_call call = {.nr = SYS_gettid};
	struct procwide_opts opts = {.size = sizeof opts, .mismatch = PROCWIDE_MISMATCH_REPORT};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, &opts, &rep), -ENOTRECOVERABLE);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_MISMATCH);
	PW_EQ_LONG(rep.result, pw_gettid());
	PW_EQ_LONG(rep.nthreads, 5);
	PW_EQ_LONG(rep.nmismatch, 4);
	for (size_t i = 0; i < rep.nthreads; i++) {
		struct procwide_thread *t = &rep.threads[i];
		PW_EQ_LONG(t->result, t->tid);
		PW_EQ_LONG(t->status, t->tid == pw_gettid() ? PROCWIDE_THREAD_CALLER
							    : PROCWIDE_THREAD_MISMATCH);
	}
	PW_CHECK(strstr(rep.message, "4 thread(s)"), "%s", rep.message);
	procwide_report_release(&rep);
	pw_idle_stop(idle);
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(mismatch_kills_the_process),
		PW_CASE(mismatch_reported_on_request),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
