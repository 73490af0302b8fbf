/* libcap on top of libpsx: cap_set_proc() and cap_drop_bound() in a
 * multithreaded process, run by tests/psx/run.sh against Debian's libpsx and
 * procwide's.  Built with -lpsx ahead of -lcap (see below), exactly as a
 * libcap program that wants POSIX semantics must be.
 *
 * How Debian 12's libcap 2.66 decides whether to use psx (from nm/objdump of
 * libcap.so.2.66): it defines a weak psx_load_syscalls() of its own that only
 * clears an "overridden" flag, and its constructor calls psx_load_syscalls()
 * through the PLT (via cap_set_syscall(NULL, NULL)) with the addresses of its
 * "multithread" function pointers.  Whichever definition the dynamic linker
 * binds wins: libpsx's when libpsx comes before libcap in the lookup order
 * (named first at link time, or LD_PRELOAD), libcap's own stub otherwise --
 * then cap_set_proc() calls capset() in the calling thread only, with
 * libpsx loaded or not.  Link order -lcap -lpsx (libpsx(3)'s own example
 * puts -lpsx after the program's libraries) ends there with Debian's
 * libpsx; procwide's rebinds libcap's slot (psx/libcap_bind.c).  A program
 * whose libpsx was dropped by --as-needed never loads either. */
#include "psx_common.h"

#include <libgen.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static void need_cap(int cap, const char *why)
{
	if (!pw_have_cap(cap))
		pw_skip("needs %s (run as root) to %s", cap == CAP_SETPCAP ? "CAP_SETPCAP" : "CAP_NET_RAW", why);
}

/* Every thread (except `except') has `cap' clear in the status field. */
static bool every_thread_lacks(const char *field, int cap, pid_t except, pid_t *bad)
{
	pid_t tids[PSXT_MAX_TIDS];
	size_t n = pw_list_tids(tids, PSXT_MAX_TIDS);
	for (size_t i = 0; i < n && i < PSXT_MAX_TIDS; i++) {
		char v[64];
		if (tids[i] == except || !pw_task_status(tids[i], field, v, sizeof v))
			continue;
		if ((strtoull(v, NULL, 16) >> cap) & 1) {
			*bad = tids[i];
			return false;
		}
	}
	return true;
}

static bool task_has(pid_t tid, const char *field, int cap)
{
	char v[64];
	return pw_task_status(tid, field, v, sizeof v) && ((strtoull(v, NULL, 16) >> cap) & 1);
}

static int drop_net_raw(void)
{
	cap_t c = cap_get_proc();
	cap_value_t v = CAP_NET_RAW;
	PW_CHECK(c != NULL, "cap_get_proc: %s", strerror(errno));
	PW_CHECK(cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) == 0 &&
		 cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR) == 0, "cap_set_flag");
	int r = cap_set_proc(c);
	int e = errno;
	cap_free(c);
	errno = e;
	return r;
}

/* This program's link order gives libcap libpsx's psx_load_syscalls. */
static void libcap_binds_libpsx(void)
{
	psxt_impl();
	char got[PATH_MAX], want[PATH_MAX];
	const char *lib = getenv("PSX_LIB");
	PW_CHECK(lib && realpath(lib, want), "PSX_LIB");
	PW_CHECK(psxt_loaded_from("psx_load_syscalls", got, sizeof got), "not found");
	PW_CHECK(strcmp(got, want) == 0, "psx_load_syscalls bound from %s, want %s", got, want);
}

static void cap_set_proc_every_thread(void)
{
	psxt_impl();
	need_cap(CAP_NET_RAW, "drop it");
	struct pw_idle *idle = pw_idle_start(6);
	PW_CHECK(idle != NULL, "pw_idle_start");
	PW_CHECK(drop_net_raw() == 0, "cap_set_proc: %s", strerror(errno));
	pid_t bad = 0;
	PW_CHECK(every_thread_lacks("CapPrm", CAP_NET_RAW, 0, &bad), "thread %d kept CAP_NET_RAW in CapPrm", (int)bad);
	PW_CHECK(every_thread_lacks("CapEff", CAP_NET_RAW, 0, &bad), "thread %d kept CAP_NET_RAW in CapEff", (int)bad);
	pw_idle_stop(idle);
}

static void cap_drop_bound_every_thread(void)
{
	psxt_impl();
	need_cap(CAP_SETPCAP, "drop from the bounding set");
	struct pw_idle *idle = pw_idle_start(6);
	PW_CHECK(idle != NULL, "pw_idle_start");
	PW_CHECK(cap_drop_bound(CAP_NET_RAW) == 0, "cap_drop_bound: %s", strerror(errno));
	pid_t bad = 0;
	PW_CHECK(every_thread_lacks("CapBnd", CAP_NET_RAW, 0, &bad), "thread %d kept CAP_NET_RAW in CapBnd", (int)bad);
	pw_idle_stop(idle);
}

/* A raw clone() thread: procwide reaches it; Debian's libpsx does not (known
 * failure of the original: the thread keeps the capability). */
static void cap_set_proc_raw_clone(void)
{
	enum psxt_impl impl = psxt_impl();
	need_cap(CAP_NET_RAW, "drop it");
	struct pw_idle *idle = pw_idle_start(2);
	PW_CHECK(idle != NULL, "pw_idle_start");
	struct psxt_raw_thread *raw = psxt_raw_thread_start();
	PW_CHECK(drop_net_raw() == 0, "cap_set_proc: %s", strerror(errno));
	pid_t bad = 0;
	PW_CHECK(every_thread_lacks("CapPrm", CAP_NET_RAW, raw->tid, &bad),
		 "pthread %d kept CAP_NET_RAW", (int)bad);
	bool kept = task_has(raw->tid, "CapPrm", CAP_NET_RAW);
	if (impl == PSXT_DEBIAN) {
		PW_CHECK(kept, "Debian's libpsx reached a raw clone thread");
		pw_diag("Debian libpsx 2.66: raw clone() thread %d kept CAP_NET_RAW "
			"(known failure of the original)", (int)raw->tid);
	} else {
		PW_CHECK(!kept, "raw clone thread %d kept CAP_NET_RAW", (int)raw->tid);
	}
}

/* A thread blocking every signal: with procwide every thread, the blocking
 * one included (through ptrace), loses the capability; Debian's libpsx
 * hangs (known failure, asserted with a short timeout). */
static void blocked_scenario(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	struct psxt_blocker b;
	(void)idle;
	psxt_blocker_start(&b);
	printf("caller=%d\nblocker=%d\n", (int)pw_gettid(), (int)atomic_load(&b.tid));
	errno = 0;
	int r = drop_net_raw();
	printf("ret=%d\nerrno=%d\n", r, errno);
	pid_t tids[64];
	size_t n = pw_list_tids(tids, 64), kept = 0;
	for (size_t i = 0; i < n && i < 64; i++)
		kept += task_has(tids[i], "CapPrm", CAP_NET_RAW);
	printf("threads=%zu\nkept=%zu\n", n, kept);
	_exit(0);
}

static void cap_set_proc_blocked_thread(void)
{
	enum psxt_impl impl = psxt_impl();
	need_cap(CAP_NET_RAW, "drop it");
	struct psxt_scen s;
	char st[64];
	bool ended = psxt_scen_run(&s, blocked_scenario, impl == PSXT_DEBIAN ? 3.0 : 15.0);
	if (impl == PSXT_DEBIAN) {
		if (!ended) {
			psxt_scen_kill(&s);
			pw_diag("Debian libpsx 2.66: cap_set_proc() hung on a thread "
				"that blocks its signal (known failure of the original)");
			return;
		}
		PW_CHECK(false, "Debian's libpsx did not hang (%s): update this test",
			 psxt_status_text(s.status, st, sizeof st));
	}
	if (!ended)
		psxt_scen_kill(&s);
	PW_CHECK(ended, "hung: out=[%s]", s.out);
	PW_CHECK(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0, "%s err=[%s]",
		 psxt_status_text(s.status, st, sizeof st), s.err);
	PW_EQ_LONG(psxt_scen_get(&s, "ret", 99), 0);
	long threads = psxt_scen_get(&s, "threads", 0);
	PW_CHECK(threads >= 4, "threads=%ld", threads);
	PW_EQ_LONG(psxt_scen_get(&s, "kept", -1), 0);
}

/* ---- other programs: libcap alone, and libcap linked before libpsx ------ */

static char helper_path[PATH_MAX];
static const char *helper_preload;

static void exec_helper(void)
{
	if (helper_preload)
		setenv("LD_PRELOAD", helper_preload, 1);
	else
		unsetenv("LD_PRELOAD");
	execl(helper_path, helper_path, (char *)NULL);
	printf("exec_errno=%d\n", errno);
	_exit(127);
}

/* Runs tests/psx/cap_helper.c built as `name'; returns how many of its
 * threads dropped CAP_NET_RAW, and their number in *threads. */
static long run_helper(const char *name, bool preload, long *threads)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	PW_CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = '\0';
	snprintf(helper_path, sizeof helper_path, "%s/%s", dirname(self), name);
	PW_CHECK(access(helper_path, X_OK) == 0, "%s: %s", helper_path, strerror(errno));
	helper_preload = preload ? getenv("PSX_LIB") : NULL;
	struct psxt_scen s;
	char st[64];
	bool ended = psxt_scen_run(&s, exec_helper, 15.0);
	if (!ended)
		psxt_scen_kill(&s);
	PW_CHECK(ended, "%s hung", name);
	PW_CHECK(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0, "%s: %s out=[%s] err=[%s]",
		 name, psxt_status_text(s.status, st, sizeof st), s.out, s.err);
	PW_EQ_LONG(psxt_scen_get(&s, "ret", 99), 0);
	*threads = psxt_scen_get(&s, "threads", 0);
	PW_EQ_LONG(*threads, 5);
	return psxt_scen_get(&s, "dropped", -1);
}

/* A program linked with -lcap only, never with libpsx: on its own
 * cap_set_proc() changes the calling thread only (both libraries: libpsx is
 * not loaded).  With LD_PRELOAD of procwide's libpsx.so.2 every thread drops
 * the capability, without relinking; with Debian's, libcap uses psx but
 * psx knows no thread that did not go through __wrap_pthread_create, so
 * again only the caller changes (known failure of the original). */
static void preload_plain_libcap(void)
{
	enum psxt_impl impl = psxt_impl();
	need_cap(CAP_NET_RAW, "drop it");
	long threads = 0;
	PW_EQ_LONG(run_helper("cap_helper_plain", false, &threads), 1);
	long dropped = run_helper("cap_helper_plain", true, &threads);
	if (impl == PSXT_PROCWIDE) {
		PW_EQ_LONG(dropped, threads);
	} else {
		PW_EQ_LONG(dropped, 1);
		pw_diag("Debian libpsx 2.66 under LD_PRELOAD: %ld of %ld threads dropped "
			"the capability (known failure of the original)", dropped, threads);
	}
}

/* Linked -lcap -lpsx (the order of libpsx(3)'s example): the dynamic
 * linker binds libcap's own weak psx_load_syscalls, and with Debian's
 * libpsx only the caller changes.  procwide's libpsx rebinds libcap's slot
 * to itself before libcap's constructor runs (psx/libcap_bind.c): every
 * thread changes.  Putting libpsx first with LD_PRELOAD works for both. */
static void libcap_before_libpsx(void)
{
	enum psxt_impl impl = psxt_impl();
	need_cap(CAP_NET_RAW, "drop it");
	long threads = 0;
	long dropped = run_helper("cap_helper_capfirst", false, &threads);
	if (impl == PSXT_PROCWIDE) {
		PW_EQ_LONG(dropped, threads);
	} else {
		PW_EQ_LONG(dropped, 1);
		pw_diag("Debian libpsx, linked -lcap -lpsx: %ld of %ld threads dropped the "
			"capability (libcap bound its own weak psx_load_syscalls)",
			dropped, threads);
	}
	PW_EQ_LONG(run_helper("cap_helper_capfirst", true, &threads), threads);
}

/* The test programs Debian ships in libcap-dev (libcap2/tests/), built by
 * libcap's own tree against libpsx 2.66: binaries this library never saw
 * at build time, which must pass with either library. */
static const char *upstream_dirs[] = {
	"/usr/lib/x86_64-linux-gnu/libcap2/tests",
	"/usr/lib/aarch64-linux-gnu/libcap2/tests",
	"/usr/lib/libcap2/tests",
};

static void exec_upstream(void)
{
	unsetenv("LD_PRELOAD");
	execl(helper_path, helper_path, (char *)NULL);
	printf("exec_errno=%d\n", errno);
	_exit(127);
}

static void run_upstream(const char *name)
{
	helper_path[0] = '\0';
	for (size_t i = 0; i < sizeof upstream_dirs / sizeof upstream_dirs[0]; i++) {
		snprintf(helper_path, sizeof helper_path, "%s/%s", upstream_dirs[i], name);
		if (access(helper_path, X_OK) == 0)
			break;
		helper_path[0] = '\0';
	}
	if (!helper_path[0])
		pw_skip("libcap-dev's test program %s is not installed", name);
	struct psxt_scen s;
	char st[64];
	bool ended = psxt_scen_run(&s, exec_upstream, 20.0);
	if (!ended)
		psxt_scen_kill(&s);
	PW_CHECK(ended, "%s hung", helper_path);
	PW_CHECK(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0, "%s: %s err=[%.200s]",
		 helper_path, psxt_status_text(s.status, st, sizeof st), s.err);
	PW_CHECK(strstr(s.out, "PASSED") != NULL, "%s: no PASSED in [%.200s]", helper_path, s.out);
}

static void upstream_psx_test(void)
{
	psxt_impl();
	run_upstream("psx_test");
}

static void upstream_libcap_psx_test(void)
{
	psxt_impl();
	run_upstream("libcap_psx_test");
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(libcap_binds_libpsx),
		PW_CASE(cap_set_proc_every_thread),
		PW_CASE(cap_drop_bound_every_thread),
		PW_CASE(cap_set_proc_raw_clone),
		PW_CASE_T(cap_set_proc_blocked_thread, 30),
		PW_CASE(preload_plain_libcap),
		PW_CASE(libcap_before_libpsx),
		PW_CASE(upstream_psx_test),
		PW_CASE(upstream_libcap_psx_test),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
