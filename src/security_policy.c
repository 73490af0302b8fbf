/* SPDX-License-Identifier: MIT */
/* A whole policy in the order that does not lock the process out of its own
 * next step:
 *   no_new_privs      first: Landlock and seccomp need it without
 *                     CAP_SYS_ADMIN, and it never blocks the steps between
 *   bounding set,     need CAP_SETPCAP, which the uid change may take away
 *   securebits        (securebits can keep capabilities across it)
 *   groups, gid       need CAP_SETGID, which the uid change takes away
 *   uid
 *   capset, ambient   after the uid change, which clears the effective (and,
 *                     without SECBIT_KEEP_CAPS, the permitted) set
 *   Landlock
 *   seccomp           last: the filter may deny the system calls the other
 *                     steps and procwide's engine use
 * Each step is one of the public calls, process-wide and verified. */
#include "security.h"
#include "sized.h"
#include "internal.h"

#include <errno.h>
#include <string.h>

#define POL_HAS(p, field) ((p)->size >= offsetof(struct procwide_policy, field) + sizeof((p)->field))
#define POL_KNOWN ((PROCWIDE_POLICY_SECCOMP << 1) - 1)

const char *procwide_policy_step_name(int step)
{
	static const char *const names[] = {
		[PROCWIDE_STEP_NONE] = "none",
		[PROCWIDE_STEP_NO_NEW_PRIVS] = "no_new_privs",
		[PROCWIDE_STEP_CAP_BOUND] = "cap_bound",
		[PROCWIDE_STEP_SECUREBITS] = "securebits",
		[PROCWIDE_STEP_GROUPS] = "groups",
		[PROCWIDE_STEP_GID] = "gid",
		[PROCWIDE_STEP_UID] = "uid",
		[PROCWIDE_STEP_CAPS] = "caps",
		[PROCWIDE_STEP_AMBIENT_CLEAR] = "ambient_clear",
		[PROCWIDE_STEP_LANDLOCK] = "landlock",
		[PROCWIDE_STEP_SECCOMP] = "seccomp",
	};
	if (step < 0 || (size_t)step >= sizeof names / sizeof names[0])
		return "unknown";
	return names[step];
}

int procwide_apply_policy(const struct procwide_policy *policy, const struct procwide_sec_opts *opts,
			  struct procwide_sec_report *report, int *failed_step)
{
	int step = PROCWIDE_STEP_NONE, err = 0;
	struct pws_ctx ctx;
	if (failed_step)
		*failed_step = PROCWIDE_STEP_NONE;
	err = procwide__sec_begin(&ctx, "procwide_apply_policy", opts,
				  PROCWIDE_SEC_SECCOMP_FORCE_ADD, report);
	if (!err && !policy)
		err = -EFAULT;
	if (!err && (!PW_HAS_FIELD(policy, apply) ||
		     !procwide__tail_is_zero(policy, policy->size, sizeof *policy)))
		err = -EINVAL;
	if (!err && (policy->apply & ~(unsigned int)POL_KNOWN))
		err = -EINVAL;
	/* Every field a requested step needs must be inside the caller's
	 * struct: a step with fields we cannot see is refused. */
	static const struct {
		unsigned int bit;
		size_t end;
	} need[] = {
		{PROCWIDE_POLICY_CAP_BOUND, offsetof(struct procwide_policy, cap_bound_drop) + sizeof(uint64_t)},
		{PROCWIDE_POLICY_SECUREBITS, offsetof(struct procwide_policy, securebits) + sizeof(unsigned int)},
		{PROCWIDE_POLICY_GROUPS, offsetof(struct procwide_policy, groups) + sizeof(void *)},
		{PROCWIDE_POLICY_GID, offsetof(struct procwide_policy, sgid) + sizeof(gid_t)},
		{PROCWIDE_POLICY_UID, offsetof(struct procwide_policy, suid) + sizeof(uid_t)},
		{PROCWIDE_POLICY_CAPS, offsetof(struct procwide_policy, cap_inheritable) + sizeof(uint64_t)},
		{PROCWIDE_POLICY_LANDLOCK, offsetof(struct procwide_policy, landlock_flags) + sizeof(unsigned int)},
		{PROCWIDE_POLICY_SECCOMP, offsetof(struct procwide_policy, seccomp_flags) + sizeof(unsigned int)},
	};
	for (size_t i = 0; !err && i < sizeof need / sizeof need[0]; i++)
		if ((policy->apply & need[i].bit) && policy->size < need[i].end)
			err = -EINVAL;
	if (err) {
		if (!ctx.message[0])
			procwide__sec_msg(&ctx, "procwide_apply_policy: %s",
					  err == -EFAULT ? "policy is NULL"
							 : "bad policy size or unknown steps");
		return procwide__sec_end(&ctx, err);
	}
	const struct procwide_policy *p = policy;
	unsigned int a = p->apply;
	/* Changing ids makes the kernel mark the process non-dumpable, and
	 * dropping root takes CAP_SYS_PTRACE: later steps could then no
	 * longer reach a thread that blocks every signal.  One ptrace helper,
	 * forked now, before anything changes, serves every step. */
	procwide__session(true);
	/* The other steps take no option flag: they get the deadline only
	 * (FORCE_ADD is for the seccomp step). */
	struct procwide_sec_opts sub = {.size = sizeof sub, .deadline_ms = ctx.deadline_ms};
	const struct procwide_sec_opts *o = &sub;

#define STEP(bit, id, expr)                                                    \
	do {                                                                   \
		if ((a & (bit)) && !err) {                                     \
			step = (id);                                           \
			err = (expr);                                          \
		}                                                              \
	} while (0)

	STEP(PROCWIDE_POLICY_NO_NEW_PRIVS, PROCWIDE_STEP_NO_NEW_PRIVS,
	     procwide_no_new_privs_ex(o, report));
	if (!err && (a & PROCWIDE_POLICY_CAP_BOUND)) {
		step = PROCWIDE_STEP_CAP_BOUND;
		for (unsigned int cap = 0; cap < 64 && !err; cap++)
			if ((p->cap_bound_drop >> cap) & 1)
				err = procwide_cap_bound_drop_ex(cap, o, report);
	}
	STEP(PROCWIDE_POLICY_SECUREBITS, PROCWIDE_STEP_SECUREBITS,
	     procwide_securebits_ex(p->securebits, o, report));
	STEP(PROCWIDE_POLICY_GROUPS, PROCWIDE_STEP_GROUPS,
	     procwide_setgroups_ex(p->ngroups, p->groups, o, report));
	STEP(PROCWIDE_POLICY_GID, PROCWIDE_STEP_GID,
	     procwide_setresgid_ex(p->rgid, p->egid, p->sgid, o, report));
	STEP(PROCWIDE_POLICY_UID, PROCWIDE_STEP_UID,
	     procwide_setresuid_ex(p->ruid, p->euid, p->suid, o, report));
	STEP(PROCWIDE_POLICY_CAPS, PROCWIDE_STEP_CAPS,
	     procwide_capset_ex(p->cap_effective, p->cap_permitted, p->cap_inheritable, o, report));
	STEP(PROCWIDE_POLICY_AMBIENT_CLEAR, PROCWIDE_STEP_AMBIENT_CLEAR,
	     procwide_cap_ambient_ex(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 0, o, report));
	/* The seccomp step is verified from status files opened now, before
	 * the Landlock domain may forbid opening anything under /proc. */
	struct pws_verify v = {.taskfd = -1};
	if (!err && (a & PROCWIDE_POLICY_SECCOMP)) {
		int e = procwide__verify_open(&v, true);
		if (e) {
			step = PROCWIDE_STEP_SECCOMP;
			err = e;
			procwide__sec_msg(&ctx, "cannot open /proc/self/task to verify: %s",
					  strerror(-e));
			procwide__sec_end(&ctx, err);
		}
	}
	STEP(PROCWIDE_POLICY_LANDLOCK, PROCWIDE_STEP_LANDLOCK,
	     procwide_landlock_restrict_ex(p->landlock_fd, p->landlock_flags, o, report));
	if (!err && (a & PROCWIDE_POLICY_SECCOMP)) {
		step = PROCWIDE_STEP_SECCOMP;
		err = procwide__sec_begin(&ctx, "procwide_apply_policy", opts,
					  PROCWIDE_SEC_SECCOMP_FORCE_ADD, report);
		if (!err)
			err = procwide__seccomp_apply(&ctx, p->seccomp_prog, p->seccomp_flags, &v);
		err = procwide__sec_end(&ctx, err);
	}
	if (v.taskfd >= 0)
		procwide__verify_close(&v);
#undef STEP
	procwide__session(false);
	if (err < 0 && failed_step)
		*failed_step = step;
	/* A listener descriptor is returned as is; the report is the last
	 * step's, which says how the last change reached every thread. */
	return err;
}
