/* Capabilities in every thread: bounding set, capset, ambient, securebits;
 * checked from /proc and by an operation each thread attempts. */
#include "sec_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define CAP_CHOWN_ 0
#define CAP_SETGID_ 6
#define CAP_SETUID_ 7
#define CAP_SETPCAP_ 8
#define CAP_NET_BIND_SERVICE_ 10
#define CAP_NET_RAW_ 13
#define SECBIT_KEEP_CAPS_ (1u << 4)
#define SECBIT_NO_SETUID_FIXUP_ (1u << 2)

static void need_root(void)
{
	if (!pw_have_cap(CAP_SETPCAP_) || !pw_have_cap(CAP_CHOWN_))
		pw_skip("changing capabilities needs CAP_SETPCAP (root)");
}

/* The calling thread's sets, from capget. */
struct caps3 {
	uint64_t eff, prm, inh;
};
static struct caps3 my_caps(void)
{
	struct {
		uint32_t version;
		int pid;
	} h = {0x20080522u, 0};
	struct {
		uint32_t eff, prm, inh;
	} d[2];
	PW_CHECK(syscall(SYS_capget, &h, d) == 0, "capget");
	return (struct caps3){d[0].eff | (uint64_t)d[1].eff << 32,
			      d[0].prm | (uint64_t)d[1].prm << 32,
			      d[0].inh | (uint64_t)d[1].inh << 32};
}

static int read_bound_net_raw(void)
{
	return prctl(PR_CAPBSET_READ, CAP_NET_RAW_, 0, 0, 0) == 0 ? 0 : EEXIST;
}

static void bound_drop_every_thread(void)
{
	need_root();
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	sw_expect(read_bound_net_raw, EEXIST, "CAP_NET_RAW in the bounding set before");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_cap_bound_drop_ex(CAP_NET_RAW_, NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	sw_expect(read_bound_net_raw, 0, "CAP_NET_RAW in the bounding set after");
	char want[32];
	pw_task_status(pw_gettid(), "CapBnd", want, sizeof want);
	PW_CHECK(!((strtoull(want, NULL, 16) >> CAP_NET_RAW_) & 1), "CapBnd %s", want);
	PW_EQ_LONG(sw_all_status("CapBnd", want), 9);
	sw_status_is(raw, "CapBnd", want);
}

static char owned[64];
static int try_chown(void)
{
	return chown(owned, 1, 1) == 0 ? 0 : errno;
}

static void capset_every_thread(void)
{
	need_root();
	snprintf(owned, sizeof owned, "/tmp/pw-caps.XXXXXX");
	int fd = mkstemp(owned);
	PW_CHECK(fd >= 0, "mkstemp");
	close(fd);
	sw_remove_at_exit(owned);
	sw_start(4, 3);
	sw_expect(try_chown, 0, "chown with CAP_CHOWN");
	struct caps3 c = my_caps();
	uint64_t keep = c.prm & ~(1ULL << CAP_CHOWN_);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_capset_ex(keep, keep, 0, NULL, &rep), 0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 8);
	char want[32];
	snprintf(want, sizeof want, "%016llx", (unsigned long long)keep);
	PW_EQ_LONG(sw_all_status("CapEff", want), 8);
	PW_EQ_LONG(sw_all_status("CapPrm", want), 8);
	PW_EQ_LONG(sw_all_status("CapInh", "0000000000000000"), 8);
	sw_expect(try_chown, EPERM, "chown without CAP_CHOWN");
	/* Raising it back is refused: not in the permitted set any more. */
	PW_EQ_LONG(procwide_capset(c.prm, c.prm, 0), -EPERM);
	/* Effective only: dropping CAP_SETUID from eff, keeping it permitted. */
	uint64_t eff = keep & ~(1ULL << CAP_SETUID_);
	PW_EQ_LONG(procwide_capset(eff, keep, 0), 0);
	snprintf(want, sizeof want, "%016llx", (unsigned long long)eff);
	PW_EQ_LONG(sw_all_status("CapEff", want), 8);
}

static void ambient_every_thread(void)
{
	need_root();
	sw_start(4, 2);
	struct caps3 c = my_caps();
	uint64_t bit = 1ULL << CAP_NET_BIND_SERVICE_;
	/* Ambient needs the capability permitted and inheritable. */
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE_), -EPERM);
	PW_EQ_LONG(procwide_capset(c.eff, c.prm, c.inh | bit), 0);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_cap_ambient_ex(PROCWIDE_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE_, NULL,
					   &rep),
		   0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 7);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000400"), 7);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE_), 0);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000000"), 7);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE_), 0);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 0), 0);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000000"), 7);
}

static int keep_caps_set(void)
{
	return prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) == (int)SECBIT_KEEP_CAPS_ ? 0 : ENOENT;
}

static void securebits_keep_caps_across_uid_change(void)
{
	need_root();
	if (!pw_have_cap(CAP_SETUID_))
		pw_skip("needs CAP_SETUID (root)");
	sw_start(4, 2);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_securebits_ex(SECBIT_KEEP_CAPS_, NULL, &rep), 0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 7);
	sw_expect(keep_caps_set, 0, "PR_GET_SECUREBITS");
	struct caps3 c = my_caps();
	PW_EQ_LONG(procwide_setresuid(65534, 65534, 65534), 0);
	/* Permitted kept (KEEP_CAPS), effective cleared by the uid change. */
	char want[32];
	snprintf(want, sizeof want, "%016llx", (unsigned long long)c.prm);
	PW_EQ_LONG(sw_all_status("CapPrm", want), 7);
	PW_EQ_LONG(sw_all_status("CapEff", "0000000000000000"), 7);
	/* Then capset raises what the service needs, and only that. */
	uint64_t need = 1ULL << CAP_NET_BIND_SERVICE_;
	PW_EQ_LONG(procwide_capset(need, need, 0), 0);
	PW_EQ_LONG(sw_all_status("CapEff", "0000000000000400"), 7);
	sw_expect(sw_try_setuid_root, EPERM, "setresuid(0) without CAP_SETUID");
}

static void unprivileged_refusals(void)
{
	if (pw_have_cap(CAP_SETPCAP_))
		pw_skip("checks what a caller without capabilities gets; this one has CAP_SETPCAP");
	sw_start(2, 2);
	PW_EQ_LONG(procwide_cap_bound_drop(CAP_NET_RAW_), -EPERM);
	PW_EQ_LONG(procwide_capset(1, 1, 0), -EPERM);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_RAISE, CAP_NET_RAW_), -EPERM);
	PW_EQ_LONG(procwide_securebits(SECBIT_KEEP_CAPS_), -EPERM);
	/* What needs no privilege works everywhere and is verified. */
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_capset_ex(0, 0, 0, NULL, &rep), 0);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 0), 0);
	PW_EQ_LONG(sw_all_status("CapEff", "0000000000000000"), 5);
}

static void bad_input(void)
{
	sw_start(2, 1);
	PW_EQ_LONG(procwide_cap_bound_drop(64), -EINVAL);
	if (pw_have_cap(CAP_SETPCAP_))
		PW_EQ_LONG(procwide_cap_bound_drop(63), -EINVAL); /* no such capability */
	PW_EQ_LONG(procwide_cap_ambient(99, 1), -EINVAL);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 3), -EINVAL);
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_RAISE, 64), -EINVAL);
	struct procwide_sec_opts o = {.size = sizeof o, .flags = PROCWIDE_SEC_SECCOMP_FORCE_ADD};
	PW_EQ_LONG(procwide_capset_ex(0, 0, 0, &o, NULL), -EINVAL);
	/* The kernel answers EPERM for bits it does not know. */
	PW_EQ_LONG(procwide_securebits(1u << 30), -EPERM);
}

/* ---- threads that block every signal ----------------------------------- */
/* As root: the bounding set, capset, ambient and securebits reach the two
 * workers that block every signal (only the ptrace helper reaches them);
 * seen from /proc, and each of them then fails to chown without CAP_CHOWN. */
static void caps_reach_blocked_thread(void)
{
	need_root();
	snprintf(owned, sizeof owned, "/tmp/pw-caps.XXXXXX");
	int fd = mkstemp(owned);
	PW_CHECK(fd >= 0, "mkstemp");
	close(fd);
	sw_remove_at_exit(owned);
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	sw_expect(read_bound_net_raw, EEXIST, "CAP_NET_RAW in the bounding set before");
	sw_expect(try_chown, 0, "chown with CAP_CHOWN");
	/* The bounding set. */
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_cap_bound_drop_ex(CAP_NET_RAW_, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	char want[32];
	pw_task_status(pw_gettid(), "CapBnd", want, sizeof want);
	PW_CHECK(!((strtoull(want, NULL, 16) >> CAP_NET_RAW_) & 1), "CapBnd %s", want);
	PW_EQ_LONG(sw_all_status("CapBnd", want), 11);
	sw_status_is(blk[0], "CapBnd", want);
	sw_status_is(blk[1], "CapBnd", want);
	sw_status_is(raw, "CapBnd", want);
	sw_expect(read_bound_net_raw, 0, "CAP_NET_RAW in the bounding set after");
	/* capset: CAP_CHOWN out of every set; CAP_NET_BIND_SERVICE inheritable
	 * for the ambient step. */
	struct caps3 c = my_caps();
	uint64_t keep = c.prm & ~(1ULL << CAP_CHOWN_);
	uint64_t inh = 1ULL << CAP_NET_BIND_SERVICE_;
	PW_CHECK(procwide_capset_ex(keep, keep, inh, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	snprintf(want, sizeof want, "%016llx", (unsigned long long)keep);
	PW_EQ_LONG(sw_all_status("CapEff", want), 11);
	PW_EQ_LONG(sw_all_status("CapPrm", want), 11);
	PW_EQ_LONG(sw_all_status("CapInh", "0000000000000400"), 11);
	for (int i = 0; i < 2; i++) {
		sw_status_is(blk[i], "CapEff", want);
		sw_status_is(blk[i], "CapPrm", want);
		sw_status_is(blk[i], "CapInh", "0000000000000400");
	}
	sw_expect(try_chown, EPERM, "chown without CAP_CHOWN");
	/* Ambient. */
	PW_CHECK(procwide_cap_ambient_ex(PROCWIDE_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE_, NULL,
					 &rep) == 0,
		 "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000400"), 11);
	sw_status_is(blk[0], "CapAmb", "0000000000000400");
	sw_status_is(blk[1], "CapAmb", "0000000000000400");
	PW_EQ_LONG(procwide_cap_ambient(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 0), 0);
	PW_EQ_LONG(sw_all_status("CapAmb", "0000000000000000"), 11);
	/* Securebits. */
	PW_CHECK(procwide_securebits_ex(SECBIT_KEEP_CAPS_, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	sw_expect(keep_caps_set, 0, "PR_GET_SECUREBITS");
	sw_blocked_intact();
}

/* Without privilege: what needs none reaches the workers that block every
 * signal; what needs privilege is refused with nothing changed, theirs
 * included. */
static void unprivileged_with_blocked_thread(void)
{
	if (pw_have_cap(CAP_SETPCAP_))
		pw_skip("checks what a caller without capabilities gets; this one has CAP_SETPCAP");
	sw_start(2, 2);
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	char bnd[32];
	pw_task_status(pw_gettid(), "CapBnd", bnd, sizeof bnd);
	PW_EQ_LONG(procwide_cap_bound_drop(CAP_NET_RAW_), -EPERM);
	PW_EQ_LONG(sw_all_status("CapBnd", bnd), 7);
	sw_status_is(blk[0], "CapBnd", bnd);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_capset_ex(0, 0, 0, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 7);
	PW_CHECK(procwide_cap_ambient_ex(PROCWIDE_CAP_AMBIENT_CLEAR_ALL, 0, NULL, &rep) == 0, "%s",
		 rep.message);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 7);
	PW_EQ_LONG(sw_all_status("CapEff", "0000000000000000"), 7);
	sw_status_is(blk[1], "CapPrm", "0000000000000000");
	sw_expect(read_bound_net_raw, EEXIST, "CAP_NET_RAW still in the bounding set");
	sw_blocked_intact();
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(bound_drop_every_thread),
		PW_CASE(capset_every_thread),
		PW_CASE(ambient_every_thread),
		PW_CASE(securebits_keep_caps_across_uid_change),
		PW_CASE(unprivileged_refusals),
		PW_CASE(caps_reach_blocked_thread),
		PW_CASE(unprivileged_with_blocked_thread),
		PW_CASE(bad_input),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
