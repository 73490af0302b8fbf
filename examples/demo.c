/* procwide demonstration: a multithreaded program sandboxes itself.
 *
 * It starts a small worker pool and a timer thread, like a server after
 * start-up, then sets no_new_privs twice: first the naive way, with prctl()
 * in the main thread only, which leaves every sibling thread unconfined;
 * then with procwide_syscall(), which reaches every thread.  After each step
 * it prints every thread's state as the kernel shows it in
 * /proc/self/task/TID/status. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "procwide.h"

#define WORKERS 4

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int quit;

static void *worker(void *arg)
{
	char name[16];
	snprintf(name, sizeof name, "worker-%ld", (long)arg);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	pthread_mutex_lock(&mu);
	while (!quit)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *timer(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "timer", 0, 0, 0);
	for (;;) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL); /* a tick; an early wake-up is harmless */
		pthread_mutex_lock(&mu);
		int q = quit;
		pthread_mutex_unlock(&mu);
		if (q)
			return NULL;
	}
}

/* Prints one row per thread; returns how many threads lack no_new_privs. */
static int show(const char *title)
{
	struct procwide_audit *a;
	int e = procwide_audit(0, &a);
	if (e) {
		fprintf(stderr, "demo: audit failed: %s\n", strerror(-e));
		exit(2);
	}
	printf("\n%s\n", title);
	printf("  %-8s %-12s %-11s %s\n", "TID", "NAME", "NoNewPrivs", "");
	int unconfined = 0;
	for (size_t i = 0; i < procwide_audit_nthreads(a); i++) {
		const struct procwide_audit_thread *t = procwide_audit_thread(a, i);
		unconfined += !t->no_new_privs;
		printf("  %-8d %-12s %-11d %s\n", (int)t->tid, t->name, t->no_new_privs,
		       t->no_new_privs ? "" : "<- can still gain privileges through setuid binaries");
	}
	size_t n = procwide_audit_nthreads(a);
	printf("  => %s\n", procwide_audit_ndivergent(a)
				 ? "DIVERGENT: the threads do not carry the same security state"
			 : unconfined == (int)n ? "uniform, and no thread is confined yet"
						: "uniform: every thread is confined");
	procwide_audit_free(a);
	return unconfined;
}

int main(void)
{
	pthread_t th[WORKERS + 1];
	for (long i = 0; i < WORKERS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	pthread_create(&th[WORKERS], NULL, timer, NULL);
	usleep(50 * 1000); /* let the threads name themselves */

	show("1. After start-up: a worker pool and a timer thread");

	/* The naive way: a plain prctl changes the calling thread only. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("prctl");
		return 2;
	}
	int naive = show("2. prctl(PR_SET_NO_NEW_PRIVS) in the main thread only");

	/* procwide: the same system call, in every thread of the process. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NO_NEW_PRIVS, 1}};
	struct procwide_report rep = {.size = sizeof rep};
	int e = procwide_run(&call, NULL, &rep);
	if (e) {
		fprintf(stderr, "demo: procwide_run: %s: %s\n", strerror(-e), rep.message);
		return 2;
	}
	printf("\nprocwide_run(prctl(PR_SET_NO_NEW_PRIVS, 1)): %zu threads, signal %d, %.1f us\n",
	       rep.nthreads, rep.signal, (double)rep.elapsed_ns / 1000.0);
	procwide_report_release(&rep);
	int after = show("3. After procwide");

	pthread_mutex_lock(&mu);
	quit = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i <= WORKERS; i++)
		pthread_join(th[i], NULL);
	/* The demonstration succeeds when the naive way left threads behind
	 * and procwide left none. */
	return naive > 0 && after == 0 ? 0 : 1;
}
