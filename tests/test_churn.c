/* No thread escapes: threads creating and exiting threads at a high rate
 * while procwide sets a fresh per-thread value in a loop; after every call
 * every live thread must show that value. */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAP_SYS_NICE 23
#define SPAWNERS 6
#define ROUNDS 150

static atomic_bool stop;
static atomic_long spawned;
static bool some_block; /* a quarter of the leaves block every signal */
/* Calls that took the direct path (no parking: the proof of completeness
 * in src/direct.c is what keeps threads from escaping there). */
static unsigned direct_calls, settled_calls;

#define LEAF_NEST 1
#define LEAF_BLOCK 2

static void *leaf(void *arg)
{
	uintptr_t how = (uintptr_t)arg;
	/* Some block every signal, as runtime service threads do: the
	 * ptrace helper must reach them. */
	if (how & LEAF_BLOCK) {
		uint64_t all = ~0ULL;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
		usleep(500);
	}
	/* Some leaves create one more level before exiting: a thread made
	 * by a thread that may not have run the call yet. */
	if (how & LEAF_NEST) {
		pthread_t t;
		if (pthread_create(&t, NULL, leaf, NULL) == 0) {
			atomic_fetch_add(&spawned, 1);
			pthread_join(t, NULL);
		}
	}
	return NULL;
}

static void *spawner(void *arg)
{
	unsigned long n = 0;
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_t t[4];
		int k = 0;
		for (; k < 4; k++) {
			uintptr_t how = (n & 1 ? LEAF_NEST : 0) |
					(some_block && n % 4 == 3 ? LEAF_BLOCK : 0);
			n++;
			if (pthread_create(&t[k], NULL, leaf, (void *)how) != 0)
				break;
			atomic_fetch_add(&spawned, 1);
		}
		while (k--)
			pthread_join(t[k], NULL);
	}
	return NULL;
}

/* Reads a thread's value; false if the thread is gone. */
typedef bool (*read_fn)(pid_t tid, char *out, size_t n);

static bool read_slack(pid_t tid, char *out, size_t n)
{
	long v = pw_timerslack(tid);
	if (v < 0)
		return false;
	snprintf(out, n, "%ld", v);
	return true;
}

static void churn(long (*set)(unsigned round, char *want, size_t n), read_fn get)
{
	pthread_t sp[SPAWNERS];
	for (int i = 0; i < SPAWNERS; i++)
		PW_CHECK(pthread_create(&sp[i], NULL, spawner, NULL) == 0, "spawner");
	static pid_t tids[4096];
	size_t checked = 0;
	for (unsigned round = 1; round <= ROUNDS; round++) {
		char want[32], got[32];
		long r = set(round, want, sizeof want);
		PW_CHECK(r == 0, "round %u: %ld errno %d: %s", round, r, errno, procwide_last_error());
		size_t n = pw_list_tids(tids, 4096);
		PW_CHECK(n <= 4096, "too many threads");
		for (size_t i = 0; i < n; i++) {
			if (!get(tids[i], got, sizeof got))
				continue; /* exited since the listing */
			PW_CHECK(strcmp(got, want) == 0,
				 "round %u: thread %d shows %s, expected %s", round, tids[i], got, want);
			checked++;
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < SPAWNERS; i++)
		pthread_join(sp[i], NULL);
	pw_diag("%ld threads created during %d calls (%u direct, %u of them completed by parking), "
		"%zu thread values checked",
		atomic_load(&spawned), ROUNDS, direct_calls, settled_calls, checked);
	/* Without threads that block the signal, calls after the first take
	 * the direct path, except after one that reached a thread through
	 * ptrace (one caught mid-exit, or one without a CPU for a
	 * millisecond on a loaded machine). */
	PW_CHECK(some_block || direct_calls > 0, "no direct call");
	PW_CHECK(atomic_load(&spawned) > ROUNDS, "churn too slow to test anything: %ld",
		 atomic_load(&spawned));
}

/* procwide_syscall's policy, through procwide_run to see the path taken. */
static long broadcast_prctl(long option, long arg)
{
	struct procwide_call call = {.nr = SYS_prctl, .args = {option, arg}};
	struct procwide_report rep = {.size = sizeof rep};
	int r = procwide_run(&call, NULL, &rep);
	direct_calls += rep.mode != PROCWIDE_MODE_PARKED;
	settled_calls += rep.mode == PROCWIDE_MODE_DIRECT_THEN_PARKED;
	procwide_report_release(&rep);
	errno = -r;
	return r ? -1 : 0;
}

static long set_slack(unsigned round, char *want, size_t n)
{
	long v = 100000 + (long)round * 7;
	snprintf(want, n, "%ld", v);
	return broadcast_prctl(PR_SET_TIMERSLACK, v);
}

static void churn_timerslack(void)
{
	/* The kernel shows another thread's timerslack_ns only to a reader
	 * with CAP_SYS_NICE (fs/proc/base.c, timerslack_ns_show). */
	if (!pw_have_cap(CAP_SYS_NICE))
		pw_skip("reading another thread's /proc/TID/timerslack_ns needs CAP_SYS_NICE; "
			"churn_comm covers the unprivileged case");
	churn(set_slack, read_slack);
}

static char name_buf[16];

static long set_name(unsigned round, char *want, size_t n)
{
	snprintf(name_buf, sizeof name_buf, "pw-%u", round);
	snprintf(want, n, "%s", name_buf);
	return broadcast_prctl(PR_SET_NAME, (long)name_buf);
}

static void churn_comm(void)
{
	/* A thread's name is per thread, inherited by the threads it creates
	 * and readable by any thread of the process. */
	churn(set_name, pw_task_comm);
}

static void churn_with_blocking_threads(void)
{
	some_block = true;
	churn(set_name, pw_task_comm);
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE_T(churn_timerslack, 120),
		PW_CASE_T(churn_comm, 120),
		PW_CASE_T(churn_with_blocking_threads, 120),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
