/* SPDX-License-Identifier: MIT */
/* Capabilities in every thread: bounding set (PR_CAPBSET_DROP), the
 * effective/permitted/inheritable sets (capset), the ambient set and the
 * securebits.  Each is a per-thread property (struct cred); each is changed
 * through procwide's engine and read back afterwards: the capability sets
 * from /proc, the securebits (which /proc does not show) from each
 * thread's own PR_GET_SECUREBITS. */
#include "security.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- bounding set ---------------------------------------------------------- */
static int check_bound(const struct procwide_audit_thread *t,
		       const struct procwide_audit_thread *caller,
		       const struct pws_verify_thread *before, const void *arg, char *why,
		       size_t whysz)
{
	(void)before;
	unsigned int cap = *(const unsigned int *)arg;
	if ((t->cap_bnd >> cap) & 1) {
		snprintf(why, whysz, "capability %u is still in CapBnd %016llx", cap,
			 (unsigned long long)t->cap_bnd);
		return 1;
	}
	if (t->cap_bnd != caller->cap_bnd) {
		snprintf(why, whysz, "CapBnd %016llx, the caller's is %016llx",
			 (unsigned long long)t->cap_bnd, (unsigned long long)caller->cap_bnd);
		return 1;
	}
	return 0;
}

/* Runs one change through the engine, then the check; verification needs
 * /proc opened before the change. */
static int change_and_check(struct pws_ctx *ctx, long nr, long a1, long a2, long a3,
			    pws_check_fn check, const void *arg)
{
	struct pws_verify v;
	int err = procwide__verify_open(&v, false);
	if (err) {
		procwide__sec_msg(ctx, "cannot read /proc/self/task to verify: %s",
				  strerror(-err));
		return err;
	}
	err = procwide__sec_engine(ctx, nr, a1, a2, a3, 0, 0);
	if (!err)
		err = procwide__verify_check(&v, ctx, check, arg);
	procwide__verify_close(&v);
	return err;
}

int procwide_cap_bound_drop_ex(unsigned int cap, const struct procwide_sec_opts *opts,
			       struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_cap_bound_drop", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* The kernel says EINVAL for a capability it does not know; /proc
	 * shows 64 bits, so anything above cannot be verified either. */
	if (cap > 63)
		return procwide__sec_end(&ctx, -EINVAL);
	err = change_and_check(&ctx, SYS_prctl, PR_CAPBSET_DROP, cap, 0, check_bound, &cap);
	return procwide__sec_end(&ctx, err);
}

int procwide_cap_bound_drop(unsigned int cap)
{
	return procwide_cap_bound_drop_ex(cap, NULL, NULL);
}

/* ---- capset ---------------------------------------------------------------- */
struct pws_capset_want {
	uint64_t eff, prm, inh;
};

static int check_capset(const struct procwide_audit_thread *t,
			const struct procwide_audit_thread *caller,
			const struct pws_verify_thread *before, const void *arg, char *why,
			size_t whysz)
{
	(void)before;
	const struct pws_capset_want *w = arg;
	if (t->cap_eff != w->eff || t->cap_prm != w->prm || t->cap_inh != w->inh) {
		snprintf(why, whysz,
			 "CapEff/CapPrm/CapInh %016llx/%016llx/%016llx, asked for "
			 "%016llx/%016llx/%016llx",
			 (unsigned long long)t->cap_eff, (unsigned long long)t->cap_prm,
			 (unsigned long long)t->cap_inh, (unsigned long long)w->eff,
			 (unsigned long long)w->prm, (unsigned long long)w->inh);
		return 1;
	}
	/* capset lowers the ambient set to what stays in both prm and inh. */
	if (t->cap_amb != caller->cap_amb) {
		snprintf(why, whysz, "CapAmb %016llx, the caller's is %016llx",
			 (unsigned long long)t->cap_amb, (unsigned long long)caller->cap_amb);
		return 1;
	}
	return 0;
}

int procwide_capset_ex(uint64_t effective, uint64_t permitted, uint64_t inheritable,
		       const struct procwide_sec_opts *opts, struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_capset", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* pid 0: the calling thread, in each thread.  The kernel reads both
	 * structs in each thread; none writes them (the version is right). */
	struct pws_cap_header hdr = {PWS_CAPABILITY_VERSION_3, 0};
	struct pws_cap_data data[2] = {
		{(uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable},
		{(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32),
		 (uint32_t)(inheritable >> 32)},
	};
	struct pws_capset_want w = {effective, permitted, inheritable};
	err = change_and_check(&ctx, SYS_capset, (long)&hdr, (long)data, 0, check_capset, &w);
	return procwide__sec_end(&ctx, err);
}

int procwide_capset(uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
	return procwide_capset_ex(effective, permitted, inheritable, NULL, NULL);
}

/* ---- ambient --------------------------------------------------------------- */
struct pws_ambient_want {
	int op;
	unsigned int cap;
};

static int check_ambient(const struct procwide_audit_thread *t,
			 const struct procwide_audit_thread *caller,
			 const struct pws_verify_thread *before, const void *arg, char *why,
			 size_t whysz)
{
	(void)before;
	const struct pws_ambient_want *w = arg;
	bool bad = false;
	if (w->op == PROCWIDE_CAP_AMBIENT_CLEAR_ALL)
		bad = t->cap_amb != 0;
	else if (w->op == PROCWIDE_CAP_AMBIENT_RAISE)
		bad = !((t->cap_amb >> w->cap) & 1);
	else
		bad = (t->cap_amb >> w->cap) & 1;
	if (bad || t->cap_amb != caller->cap_amb) {
		snprintf(why, whysz, "CapAmb %016llx after ambient operation %d on %u (caller %016llx)",
			 (unsigned long long)t->cap_amb, w->op, w->cap,
			 (unsigned long long)caller->cap_amb);
		return 1;
	}
	return 0;
}

int procwide_cap_ambient_ex(int op, unsigned int cap, const struct procwide_sec_opts *opts,
			    struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_cap_ambient", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	if (op != PROCWIDE_CAP_AMBIENT_RAISE && op != PROCWIDE_CAP_AMBIENT_LOWER &&
	    op != PROCWIDE_CAP_AMBIENT_CLEAR_ALL)
		return procwide__sec_end(&ctx, -EINVAL);
	if (op == PROCWIDE_CAP_AMBIENT_CLEAR_ALL ? cap != 0 : cap > 63)
		return procwide__sec_end(&ctx, -EINVAL);
	struct pws_ambient_want w = {op, cap};
	err = change_and_check(&ctx, SYS_prctl, PR_CAP_AMBIENT, op, (long)cap, check_ambient, &w);
	return procwide__sec_end(&ctx, err);
}

int procwide_cap_ambient(int op, unsigned int cap)
{
	return procwide_cap_ambient_ex(op, cap, NULL, NULL);
}

/* ---- securebits -------------------------------------------------------------- */

int procwide_securebits_ex(unsigned int bits, const struct procwide_sec_opts *opts,
			   struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_securebits", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	err = procwide__sec_engine(&ctx, SYS_prctl, PR_SET_SECUREBITS, (long)bits, 0, 0, 0);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* /proc does not show securebits: every thread reads its own, and
	 * each must equal what was asked. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_GET_SECUREBITS}};
	struct procwide_opts o = {.size = sizeof o, .mismatch = PROCWIDE_MISMATCH_REPORT,
				  .deadline_ms = ctx.deadline_ms};
	struct procwide_report rep = {.size = sizeof rep};
	err = procwide_run(&call, &o, &rep);
	if (!err && rep.result != (long)bits) {
		ctx.tid = (pid_t)syscall(SYS_gettid);
		procwide__sec_msg(&ctx, "verify: securebits read back %#lx, asked for %#x",
				  rep.result, bits);
		err = -ENOTRECOVERABLE;
	} else if (err) {
		for (size_t i = 0; i < rep.nthreads; i++)
			if (rep.threads[i].status == PROCWIDE_THREAD_MISMATCH) {
				ctx.tid = rep.threads[i].tid;
				break;
			}
		procwide__sec_msg(&ctx, "verify: %s", rep.message);
		err = -ENOTRECOVERABLE;
	} else {
		ctx.verified = 1;
		ctx.nthreads = rep.nthreads;
	}
	procwide_report_release(&rep);
	return procwide__sec_end(&ctx, err);
}

int procwide_securebits(unsigned int bits)
{
	return procwide_securebits_ex(bits, NULL, NULL);
}
