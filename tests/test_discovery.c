/* Finding threads from the kernel: raw clone() threads that the C library
 * never heard of (sharing their creator's TLS), and a task directory opened
 * before a Landlock domain forbids /proc. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void raw_clone_thread_is_covered(void)
{
	pid_t raw = pw_start_raw_thread();
	struct pw_idle *idle = pw_idle_start(3);
	errno = 4242;
	long r = procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
	int saved = errno;
	PW_EQ_LONG(r, 0);
	/* The handler ran in a thread that shares this errno: untouched. */
	PW_EQ_LONG(saved, 4242);
	pid_t tids[16];
	size_t n = pw_list_tids(tids, 16);
	PW_EQ_LONG(n, 5);
	bool seen_raw = false;
	for (size_t i = 0; i < n; i++) {
		char v[8];
		PW_CHECK(pw_task_status(tids[i], "NoNewPrivs", v, sizeof v), "status");
		PW_CHECK(strcmp(v, "1") == 0, "thread %d NoNewPrivs %s", tids[i], v);
		seen_raw |= tids[i] == raw;
	}
	PW_CHECK(seen_raw, "raw thread %d not listed", raw);
	(void)idle;
}

/* ---- Landlock, with constants of our own: musl has no <linux/...>. ---- */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
};
#define LL_ACCESS_FS_READ_FILE (1ULL << 2)
#define LL_ACCESS_FS_READ_DIR (1ULL << 3)

static atomic_int go_gen, done_gen;
static atomic_long seen_slack[4];

static void *slack_reporter(void *arg)
{
	long id = (long)arg;
	int gen = 0;
	for (;;) {
		while (atomic_load(&go_gen) == gen)
			usleep(1000);
		gen = atomic_load(&go_gen);
		atomic_store(&seen_slack[id], (long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
		atomic_fetch_add(&done_gen, 1);
	}
	return NULL;
}

static void works_after_landlock_forbids_proc(void)
{
	struct ll_ruleset_attr attr = {LL_ACCESS_FS_READ_FILE | LL_ACCESS_FS_READ_DIR};
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (fd < 0)
		pw_skip("Landlock unavailable: %s", strerror(errno));
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		PW_CHECK(pthread_create(&t[i], NULL, slack_reporter, (void *)i) == 0, "create");
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), 0);
	PW_EQ_LONG(procwide_syscall(SYS_landlock_restrict_self, fd, 0, 0, 0, 0, 0), 0);
	/* No thread can open /proc any more... */
	errno = 0;
	PW_CHECK(open("/proc/self/status", O_RDONLY) < 0 && errno == EACCES, "errno %d", errno);
	/* ...and procwide still finds and reaches every one. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 313131}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.nthreads, 5);
	procwide_report_release(&rep);
	atomic_store(&go_gen, 1);
	while (atomic_load(&done_gen) < 4)
		usleep(1000);
	for (int i = 0; i < 4; i++)
		PW_EQ_LONG(atomic_load(&seen_slack[i]), 313131);
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(raw_clone_thread_is_covered),
		PW_CASE(works_after_landlock_forbids_proc),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
