/* Landlock in every thread: the ABI probe and its test override, the
 * engine path (stacking on a sibling's own domain), the ruleset builder with
 * its downgrade reports, ports and scopes, exact errors. */
#include "sec_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- a scratch sw_tree: T/a/f and T/b/f ------------------------------------ */
static int open_passwd(void) { return sw_open_errno("/etc/passwd"); }

static void need_landlock(int min_abi)
{
	int abi = procwide_landlock_abi();
	if (abi < 0)
		pw_skip("Landlock unavailable: %s", strerror(-abi));
	if (abi < min_abi)
		pw_skip("needs Landlock ABI %d, the kernel has %d", min_abi, abi);
}

/* A ruleset that handles reading files and allows it beneath dir. */
static struct procwide_landlock *read_only_beneath(const char *dir)
{
	struct procwide_landlock_attr attr = {.size = sizeof attr,
					      .handled_access_fs = PROCWIDE_LL_FS_READ_FILE};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, dir, PROCWIDE_LL_FS_READ_FILE), 0);
	return ll;
}

static void abi_probe(void)
{
	long raw = syscall(SYS_landlock_create_ruleset, NULL, 0, 1u);
	int abi = procwide_landlock_abi();
	if (raw < 0)
		PW_EQ_LONG(abi, -errno);
	else
		PW_EQ_LONG(abi, raw);
	PW_EQ_LONG(procwide_landlock_abi(), abi); /* cached, same answer */
}

static void engine_path_every_thread(void)
{
	need_landlock(1);
	if (procwide_landlock_abi() >= 8)
		pw_skip("this kernel has ABI >= 8: the kernel path is taken");
	sw_tree_make("pw-landlock");
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	(void)raw;
	sw_expect(sw_open_b, 0, "open b before");
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 0);
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_landlock_enforce(ll, 0, NULL, &rep), 0);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 9);
	procwide_landlock_close(ll);
	sw_expect(sw_open_b, EACCES, "open b (denied)");
	sw_expect(sw_open_a, 0, "open a (allowed)");
}

static void abi8_override_selects_kernel_path(void)
{
	need_landlock(1);
	if (procwide_landlock_abi() >= 8)
		pw_skip("the kernel has ABI >= 8: the override cannot be told from the real thing");
	setenv("PROCWIDE_TEST_LANDLOCK_ABI", "8", 1);
	sw_tree_make("pw-landlock");
	sw_start(4, 2);
	struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
	struct procwide_sec_report rep = {.size = sizeof rep};
	if (!pw_have_cap(21 /* CAP_SYS_ADMIN */)) {
		/* The kernel checks no_new_privs before the flags: EPERM. */
		PW_EQ_LONG(procwide_landlock_restrict_ex(procwide_landlock_fd(ll), 0, NULL, &rep),
			   -EPERM);
		PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	} else {
		pw_diag("root: the EPERM-before-EINVAL step needs a caller without CAP_SYS_ADMIN");
	}
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	/* ABI 7 does not know LANDLOCK_RESTRICT_SELF_TSYNC: EINVAL, and the
	 * kernel path was the one tried. */
	PW_EQ_LONG(procwide_landlock_restrict_ex(procwide_landlock_fd(ll), 0, NULL, &rep), -EINVAL);
	PW_EQ_LONG(rep.path, PROCWIDE_SEC_PATH_KERNEL);
	PW_EQ_LONG(rep.verified, 0);
	PW_CHECK(strstr(rep.message, "TSYNC"), "%s", rep.message);
	/* Nothing changed: every thread still reads b. */
	sw_expect(sw_open_b, 0, "open b after the refused call");
	procwide_landlock_close(ll);
}

static void override_cannot_weaken_builder(void)
{
	need_landlock(3);
	setenv("PROCWIDE_TEST_LANDLOCK_ABI", "1", 1);
	struct procwide_landlock_attr attr = {
		.size = sizeof attr,
		.handled_access_fs = PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_TRUNCATE};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	/* TRUNCATE (ABI 3) is kept: the hook only chooses the path. */
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 0);
	procwide_landlock_close(ll);
}

/* ---- stacking: a sibling with a domain of its own ------------------------ */
static atomic_int sib_gen, sib_done, sib_result, sib_state;
static int (*volatile sib_fn)(void);
static atomic_int sib_tid;

static void *self_restricting(void *arg)
{
	(void)arg;
	atomic_store(&sib_tid, pw_gettid());
	/* Its own domain: read files only beneath b. */
	struct pws {
		uint64_t fs, net, scoped;
	} ra = {PROCWIDE_LL_FS_READ_FILE, 0, 0};
	long fd = syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
	struct __attribute__((packed)) {
		uint64_t access;
		int32_t fd;
	} pb = {PROCWIDE_LL_FS_READ_FILE, open(sw_b_dir, O_PATH | O_CLOEXEC)};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	bool ok = fd >= 0 && pb.fd >= 0 && syscall(SYS_landlock_add_rule, fd, 1, &pb, 0) == 0 &&
		  syscall(SYS_landlock_restrict_self, fd, 0) == 0;
	atomic_store(&sib_state, ok ? 1 : -1);
	int seen = 0;
	for (;;) {
		int g;
		while ((g = atomic_load(&sib_gen)) == seen)
			usleep(500);
		seen = g;
		atomic_store(&sib_result, sib_fn());
		atomic_fetch_add(&sib_done, 1);
	}
	return NULL;
}

static int sib_run(int (*fn)(void))
{
	sib_fn = fn;
	int before = atomic_load(&sib_done);
	atomic_fetch_add(&sib_gen, 1);
	while (atomic_load(&sib_done) == before)
		usleep(500);
	return atomic_load(&sib_result);
}

static void engine_path_stacks_on_sibling_domain(void)
{
	need_landlock(1);
	if (procwide_landlock_abi() >= 8)
		pw_skip("this kernel has ABI >= 8: the kernel path replaces instead of stacking");
	sw_tree_make("pw-landlock");
	sw_start(2, 1);
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, self_restricting, NULL) == 0, "create");
	while (!atomic_load(&sib_state))
		usleep(1000);
	PW_EQ_LONG(atomic_load(&sib_state), 1);
	PW_EQ_LONG(sib_run(sw_open_a), EACCES);
	PW_EQ_LONG(sib_run(sw_open_b), 0);
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
	PW_EQ_LONG(procwide_landlock_enforce(ll, 0, NULL, NULL), 0);
	procwide_landlock_close(ll);
	/* Everyone lost b; the sibling keeps its own layer too: it now reads
	 * neither (the layers stack).  A kernel TSYNC (ABI 8) would have
	 * replaced its domain with the caller's, and it would read a. */
	sw_expect(sw_open_b, EACCES, "open b");
	sw_expect(sw_open_a, 0, "open a");
	PW_EQ_LONG(sib_run(sw_open_b), EACCES);
	PW_EQ_LONG(sib_run(sw_open_a), EACCES);
}

static void log_flags_pass_through(void)
{
	need_landlock(7);
	sw_tree_make("pw-landlock");
	sw_start(2, 1);
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
	PW_EQ_LONG(procwide_landlock_restrict(procwide_landlock_fd(ll),
					      PROCWIDE_LL_RESTRICT_LOG_SAME_EXEC_OFF |
						      PROCWIDE_LL_RESTRICT_LOG_NEW_EXEC_ON),
		   0);
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 0);
	procwide_landlock_close(ll);
	sw_expect(sw_open_b, EACCES, "open b");
	/* The flag that only changes logging works without a ruleset. */
	PW_EQ_LONG(procwide_landlock_restrict(-1, PROCWIDE_LL_RESTRICT_LOG_SUBDOMAINS_OFF), 0);
}

static void builder_downgrades_reported(void)
{
	need_landlock(1);
	if (procwide_landlock_abi() >= 9)
		pw_skip("the kernel has ABI >= 9: nothing to downgrade");
	sw_tree_make("pw-landlock");
	int abi = procwide_landlock_abi();
	struct procwide_landlock_attr attr = {
		.size = sizeof attr,
		.handled_access_fs = PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_RESOLVE_UNIX,
	};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 1);
	const struct procwide_landlock_downgrade *d = procwide_landlock_downgrade(ll, 0);
	PW_EQ_LONG(d->kind, PROCWIDE_LL_DOWNGRADE_HANDLED_FS);
	PW_EQ_LONG(d->abi, abi);
	PW_EQ_LONG(d->required_abi, 9);
	PW_CHECK(d->dropped == PROCWIDE_LL_FS_RESOLVE_UNIX, "dropped %llx",
		 (unsigned long long)d->dropped);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, sw_b_dir, PROCWIDE_LL_FS_READ_FILE), 0);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, sw_a_dir,
						PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_RESOLVE_UNIX),
		   0);
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 2);
	d = procwide_landlock_downgrade(ll, 1);
	PW_EQ_LONG(d->kind, PROCWIDE_LL_DOWNGRADE_PATH_RULE);
	PW_EQ_LONG(d->subject, 1); /* the second rule */
	PW_CHECK(d->dropped == PROCWIDE_LL_FS_RESOLVE_UNIX, "dropped");
	PW_CHECK(procwide_landlock_downgrade(ll, 2) == NULL, "past the end");
	procwide_landlock_close(ll);
	/* Strict: refused. */
	attr.flags = PROCWIDE_LL_STRICT;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), -EOPNOTSUPP);
	attr.handled_access_fs = PROCWIDE_LL_FS_READ_FILE;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_ndowngrades(ll), 0);
	procwide_landlock_close(ll);
}

static void builder_bad_input(void)
{
	need_landlock(1);
	sw_tree_make("pw-landlock");
	struct procwide_landlock *ll;
	struct procwide_landlock_attr attr = {.size = sizeof attr};
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), -ENOMSG);
	attr.handled_access_fs = 1ULL << 40;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), -EINVAL);
	attr.handled_access_fs = PROCWIDE_LL_FS_READ_FILE;
	attr.flags = 1u << 7;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), -EINVAL);
	attr.flags = 0;
	attr.size = 4;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), -EINVAL);
	attr.size = sizeof attr;
	PW_EQ_LONG(procwide_landlock_open(NULL, &ll), -EFAULT);
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, "/nonexistent/x", PROCWIDE_LL_FS_READ_FILE),
		   -ENOENT);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, sw_a_dir, PROCWIDE_LL_FS_WRITE_FILE), -EINVAL);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, sw_a_dir, 0), -ENOMSG);
	PW_EQ_LONG(procwide_landlock_allow_port(ll, 80, PROCWIDE_LL_NET_BIND_TCP), -EINVAL);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, NULL, PROCWIDE_LL_FS_READ_FILE), -EFAULT);
	procwide_landlock_close(ll);
}

static void restrict_bad_input(void)
{
	need_landlock(1);
	sw_start(2, 1);
	if (!pw_have_cap(21)) /* neither no_new_privs nor CAP_SYS_ADMIN */
		PW_EQ_LONG(procwide_landlock_restrict(-1, 0), -EPERM);
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	PW_EQ_LONG(procwide_landlock_restrict(-1, 0), -EBADF);
	int notrs = open("/", O_RDONLY | O_CLOEXEC);
	PW_EQ_LONG(procwide_landlock_restrict(notrs, 0), -EBADFD);
	close(notrs);
	struct procwide_landlock_attr attr = {.size = sizeof attr,
					      .handled_access_fs = PROCWIDE_LL_FS_READ_FILE};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_restrict(procwide_landlock_fd(ll), 1u << 20), -EINVAL);
	procwide_landlock_close(ll);
	/* Nothing changed anywhere: every thread still reads /etc/passwd. */
	sw_expect(open_passwd, 0, "open /etc/passwd");
}

/* ---- TCP ports -------------------------------------------------------------- */
static int bind_port(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int r = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
	close(s);
	return r;
}
static int bind_allowed(void) { return bind_port(47311); }
static int bind_denied(void) { return bind_port(47312); }

static void tcp_bind_port_rule(void)
{
	need_landlock(4);
	sw_start(4, 2);
	sw_expect(bind_denied, 0, "bind before");
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock_attr attr = {.size = sizeof attr,
					      .handled_access_net = PROCWIDE_LL_NET_BIND_TCP};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_allow_port(ll, 47311, PROCWIDE_LL_NET_BIND_TCP), 0);
	PW_EQ_LONG(procwide_landlock_allow_port(ll, 1u << 20, PROCWIDE_LL_NET_BIND_TCP), -EINVAL);
	PW_EQ_LONG(procwide_landlock_enforce(ll, 0, NULL, NULL), 0);
	procwide_landlock_close(ll);
	sw_expect(bind_denied, EACCES, "bind a port without a rule");
	sw_expect(bind_allowed, 0, "bind the allowed port");
}

/* ---- scopes ------------------------------------------------------------------ */
static int signal_parent(void)
{
	return kill(getppid(), 0) == 0 ? 0 : errno;
}

static void signal_scope(void)
{
	need_landlock(6);
	sw_start(4, 2);
	sw_expect(signal_parent, 0, "kill(parent, 0) before");
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock_attr attr = {.size = sizeof attr,
					      .scoped = PROCWIDE_LL_SCOPE_SIGNAL};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_enforce(ll, 0, NULL, NULL), 0);
	procwide_landlock_close(ll);
	/* The harness process is outside the domain now. */
	sw_expect(signal_parent, EPERM, "kill(parent, 0) after");
}

static void other_calls_after_landlock_forbids_proc(void)
{
	need_landlock(1);
	sw_start(4, 2);
	PW_EQ_LONG(procwide_no_new_privs(), 0);
	struct procwide_landlock_attr attr = {
		.size = sizeof attr,
		.handled_access_fs = PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_READ_DIR};
	struct procwide_landlock *ll;
	PW_EQ_LONG(procwide_landlock_open(&attr, &ll), 0);
	PW_EQ_LONG(procwide_landlock_enforce(ll, 0, NULL, NULL), 0);
	procwide_landlock_close(ll);
	PW_CHECK(open("/proc/self/status", O_RDONLY) < 0 && errno == EACCES, "proc still open");
	/* seccomp is verified from status files it opened before: still
	 * works.  A call opened after the domain could not verify, and says
	 * so rather than succeed. */
	static struct sw_filter f;
	sw_filter_init(&f, SYS_getppid, ENOTTY);
	struct procwide_sec_report rep = {.size = sizeof rep};
	int err = procwide_seccomp_load_ex(&f.prog, 0, NULL, &rep);
	PW_EQ_LONG(err, -EACCES);
	PW_CHECK(strstr(rep.message, "verify"), "%s", rep.message);
	PW_EQ_LONG(rep.verified, 0);
}

/* Fail closed on the engine path: a thread where landlock_restrict_self
 * fails (its own seccomp filter refuses it) while the caller's succeeded
 * must not leave the process half restricted: it is killed. */
static atomic_int refuser_state;

static void *refuses_landlock(void *arg)
{
	(void)arg;
	static struct sw_filter f;
	sw_filter_init(&f, SYS_landlock_restrict_self, EPERM);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	long r = syscall(SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, &f.prog);
	atomic_store(&refuser_state, r == 0 ? 1 : -1);
	for (;;)
		pause();
	return NULL;
}

static void thread_that_cannot_follow_kills_process(void)
{
	need_landlock(1);
	if (procwide_landlock_abi() >= 8)
		pw_skip("the kernel path is all or nothing: nothing to kill");
	sw_tree_make("pw-landlock");
	fflush(stdout);
	pid_t child = fork();
	PW_CHECK(child >= 0, "fork");
	if (child == 0) {
		/* Own threads, own process: the kill ends this one only. */
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2); /* the diagnostic line */
		sw_start(2, 2);
		pthread_t t;
		pthread_create(&t, NULL, refuses_landlock, NULL);
		while (!atomic_load(&refuser_state))
			usleep(1000);
		if (atomic_load(&refuser_state) != 1 || procwide_no_new_privs() != 0)
			_exit(3);
		struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
		procwide_landlock_enforce(ll, 0, NULL, NULL);
		_exit(0); /* never reached: the differing thread kills us */
	}
	int status;
	PW_CHECK(waitpid(child, &status, 0) == child, "waitpid");
	PW_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
}

/* ---- threads that block every signal ----------------------------------- */
/* A domain that forbids reading files but beneath a and /proc (so that the
 * threads can be checked afterwards) reaches the two workers that block
 * every signal: on this kernel's ABI (< 8) through the engine, so through
 * the ptrace helper for them.  Each then fails to open b. */
static void restrict_reaches_blocked_thread(void)
{
	need_landlock(1);
	sw_tree_make("pw-landlock");
	sw_start(4, 3);
	pid_t raw = pw_start_raw_thread();
	pid_t blk[2] = {sw_start_blocked(SW_BLOCKED_NANOSLEEP),
			sw_start_blocked(SW_BLOCKED_FUTEX)};
	sw_expect(sw_open_b, 0, "open b before");
	struct procwide_sec_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_no_new_privs_ex(NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.nthreads, 11);
	PW_EQ_LONG(sw_all_status("NoNewPrivs", "1"), 11);
	sw_status_is(blk[0], "NoNewPrivs", "1");
	sw_status_is(blk[1], "NoNewPrivs", "1");
	sw_status_is(raw, "NoNewPrivs", "1");
	struct procwide_landlock *ll = read_only_beneath(sw_a_dir);
	PW_EQ_LONG(procwide_landlock_allow_path(ll, "/proc", PROCWIDE_LL_FS_READ_FILE), 0);
	PW_CHECK(procwide_landlock_enforce(ll, 0, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.path, procwide_landlock_abi() >= 8 ? PROCWIDE_SEC_PATH_KERNEL
							  : PROCWIDE_SEC_PATH_ENGINE);
	PW_EQ_LONG(rep.verified, 1);
	PW_EQ_LONG(rep.nthreads, 11);
	procwide_landlock_close(ll);
	sw_expect(sw_open_b, EACCES, "open b (denied)");
	sw_expect(sw_open_a, 0, "open a (allowed)");
	sw_expect(open_passwd, EACCES, "open /etc/passwd (denied)");
	sw_blocked_intact();
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(abi_probe),
		PW_CASE(engine_path_every_thread),
		PW_CASE(abi8_override_selects_kernel_path),
		PW_CASE(override_cannot_weaken_builder),
		PW_CASE(engine_path_stacks_on_sibling_domain),
		PW_CASE(restrict_reaches_blocked_thread),
		PW_CASE(log_flags_pass_through),
		PW_CASE(builder_downgrades_reported),
		PW_CASE(builder_bad_input),
		PW_CASE(restrict_bad_input),
		PW_CASE(tcp_bind_port_rule),
		PW_CASE(signal_scope),
		PW_CASE(other_calls_after_landlock_forbids_proc),
		PW_CASE(thread_that_cannot_follow_kills_process),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
