/* The public edge: argument and size checks, errno for procwide_syscall,
 * and copying results into the caller's report as far as its size allows. */
#include "internal.h"
#include "sized.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[256];

bool procwide__tail_is_zero(const void *p, size_t size, size_t known)
{
	const unsigned char *b = p;
	for (size_t i = known; i < size; i++)
		if (b[i])
			return false;
	return true;
}

void procwide__copy_sized(void *dst, size_t dst_size, const void *full, size_t full_size)
{
	memcpy(dst, full, dst_size < full_size ? dst_size : full_size);
	if (dst_size > full_size)
		memset((char *)dst + full_size, 0, dst_size - full_size);
}

#define OPT(opts, field, dflt) ((opts) && PW_HAS_FIELD(opts, field) ? (opts)->field : (dflt))

#define REPORT_MIN_SIZE (offsetof(struct procwide_report, outcome) + sizeof(int))

static int read_request(const struct procwide_call *call, const struct procwide_opts *opts,
			const struct procwide_report *report, struct pw_request *req,
			const char **why)
{
	*why = NULL;
	if (!call) {
		*why = "procwide_run: call is NULL";
		return -EFAULT;
	}
	if (opts && (opts->size < sizeof(size_t) ||
		     !procwide__tail_is_zero(opts, opts->size, sizeof *opts))) {
		*why = "procwide_run: opts->size is too small, or larger with unknown non-zero fields";
		return -EINVAL;
	}
	if (report && report->size < REPORT_MIN_SIZE) {
		*why = "procwide_run: report->size is too small (set it to sizeof(struct procwide_report))";
		return -EINVAL;
	}
	unsigned mismatch = OPT(opts, mismatch, PROCWIDE_MISMATCH_KILL);
	unsigned flags = OPT(opts, flags, 0u);
	if (mismatch > PROCWIDE_MISMATCH_REPORT ||
	    (flags & ~(PROCWIDE_NO_PTRACE | PROCWIDE_PTRACE_ALL | PROCWIDE_ATOMIC)) ||
	    (flags & PROCWIDE_NO_PTRACE && flags & PROCWIDE_PTRACE_ALL)) {
		*why = "procwide_run: unknown mismatch policy or flags";
		return -EINVAL;
	}
	req->call = *call;
	req->kill_on_mismatch = mismatch == PROCWIDE_MISMATCH_KILL;
	req->deadline_ms = OPT(opts, deadline_ms, 0u);
	if (!req->deadline_ms)
		req->deadline_ms = PROCWIDE_DEFAULT_DEADLINE_MS;
	req->signo = OPT(opts, signal, 0);
	/* Checked here too, so that a bad value is refused whether or not a
	 * signal ends up being used (PROCWIDE_PTRACE_ALL uses none). */
	if (req->signo && (req->signo < 35 || req->signo < SIGRTMIN || req->signo > SIGRTMAX)) {
		*why = "procwide_run: opts->signal is not a real-time signal procwide may use (35..SIGRTMAX)";
		return -EINVAL;
	}
	req->may_inject = !(flags & PROCWIDE_NO_PTRACE);
	req->inject_all = flags & PROCWIDE_PTRACE_ALL;
	req->atomic = flags & PROCWIDE_ATOMIC;
	req->want_threads = report &&
			    report->size >= offsetof(struct procwide_report, threads) +
						    sizeof(report->threads);
	return 0;
}

static void copy_report(struct procwide_report *report, const struct pw_result *res)
{
	struct procwide_report full;
	memset(&full, 0, sizeof full);
	full.size = report->size;
	full.outcome = res->outcome;
	full.signal = res->signo;
	full.result = res->result;
	full.nthreads = res->nthreads;
	full.threads = res->threads;
	full.nmismatch = res->nmismatch;
	full.nunreachable = res->nunreachable;
	full.elapsed_ns = res->elapsed_ns;
	full.mode = res->mode;
	full.proof = res->proof;
	memcpy(full.message, res->message, sizeof full.message);
	procwide__copy_sized(report, report->size, &full, sizeof full);
}

int procwide_run(const struct procwide_call *call, const struct procwide_opts *opts,
		 struct procwide_report *report)
{
	struct pw_request req;
	struct pw_result res;
	const char *why;
	int e = read_request(call, opts, report, &req, &why);
	if (e) {
		snprintf(last_error, sizeof last_error, "%s", why);
		return e;
	}
	procwide__engine_run(&req, &res);
	snprintf(last_error, sizeof last_error, "%s", res.ret ? res.message : "");
	if (report)
		copy_report(report, &res);
	else
		free(res.threads);
	return res.ret;
}

long procwide_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct pw_request req = {
		.call = {nr, {a1, a2, a3, a4, a5, a6}},
		.kill_on_mismatch = 1,
		.deadline_ms = PROCWIDE_DEFAULT_DEADLINE_MS,
		.may_inject = true,
	};
	struct pw_result res;
	procwide__engine_run(&req, &res);
	snprintf(last_error, sizeof last_error, "%s", res.ret ? res.message : "");
	if (res.ret) {
		errno = -res.ret;
		return -1;
	}
	return res.result;
}

void procwide_report_release(struct procwide_report *report)
{
	if (!report || report->size < offsetof(struct procwide_report, threads) +
					       sizeof(report->threads))
		return;
	free(report->threads);
	report->threads = NULL;
	report->nthreads = 0;
}

const char *procwide_thread_status_name(int status)
{
	static const char *const names[] = {
		[PROCWIDE_THREAD_CALLER] = "caller",
		[PROCWIDE_THREAD_OK] = "ok",
		[PROCWIDE_THREAD_MISMATCH] = "mismatch",
		[PROCWIDE_THREAD_NOT_RUN] = "not-run",
		[PROCWIDE_THREAD_EXITED] = "exited",
		[PROCWIDE_THREAD_ZOMBIE] = "zombie",
		[PROCWIDE_THREAD_BLOCKED] = "blocked",
		[PROCWIDE_THREAD_NO_ANSWER] = "no-answer",
		[PROCWIDE_THREAD_QUEUE_FULL] = "queue-full",
		[PROCWIDE_THREAD_NO_PTRACE] = "no-ptrace",
		[PROCWIDE_THREAD_KERNEL_WORKER] = "kernel-worker",
	};
	if (status < 0 || (size_t)status >= sizeof names / sizeof names[0])
		return "unknown";
	return names[status];
}

const char *procwide_last_error(void)
{
	return last_error;
}
