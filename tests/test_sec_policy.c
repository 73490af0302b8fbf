/* A whole policy in one call, in the order that works, verified per step;
 * including seccomp after a Landlock domain that forbids /proc. */
#include "sec_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>


static struct procwide_landlock *ruleset(bool allow_proc)
{
	struct procwide_landlock_attr attr = {
		.size = sizeof attr,
		.handled_access_fs = PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_READ_DIR};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, sw_a_dir, PROCWIDE_LL_FS_READ_FILE |
								   PROCWIDE_LL_FS_READ_DIR),
		   0);
	if (allow_proc)
		PW_EQ_LONG(procwide_landlock_allow_path(ll, "/proc", PROCWIDE_LL_FS_READ_FILE |
									     PROCWIDE_LL_FS_READ_DIR),
			   0);
	return ll;
}

static void need_landlock(void)
{
	if (procwide_landlock_abi() < 1)
		pw_skip("Landlock unavailable");
}

/* As root, the whole policy: ids, capabilities, Landlock and seccomp, in
 * idle, busy, polling and raw clone() workers and, with `blocked`, two that
 * block every signal; each then fails to open a file outside the ruleset,
 * make a filtered call or take uid 0 back. */
static void full_policy_as_root_with(bool blocked)
{
	if (!pw_have_cap(7) || !pw_have_cap(6) || !pw_have_cap(8))
		pw_skip("ids and capabilities need CAP_SETUID, CAP_SETGID, CAP_SETPCAP (root)");
	need_landlock();
	sw_tree_make("pw-policy");
	/* The sw_tree is removed at exit, by then as nobody. */
	PW_CHECK(chown(sw_tree, 65534, 65534) == 0 && chown(sw_a_dir, 65534, 65534) == 0, "chown");
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {0, 0};
	if (blocked) {
		blk[0] = sw_start_blocked(SW_BLOCKED_NANOSLEEP);
		blk[1] = sw_start_blocked(SW_BLOCKED_FUTEX);
	}
	long n = blocked ? 11 : 9;
	sw_expect(sw_open_b, 0, "open outside the ruleset, before");
	struct procwide_landlock *ll = ruleset(true);
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	gid_t groups[1] = {4242};
	struct procwide_policy p = {
		.size = sizeof p,
		.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_CAP_BOUND |
			 PROCWIDE_POLICY_GROUPS | PROCWIDE_POLICY_GID | PROCWIDE_POLICY_UID |
			 PROCWIDE_POLICY_CAPS | PROCWIDE_POLICY_AMBIENT_CLEAR |
			 PROCWIDE_POLICY_LANDLOCK | PROCWIDE_POLICY_SECCOMP,
		.cap_bound_drop = (1ULL << 13) | (1ULL << 21), /* NET_RAW, SYS_ADMIN */
		.ngroups = 1, .groups = groups,
		.rgid = 65534, .egid = 65534, .sgid = 65534,
		.ruid = 65534, .euid = 65534, .suid = 65534,
		.landlock_fd = procwide_landlock_fd(ll),
		.seccomp_prog = &f.prog,
	};
	struct procwide_sec_report rep = {.size = sizeof rep};
	int step = -1;
	PW_CHECK(procwide_apply_policy(&p, NULL, &rep, &step) == 0, "step %s: %s",
		 procwide_policy_step_name(step), rep.message);
	PW_EQ_LONG(step, PROCWIDE_STEP_NONE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL); /* the last step: seccomp TSYNC */
	PW_EQ_LONG(rep.nthreads, n);
	procwide_landlock_close(ll);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), n);
	PW_EQ_LONG(sw_all_status("Uid", sw_uid_line(65534)), n);
	PW_EQ_LONG(sw_all_status("Gid", sw_uid_line(65534)), n);
	PW_EQ_LONG(sw_all_status("Groups", "4242"), n);
	PW_EQ_LONG(sw_all_status("CapEff", "0000000000000000"), n);
	PW_EQ_LONG(sw_all_status("CapPrm", "0000000000000000"), n);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), n);
	sw_status_is(raw, "Uid", sw_uid_line(65534));
	sw_status_is(raw, "Seccomp", "2");
	char bnd[32];
	pw_task_status(pw_gettid(), "CapBnd", bnd, sizeof bnd);
	PW_EQ_LONG((strtoull(bnd, NULL, 16) >> 13) & 1, 0);
	PW_EQ_LONG(sw_all_status("CapBnd", bnd), n);
	for (int i = 0; blocked && i < 2; i++) {
		sw_status_is(blk[i], "Uid", sw_uid_line(65534));
		sw_status_is(blk[i], "Groups", "4242");
		sw_status_is(blk[i], "CapEff", "0000000000000000");
		sw_status_is(blk[i], "CapBnd", bnd);
		sw_status_is(blk[i], "Seccomp", "2");
	}
	sw_expect(sw_open_b, EACCES, "open outside the ruleset");
	sw_expect(sw_open_a, 0, "open inside the ruleset");
	sw_expect(sw_try_getppid, ENOTTY, "a filtered system call");
	sw_expect(sw_try_setuid_root, EPERM, "setresuid(0)");
	if (blocked)
		sw_blocked_intact();
}

static void full_policy_as_root(void)
{
	full_policy_as_root_with(false);
}

static void full_policy_as_root_reaches_blocked_thread(void)
{
	full_policy_as_root_with(true);
}

/* no_new_privs, the ambient set cleared, Landlock's ruleset `ll' and a
 * seccomp filter (getppid fails with ENOTTY), in one call that must
 * succeed; returns the step the policy reports. */
static int apply_full_policy(struct procwide_landlock *ll, struct procwide_sec_report *rep)
{
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_policy p = {
		.size = sizeof p,
		.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_AMBIENT_CLEAR |
			 PROCWIDE_POLICY_LANDLOCK | PROCWIDE_POLICY_SECCOMP,
		.landlock_fd = procwide_landlock_fd(ll),
		.seccomp_prog = &f.prog,
	};
	int step = -1;
	PW_CHECK(procwide_apply_policy(&p, NULL, rep, &step) == 0, "step %s: %s",
		 procwide_policy_step_name(step), rep->message);
	return step;
}

static void unprivileged_policy(void)
{
	need_landlock();
	sw_tree_make("pw-policy");
	sw_start(4, 3);
	struct procwide_landlock *ll = ruleset(false); /* /proc denied afterwards */
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(apply_full_policy(ll, &rep), PROCWIDE_STEP_NONE);
	/* seccomp was verified from status files opened before Landlock. */
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 8);
	procwide_landlock_close(ll);
	PW_CHECK(open("/proc/self/status", O_RDONLY) < 0 && errno == EACCES, "/proc still open");
	sw_expect(sw_open_b, EACCES, "open outside the ruleset");
	sw_expect(sw_open_a, 0, "open inside the ruleset");
	sw_expect(sw_try_getppid, ENOTTY, "a filtered system call");
}

static void stops_at_failed_step(void)
{
	sw_start(2, 2);
	struct procwide_policy p = {
		.size = sizeof p,
		.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_UID | PROCWIDE_POLICY_SECCOMP,
		.ruid = 0, .euid = 0, .suid = 0,
	};
	int want = -EPERM, want_step = PROCWIDE_STEP_UID;
	if (pw_have_cap(7)) {
		/* root may take uid 0: make the cap step fail instead. */
		p.apply |= PROCWIDE_POLICY_CAP_BOUND;
		p.cap_bound_drop = 1ULL << 63;
		want = -EINVAL;
		want_step = PROCWIDE_STEP_CAP_BOUND;
	}
	struct procwide_sec_report rep = {.size = sizeof rep};
	int step = -1;
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, &rep, &step), want);
	PW_EQ_LONG(step, want_step);
	PW_CHECK(strcmp(procwide_policy_step_name(step), want == -EPERM ? "uid" : "cap_bound") == 0,
		 "%s", procwide_policy_step_name(step));
	/* The steps before stay applied; the ones after never ran. */
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 5);
	PW_EQ_LONG(sw_all_status("Seccomp", "0"), 5);
}

/* FORCE_ADD through the policy: it reaches the seccomp step only (the
 * other steps take no flag), and composes with a sibling's own filter. */
static void force_add_reaches_seccomp_step(void)
{
	sw_start(4, 2);
	pid_t own_tid = sw_start_self_confining();
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_policy p = {
		.size = sizeof p,
		.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_AMBIENT_CLEAR |
			 PROCWIDE_POLICY_SECCOMP,
		.seccomp_prog = &f.prog,
	};
	struct procwide_sec_report rep = {.size = sizeof rep};
	int step = -1;
	/* Without FORCE_ADD: the divergence, at the seccomp step. */
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, &rep, &step), -ESRCH);
	PW_EQ_LONG(step, PROCWIDE_STEP_SECCOMP);
	PW_EQ_LONG(rep.tid, own_tid);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	PW_CHECK(procwide_apply_policy(&p, &o, &rep, &step) == 0, "step %s: %s",
		 procwide_policy_step_name(step), rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 8);
	sw_status_is(own_tid, "Seccomp_filters", "2");
	PW_EQ_LONG(sw_all_status_except("Seccomp_filters", "1", own_tid), 7);
	sw_expect(sw_try_getppid, ENOTTY, "a filtered system call");
}

static void bad_input(void)
{
	int step = -1;
	PW_EQ_LONG(procwide_apply_policy(NULL, NULL, NULL, &step), -EFAULT);
	struct procwide_policy p = {.size = 4};
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, NULL, NULL), -EINVAL);
	p.size = sizeof p;
	p.apply = 1u << 20;
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, NULL, NULL), -EINVAL);
	/* A step whose fields are past the caller's struct size. */
	p.apply = PROCWIDE_POLICY_SECCOMP;
	p.size = offsetof(struct procwide_policy, seccomp_prog);
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, NULL, NULL), -EINVAL);
	PW_CHECK(strcmp(procwide_policy_step_name(99), "unknown") == 0, "name");
	PW_EQ_LONG(step, PROCWIDE_STEP_NONE);
	/* Nothing at all: a valid no-op. */
	p.size = sizeof p;
	p.apply = 0;
	PW_EQ_LONG(procwide_apply_policy(&p, NULL, NULL, NULL), 0);
}

/* ---- threads that block every signal ----------------------------------- */
/* The unprivileged policy reaches the two workers that block every signal
 * (no_new_privs and Landlock through the engine, so the ptrace helper for
 * them; seccomp by TSYNC).  /proc stays readable to check them after. */
static void unprivileged_policy_reaches_blocked_thread(void)
{
	need_landlock();
	sw_tree_make("pw-policy");
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	sw_expect(sw_open_b, 0, "open outside the ruleset, before");
	struct procwide_landlock *ll = ruleset(true);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(apply_full_policy(ll, &rep), PROCWIDE_STEP_NONE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	procwide_landlock_close(ll);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 11);
	PW_EQ_LONG(sw_all_status("Seccomp", "2"), 11);
	PW_EQ_LONG(sw_all_status("Seccomp_filters", "1"), 11);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000000"), 11);
	for (int i = 0; i < 2; i++) {
		sw_status_is(blk[i], "NoNewPrivs", "1");
		sw_status_is(blk[i], "Seccomp", "2");
	}
	sw_status_is(raw, "Seccomp", "2");
	sw_expect(sw_open_b, EACCES, "open outside the ruleset");
	sw_expect(sw_open_a, 0, "open inside the ruleset");
	sw_expect(sw_try_getppid, ENOTTY, "a filtered system call");
	sw_blocked_intact();
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(full_policy_as_root),
		PW_CASE(unprivileged_policy),
		PW_CASE(stops_at_failed_step),
		PW_CASE(force_add_reaches_seccomp_step),
		PW_CASE(unprivileged_policy_reaches_blocked_thread),
		PW_CASE(full_policy_as_root_reaches_blocked_thread),
		PW_CASE(bad_input),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
