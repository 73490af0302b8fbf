/* SPDX-License-Identifier: MIT */
/* Shared by the process-wide security calls: the option and report structs
 * (size-checked, as procwide_opts and procwide_report are) and the engine
 * path through procwide_run(). */
#include "security.h"
#include "sized.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PWS_HAS(s, field) PW_HAS_FIELD(s, field)
#define PWS_REPORT_MIN (offsetof(struct procwide_sec_report, path) + sizeof(int))

void procwide__sec_msg(struct pws_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
	va_end(ap);
}

int procwide__sec_begin(struct pws_ctx *ctx, const char *fn, const struct procwide_sec_opts *opts,
			unsigned int known_flags, struct procwide_sec_report *report)
{
	memset(ctx, 0, sizeof *ctx);
	if (report && report->size >= PWS_REPORT_MIN)
		ctx->report = report;
	if (report && !ctx->report)
		return -EINVAL; /* nowhere to say why */
	if (opts && (opts->size < sizeof(size_t) ||
		     !procwide__tail_is_zero(opts, opts->size, sizeof *opts))) {
		procwide__sec_msg(ctx, "%s: opts->size is too small, or larger with unknown "
				       "non-zero fields", fn);
		return -EINVAL;
	}
	ctx->flags = opts && PWS_HAS(opts, flags) ? opts->flags : 0;
	ctx->deadline_ms = opts && PWS_HAS(opts, deadline_ms) ? opts->deadline_ms : 0;
	if (ctx->flags & ~known_flags) {
		procwide__sec_msg(ctx, "%s: unknown or inapplicable option flags %#x", fn,
				  ctx->flags & ~known_flags);
		return -EINVAL;
	}
	return 0;
}

int procwide__sec_end(struct pws_ctx *ctx, int err)
{
	struct procwide_sec_report *r = ctx->report;
	if (err < 0 && !ctx->message[0])
		procwide__sec_msg(ctx, "%s", strerror(-err));
	if (err < 0 && err != -ENOTRECOVERABLE) {
		ctx->verified = 0;
		ctx->nthreads = 0;
	}
	if (!err)
		ctx->message[0] = 0;
	if (!r)
		return err;
	struct procwide_sec_report full;
	memset(&full, 0, sizeof full);
	full.size = r->size;
	full.path = ctx->path;
	full.verified = ctx->verified;
	full.nthreads = ctx->nthreads;
	full.tid = ctx->tid;
	memcpy(full.message, ctx->message, sizeof full.message);
	procwide__copy_sized(r, r->size, &full, sizeof full);
	return err;
}

int procwide__sec_engine(struct pws_ctx *ctx, long nr, long a1, long a2, long a3, long a4,
			 long a5)
{
	struct procwide_call call = {.nr = nr, .args = {a1, a2, a3, a4, a5, 0}};
	struct procwide_opts o = {
		.size = sizeof o,
		.mismatch = PROCWIDE_MISMATCH_KILL,
		.deadline_ms = ctx->deadline_ms,
	};
	struct procwide_report rep = {.size = sizeof rep};
	int err = procwide_run(&call, &o, &rep);
	ctx->path = PROCWIDE_SEC_PATH_ENGINE;
	if (err) {
		procwide__sec_msg(ctx, "%s", rep.message[0] ? rep.message : strerror(-err));
		for (size_t i = 0; i < rep.nthreads; i++) {
			int st = rep.threads[i].status;
			if (st == PROCWIDE_THREAD_BLOCKED || st == PROCWIDE_THREAD_NO_ANSWER ||
			    st == PROCWIDE_THREAD_QUEUE_FULL || st == PROCWIDE_THREAD_MISMATCH) {
				ctx->tid = rep.threads[i].tid;
				break;
			}
		}
	} else {
		ctx->nthreads = 0;
		for (size_t i = 0; i < rep.nthreads; i++)
			if (rep.threads[i].status == PROCWIDE_THREAD_CALLER ||
			    rep.threads[i].status == PROCWIDE_THREAD_OK)
				ctx->nthreads++;
	}
	procwide_report_release(&rep);
	return err;
}

int procwide__sec_have_nnp(void)
{
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
}

int procwide__sec_copy_nnp(struct pws_ctx *ctx)
{
	if (!procwide__sec_have_nnp())
		return 0;
	struct pws_ctx sub = *ctx;
	int err = procwide__sec_engine(&sub, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (err) {
		ctx->tid = sub.tid;
		procwide__sec_msg(ctx, "giving every thread no_new_privs first: %s", sub.message);
	}
	return err;
}
