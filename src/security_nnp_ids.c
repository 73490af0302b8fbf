/* SPDX-License-Identifier: MIT */
/* no_new_privs, uids, gids and supplementary groups in every thread.  The
 * ids go through the raw system calls in each thread (procwide's engine), so
 * that raw clone() threads, which glibc's own set*id broadcast never heard
 * of, change too; then every thread's /proc status is compared with what was
 * asked. */
#include "security.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int procwide_no_new_privs_ex(const struct procwide_sec_opts *opts,
			     struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_no_new_privs", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	struct pws_verify v;
	err = procwide__verify_open(&v, false);
	if (err) {
		procwide__sec_msg(&ctx, "cannot read /proc/self/task to verify: %s",
				  strerror(-err));
		return procwide__sec_end(&ctx, err);
	}
	err = procwide__sec_engine(&ctx, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (!err)
		err = procwide__verify_check(&v, &ctx, procwide__check_nnp, NULL);
	procwide__verify_close(&v);
	return procwide__sec_end(&ctx, err);
}

int procwide_no_new_privs(void)
{
	return procwide_no_new_privs_ex(NULL, NULL);
}

/* ---- uids and gids ------------------------------------------------------- */
struct pws_ids_want {
	int field;	   /* PROCWIDE_AUDIT_UID or _GID */
	unsigned int r, e, s; /* (unsigned)-1: keep */
};

static int check_ids(const struct procwide_audit_thread *t, const struct procwide_audit_thread *caller,
		     const struct pws_verify_thread *before, const void *arg, char *why, size_t whysz)
{
	(void)before;
	const struct pws_ids_want *w = arg;
	bool uid = w->field == PROCWIDE_AUDIT_UID;
	const unsigned int *have = uid ? (const unsigned int *)t->uid : (const unsigned int *)t->gid;
	const unsigned int *ref = uid ? (const unsigned int *)caller->uid : (const unsigned int *)caller->gid;
	const unsigned int want[3] = {w->r, w->e, w->s};
	const char *name = uid ? "Uid" : "Gid";
	for (int i = 0; i < 3; i++) {
		if (want[i] != (unsigned int)-1 && have[i] != want[i]) {
			snprintf(why, whysz, "%s field %d is %u, asked for %u", name, i, have[i], want[i]);
			return 1;
		}
	}
	/* The kernel sets the filesystem id to the new effective id. */
	if (have[3] != have[1]) {
		snprintf(why, whysz, "%s: filesystem id %u differs from effective %u", name, have[3],
			 have[1]);
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		if (have[i] != ref[i]) {
			snprintf(why, whysz, "%s field %d is %u, the caller's is %u", name, i, have[i],
				 ref[i]);
			return 1;
		}
	}
	return 0;
}

static int set_ids(const char *fn, long nr, int field, unsigned int r, unsigned int e,
		   unsigned int s, const struct procwide_sec_opts *opts,
		   struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, fn, opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	struct pws_verify v;
	err = procwide__verify_open(&v, false);
	if (err) {
		procwide__sec_msg(&ctx, "cannot read /proc/self/task to verify: %s",
				  strerror(-err));
		return procwide__sec_end(&ctx, err);
	}
	/* uid_t is 32 bits: (long)(unsigned)-1 reaches the kernel as -1. */
	err = procwide__sec_engine(&ctx, nr, (long)r, (long)e, (long)s, 0, 0);
	if (!err) {
		struct pws_ids_want w = {field, r, e, s};
		err = procwide__verify_check(&v, &ctx, check_ids, &w);
	}
	procwide__verify_close(&v);
	return procwide__sec_end(&ctx, err);
}

int procwide_setresuid_ex(uid_t ruid, uid_t euid, uid_t suid, const struct procwide_sec_opts *opts,
			  struct procwide_sec_report *report)
{
	return set_ids("procwide_setresuid", SYS_setresuid, PROCWIDE_AUDIT_UID, ruid, euid, suid,
		       opts, report);
}

int procwide_setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	return procwide_setresuid_ex(ruid, euid, suid, NULL, NULL);
}

int procwide_setresgid_ex(gid_t rgid, gid_t egid, gid_t sgid, const struct procwide_sec_opts *opts,
			  struct procwide_sec_report *report)
{
	return set_ids("procwide_setresgid", SYS_setresgid, PROCWIDE_AUDIT_GID, rgid, egid, sgid,
		       opts, report);
}

int procwide_setresgid(gid_t rgid, gid_t egid, gid_t sgid)
{
	return procwide_setresgid_ex(rgid, egid, sgid, NULL, NULL);
}

/* ---- supplementary groups ------------------------------------------------ */
struct pws_groups_want {
	size_t n;
	const gid_t *sorted; /* the kernel keeps (and /proc shows) them sorted */
};

static int cmp_gid(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
	return x < y ? -1 : x > y;
}

static int check_groups(const struct procwide_audit_thread *t,
			const struct procwide_audit_thread *caller,
			const struct pws_verify_thread *before, const void *arg, char *why,
			size_t whysz)
{
	(void)caller, (void)before;
	const struct pws_groups_want *w = arg;
	if (t->ngroups != w->n) {
		snprintf(why, whysz, "%zu supplementary groups, asked for %zu", t->ngroups, w->n);
		return 1;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (t->groups[i] != w->sorted[i]) {
			snprintf(why, whysz, "group %zu is %u, asked for %u", i,
				 (unsigned)t->groups[i], (unsigned)w->sorted[i]);
			return 1;
		}
	}
	return 0;
}

int procwide_setgroups_ex(size_t size, const gid_t *list, const struct procwide_sec_opts *opts,
			  struct procwide_sec_report *report)
{
	struct pws_ctx ctx;
	int err = procwide__sec_begin(&ctx, "procwide_setgroups", opts, 0, report);
	if (err)
		return procwide__sec_end(&ctx, err);
	/* Refused here, as the kernel would, before anything is copied:
	 * NGROUPS_MAX is 65536. */
	if (size > 65536)
		return procwide__sec_end(&ctx, -EINVAL);
	if (size && !list)
		return procwide__sec_end(&ctx, -EFAULT);
	gid_t *sorted = malloc((size ? size : 1) * sizeof *sorted);
	if (!sorted)
		return procwide__sec_end(&ctx, -ENOMEM);
	if (size)
		memcpy(sorted, list, size * sizeof *sorted);
	qsort(sorted, size, sizeof *sorted, cmp_gid);
	struct pws_verify v;
	err = procwide__verify_open(&v, false);
	if (err) {
		free(sorted);
		procwide__sec_msg(&ctx, "cannot read /proc/self/task to verify: %s",
				  strerror(-err));
		return procwide__sec_end(&ctx, err);
	}
	err = procwide__sec_engine(&ctx, SYS_setgroups, (long)size, (long)sorted, 0, 0, 0);
	if (!err) {
		struct pws_groups_want w = {size, sorted};
		err = procwide__verify_check(&v, &ctx, check_groups, &w);
	}
	procwide__verify_close(&v);
	free(sorted);
	return procwide__sec_end(&ctx, err);
}

int procwide_setgroups(size_t size, const gid_t *list)
{
	return procwide_setgroups_ex(size, list, NULL, NULL);
}
