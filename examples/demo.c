/* procwide demonstration: a multithreaded program sandboxes itself.
 *
 * It starts a small worker pool and a timer thread that blocks every signal
 * (as runtimes' timer threads do), like a server after start-up, then sets
 * no_new_privs twice: first the naive way, with prctl() in the main thread
 * only, which leaves every sibling thread unconfined; then with procwide,
 * which reaches every thread, the timer thread through the ptrace helper.
 * After each step `procwide audit` shows every thread's state as the kernel
 * reports it in /proc/PID/task/TID/status. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
	/* Every signal blocked, with the raw call that even the C library's
	 * own signals cannot get past: no signal-based broadcast reaches it. */
	uint64_t all = ~0ULL;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
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

/* The procwide command built next to this example (build/procwide). */
static char audit_tool[4096];

static void find_audit_tool(void)
{
	ssize_t n = readlink("/proc/self/exe", audit_tool, sizeof audit_tool - 32);
	if (n <= 0) {
		audit_tool[0] = '\0';
		return;
	}
	audit_tool[n] = '\0';
	char *slash = strrchr(audit_tool, '/');
	*slash = '\0';
	slash = strrchr(audit_tool, '/'); /* up from build/examples */
	if (slash)
		strcpy(slash, "/procwide");
	if (access(audit_tool, X_OK) != 0)
		audit_tool[0] = '\0';
}

/* Runs `procwide audit PID` on this process; returns its exit status
 * (0 uniform, 1 divergent), or prints from the library if the tool is not
 * there.  Returns how many threads lack no_new_privs. */
static int show(const char *title)
{
	printf("\n%s\n", title);
	fflush(stdout);
	if (audit_tool[0]) {
		char pid[16];
		snprintf(pid, sizeof pid, "%d", (int)getpid());
		pid_t p = fork();
		if (p == 0) {
			execl(audit_tool, "procwide", "audit", pid, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
	}
	struct procwide_audit *a;
	int e = procwide_audit(0, &a);
	if (e) {
		fprintf(stderr, "demo: audit failed: %s\n", strerror(-e));
		exit(2);
	}
	int unconfined = 0;
	for (size_t i = 0; i < procwide_audit_nthreads(a); i++)
		unconfined += !procwide_audit_thread(a, i)->no_new_privs;
	if (!audit_tool[0])
		printf("  %d of %zu threads lack no_new_privs\n", unconfined,
		       procwide_audit_nthreads(a));
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
	find_audit_tool();

	show("1. After start-up: a worker pool, and a timer thread that blocks every signal");

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
	printf("\nprocwide_run(prctl(PR_SET_NO_NEW_PRIVS, 1)): %zu threads in %.1f us\n",
	       rep.nthreads, (double)rep.elapsed_ns / 1000.0);
	for (size_t i = 0; i < rep.nthreads; i++) {
		const struct procwide_thread *t = &rep.threads[i];
		printf("  thread %-7d %-9s reached by %s\n", (int)t->tid,
		       procwide_thread_status_name(t->status),
		       t->path == PROCWIDE_PATH_SELF	 ? "running the call itself"
		       : t->path == PROCWIDE_PATH_SIGNAL ? "procwide's signal"
		       : t->path == PROCWIDE_PATH_PTRACE ? "the ptrace helper (it blocks every signal)"
							 : "-");
	}
	procwide_report_release(&rep);
	int after = show("3. After procwide_run(): every thread, the timer thread included");

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
