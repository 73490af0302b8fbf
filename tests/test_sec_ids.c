/* no_new_privs, uids, gids and groups in every thread (idle, busy, polling,
 * and a raw clone() thread glibc never heard of), checked from /proc and by
 * an operation each thread attempts. */
#include "sec_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>

static int get_nnp(void)
{
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : EINVAL;
}

static void nnp_every_thread(void)
{
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	PW_CHECK(sw_all_status("NoNewPrivs", "0") == 9, "threads");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_no_new_privs_ex(NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	PW_EQ_LONG(rep.tid, 0);
	PW_CHECK(rep.message[0] == 0, "%s", rep.message);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 9);
	sw_status_is(raw, "NoNewPrivs", "1");
	sw_expect(get_nnp, 0, "PR_GET_NO_NEW_PRIVS");
	/* Again: idempotent. */
	PW_EQ_LONG(procwide_no_new_privs(), 0);
}

static void bad_sizes(void)
{
	struct procwide_sec_report small = {.size = sizeof(size_t)};
	PW_EQ_LONG(procwide_no_new_privs_ex(NULL, &small), -EINVAL);
	struct procwide_sec_opts o = {.size = 1};
	PW_EQ_LONG(procwide_no_new_privs_ex(&o, NULL), -EINVAL);
	o.size = sizeof o;
	o.flags = 1u << 30;
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_no_new_privs_ex(&o, &rep), -EINVAL);
	PW_CHECK(strstr(rep.message, "flags"), "%s", rep.message);
	/* FORCE_ADD means nothing here: refused, never ignored. */
	o.flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD;
	PW_EQ_LONG(procwide_setresuid_ex((uid_t)-1, (uid_t)-1, (uid_t)-1, &o, NULL), -EINVAL);
	/* A larger struct from a newer header: accepted with a zero tail. */
	struct {
		struct procwide_sec_opts o;
		uint64_t more;
	} big = {{.size = sizeof big}, 0};
	PW_EQ_LONG(procwide_no_new_privs_ex(&big.o, NULL), 0);
	big.more = 1;
	PW_EQ_LONG(procwide_no_new_privs_ex(&big.o, NULL), -EINVAL);
	/* A smaller report (an older header) gets what fits. */
	struct procwide_sec_report old = {.size = offsetof(struct procwide_sec_report, nthreads)};
	old.nthreads = 77;
	PW_EQ_LONG(procwide_no_new_privs_ex(NULL, &old), 0);
	PW_EQ_LONG(old.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(old.nthreads, 77);
}

static void groups_bad_input(void)
{
	gid_t g[1] = {0};
	PW_EQ_LONG(procwide_setgroups(65537, g), -EINVAL);
	PW_EQ_LONG(procwide_setgroups(1, NULL), -EFAULT);
}

static void ids_unprivileged_refused(void)
{
	if (pw_have_cap(6 /* CAP_SETGID */) || pw_have_cap(7 /* CAP_SETUID */))
		pw_skip("checks the refusal an unprivileged caller gets; this one holds CAP_SETUID/CAP_SETGID");
	sw_start(2, 2);
	pw_start_raw_thread();
	uid_t uid = getuid();
	gid_t gid = getgid();
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_setresuid_ex(0, 0, 0, NULL, &rep), -EPERM);
	PW_EQ_LONG(rep.verified, 0);
	PW_EQ_LONG(rep.nthreads, 0);
	PW_EQ_LONG(procwide_setresgid(0, 0, 0), -EPERM);
	gid_t g[2] = {0, 1};
	PW_EQ_LONG(procwide_setgroups(2, g), -EPERM);
	/* Nothing changed anywhere. */
	char want[64];
	snprintf(want, sizeof want, "%u\t%u\t%u\t%u", uid, uid, uid, uid);
	PW_EQ_LONG(sw_all_status("Uid", want), 6);
	/* What an unprivileged caller may do works, and is verified. */
	PW_EQ_LONG(procwide_setresuid_ex((uid_t)-1, uid, (uid_t)-1, NULL, &rep), 0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 6);
	PW_EQ_LONG(procwide_setresgid(gid, gid, gid), 0);
}

static char secret[64];

static int open_secret(void)
{
	int fd = open(secret, O_RDONLY);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

/* A file only root (and group shadow) may read, which exists already: a
 * test that drops root could not remove a file of its own afterwards. */
static void use_shadow(void)
{
	struct stat st;
	if (stat("/etc/shadow", &st) != 0 || st.st_uid != 0 || (st.st_mode & 0004))
		pw_skip("needs /etc/shadow, owned by root and not world-readable");
	snprintf(secret, sizeof secret, "/etc/shadow");
}

static void ids_as_root(void)
{
	if (!pw_have_cap(6) || !pw_have_cap(7) || !pw_have_cap(1 /* CAP_DAC_OVERRIDE */))
		pw_skip("changing to other ids needs CAP_SETUID, CAP_SETGID (root)");
	use_shadow();
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	sw_expect(open_secret, 0, "open as root");
	gid_t g[3] = {4242, 7, 100};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_setgroups_ex(3, g, NULL, &rep), 0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	PW_EQ_LONG(sw_all_status("Groups", "7 100 4242"), 9);
	PW_EQ_LONG(procwide_setresgid(65534, 65534, 65534), 0);
	PW_EQ_LONG(sw_all_status("Gid", sw_uid_line(65534)), 9);
	PW_EQ_LONG(procwide_setresuid_ex(65534, 65534, 65534, NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.nthreads, 9);
	PW_EQ_LONG(sw_all_status("Uid", sw_uid_line(65534)), 9);
	sw_status_is(raw, "Uid", sw_uid_line(65534));
	sw_status_is(raw, "Groups", "7 100 4242");
	/* Every thread lost root: the file is denied, and no way back. */
	sw_expect(open_secret, EACCES, "open a root-only file after the drop");
	sw_expect(sw_try_setuid_root, EPERM, "setresuid(0) after the drop");
}

static void ids_keep_one(void)
{
	if (!pw_have_cap(7))
		pw_skip("changing to other ids needs CAP_SETUID (root)");
	sw_start(2, 1);
	/* -1 keeps a value: only the effective uid moves, saved stays 0. */
	PW_EQ_LONG(procwide_setresuid((uid_t)-1, 65534, (uid_t)-1), 0);
	PW_EQ_LONG(sw_all_status("Uid", "0\t65534\t0\t65534"), 4);
	/* Back through the saved uid: allowed, and again everywhere. */
	PW_EQ_LONG(procwide_setresuid((uid_t)-1, 0, (uid_t)-1), 0);
	PW_EQ_LONG(sw_all_status("Uid", "0\t0\t0\t0"), 4);
}

static void denied_file_after_drop(void)
{
	if (!pw_have_cap(7) || !pw_have_cap(6))
		pw_skip("changing to other ids needs CAP_SETUID, CAP_SETGID (root)");
	use_shadow();
	sw_start(4, 2);
	sw_expect(open_secret, 0, "open as root");
	PW_EQ_LONG(procwide_setgroups(0, NULL), 0);
	PW_EQ_LONG(sw_all_status("Groups", ""), 7);
	PW_EQ_LONG(procwide_setresgid(65534, 65534, 65534), 0);
	PW_EQ_LONG(procwide_setresuid(65534, 65534, 65534), 0);
	sw_expect(open_secret, EACCES, "open a root-only file");
}

/* Verify after: a thread whose state differs in a way every thread's own
 * result cannot show.  setresuid(-1, -1, -1) succeeds everywhere without
 * touching anything, so a thread that moved its filesystem uid on its own
 * keeps it; the read-back finds it and names it. */
static atomic_int fs_state;
static atomic_int fs_tid;

static void *own_fsuid(void *arg)
{
	(void)arg;
	atomic_store(&fs_tid, pw_gettid());
	syscall(SYS_setfsuid, 1234);
	atomic_store(&fs_state, 1);
	for (;;)
		pause();
	return NULL;
}

static void verify_catches_divergent_thread(void)
{
	if (!pw_have_cap(7))
		pw_skip("moving one thread's filesystem uid needs CAP_SETUID (root)");
	sw_start(2, 2);
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, own_fsuid, NULL) == 0, "create");
	while (!atomic_load(&fs_state))
		usleep(1000);
	sw_status_is(atomic_load(&fs_tid), "Uid", "0\t0\t0\t1234");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_setresuid_ex((uid_t)-1, (uid_t)-1, (uid_t)-1, NULL, &rep),
		   -ENOTRECOVERABLE);
	PW_EQ_LONG(rep.tid, atomic_load(&fs_tid));
	PW_EQ_LONG(rep.verified, 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_CHECK(strstr(rep.message, "verify") && strstr(rep.message, "1234"), "%s", rep.message);
	/* A real change repairs it: setresuid resets the filesystem uid. */
	PW_EQ_LONG(procwide_setresuid(0, 0, 0), 0);
	PW_EQ_LONG(sw_all_status("Uid", "0\t0\t0\t0"), 6);
}

static void many_threads(void)
{
	sw_start(4, 300);
	pw_start_raw_thread();
	uid_t uid = getuid();
	struct procwide_sec_opts o = {.size = sizeof o, .deadline_ms = 5000};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_setresuid_ex((uid_t)-1, uid, (uid_t)-1, &o, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 306);
	PW_CHECK(procwide_no_new_privs_ex(&o, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.nthreads, 306);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 306);
	sw_expect(get_nnp, 0, "PR_GET_NO_NEW_PRIVS");
}

/* ---- a thread that blocks every signal --------------------------------- */
/* Two workers block every signal (one sleeps in nanosleep, one in a futex
 * wait): only the ptrace helper reaches them.  They get no_new_privs and an
 * id the caller may take unprivileged, seen from /proc and from inside. */
static void nnp_and_ids_reach_blocked_thread(void)
{
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk_sleep = sw_start_blocked(SW_BLOCKED_NANOSLEEP);
	pid_t blk_futex = sw_start_blocked(SW_BLOCKED_FUTEX);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "0"), 11);
	sw_expect(get_nnp, EINVAL, "PR_GET_NO_NEW_PRIVS before");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_no_new_privs_ex(NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 11);
	sw_status_is(blk_sleep, "NoNewPrivs", "1");
	sw_status_is(blk_futex, "NoNewPrivs", "1");
	sw_status_is(raw, "NoNewPrivs", "1");
	sw_expect(get_nnp, 0, "PR_GET_NO_NEW_PRIVS after");
	/* An id change any caller may make: the effective gid and uid to the
	 * real ones, and the saved ones too (a no-op for the values, a real
	 * setres*id in every thread). */
	uid_t uid = getuid();
	gid_t gid = getgid();
	PW_CHECK(procwide_setresgid_ex(gid, gid, gid, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_CHECK(procwide_setresuid_ex(uid, uid, uid, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("Uid", sw_uid_line(uid)), 11);
	sw_status_is(blk_sleep, "Uid", sw_uid_line(uid));
	sw_status_is(blk_futex, "Gid", sw_uid_line(gid));
	sw_blocked_intact();
}

/* As root: groups, gid and uid dropped in every thread, the two that block
 * every signal included; each of them then fails to open a root-only file
 * and to take uid 0 back. */
static void ids_as_root_reach_blocked_thread(void)
{
	if (!pw_have_cap(6) || !pw_have_cap(7) || !pw_have_cap(1 /* CAP_DAC_OVERRIDE */))
		pw_skip("changing to other ids needs CAP_SETUID, CAP_SETGID (root)");
	use_shadow();
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk_sleep = sw_start_blocked(SW_BLOCKED_NANOSLEEP);
	pid_t blk_futex = sw_start_blocked(SW_BLOCKED_FUTEX);
	sw_expect(open_secret, 0, "open as root");
	gid_t g[3] = {4242, 7, 100};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_setgroups_ex(3, g, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("Groups", "7 100 4242"), 11);
	PW_CHECK(procwide_setresgid_ex(65534, 65534, 65534, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("Gid", sw_uid_line(65534)), 11);
	PW_CHECK(procwide_setresuid_ex(65534, 65534, 65534, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("Uid", sw_uid_line(65534)), 11);
	sw_status_is(raw, "Uid", sw_uid_line(65534));
	for (int i = 0; i < 2; i++) {
		pid_t b = i ? blk_futex : blk_sleep;
		sw_status_is(b, "Uid", sw_uid_line(65534));
		sw_status_is(b, "Gid", sw_uid_line(65534));
		sw_status_is(b, "Groups", "7 100 4242");
	}
	sw_expect(open_secret, EACCES, "open a root-only file after the drop");
	sw_expect(sw_try_setuid_root, EPERM, "setresuid(0) after the drop");
	sw_blocked_intact();
}

/* After separate calls drop root's ids, the kernel has marked the process
 * non-dumpable (fs.suid_dumpable) and the new uid holds no CAP_SYS_PTRACE:
 * a later separate call cannot reach a thread that blocks every signal,
 * and says so, with nothing changed (procwide never lowers the dumpable
 * flag).  The same sequence inside procwide_apply_policy, whose one ptrace
 * helper is forked before the ids change, does reach it (test_sec_policy). */
static void separate_call_after_drop_refuses_blocked_thread(void)
{
	if (!pw_have_cap(6) || !pw_have_cap(7))
		pw_skip("changing to other ids needs CAP_SETUID, CAP_SETGID (root)");
	sw_start(2, 2);
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_setgroups_ex(0, NULL, NULL, &rep) == 0, "%s", rep.message);
	PW_CHECK(procwide_setresgid_ex(65534, 65534, 65534, NULL, &rep) == 0, "%s", rep.message);
	PW_CHECK(procwide_setresuid_ex(65534, 65534, 65534, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.nthreads, 7);
	PW_EQ_LONG(sw_all_status("Uid", sw_uid_line(65534)), 7);
	sw_status_is(blk[0], "Uid", sw_uid_line(65534));
	PW_EQ_LONG(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	PW_CHECK(!pw_have_cap(19), "CAP_SYS_PTRACE kept");
	PW_EQ_LONG(procwide_no_new_privs_ex(NULL, &rep), -EPERM);
	PW_CHECK(strstr(rep.message, "not dumpable") && strstr(rep.message, "nothing was changed"),
		 "%s", rep.message);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "0"), 7);
	PW_EQ_LONG(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0); /* never raised */
	sw_blocked_intact();
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(nnp_every_thread),
		PW_CASE(bad_sizes),
		PW_CASE(groups_bad_input),
		PW_CASE(ids_unprivileged_refused),
		PW_CASE(ids_as_root),
		PW_CASE(ids_keep_one),
		PW_CASE(denied_file_after_drop),
		PW_CASE(verify_catches_divergent_thread),
		PW_CASE(nnp_and_ids_reach_blocked_thread),
		PW_CASE(ids_as_root_reach_blocked_thread),
		PW_CASE(separate_call_after_drop_refuses_blocked_thread),
		PW_CASE_T(many_threads, 60),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
