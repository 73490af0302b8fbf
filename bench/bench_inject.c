/* bench_inject: the cost of reaching threads through the ptrace helper.
 *
 * Rows, each the median of REPS calls of procwide_run(setresuid(-1,-1,-1)):
 *   signal      N idle threads that take signals (the direct path)
 *   parked      the same N, parked path (PROCWIDE_ATOMIC): the path every
 *               call takes in a process with a thread that blocks signals
 *   ptrace-all  the same N reached through ptrace by request
 *               (PROCWIDE_PTRACE_ALL), no signal at all
 *   blocked     N more idle threads that block every signal: each call
 *               forks the helper, which stops and runs the call in each
 * and the cost per injected thread: ptrace-all / N, and (blocked - parked)
 * / N, what the blocking threads add to a call that parks the others (also
 * shown over the signal row).  Run by hand: build/bench/bench_inject [N]
 * [REPS]. */
#include <procwide.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int never;

static void *idle_main(void *arg)
{
	if (arg) {
		uint64_t all = ~0ULL;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	}
	for (;;)
		syscall(SYS_futex, &never, 128 /* FUTEX_WAIT_PRIVATE */, 0, NULL, NULL, 0);
	return NULL;
}

static void start(int n, int block)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, &a, idle_main, block ? (void *)1 : NULL) != 0) {
			perror("pthread_create");
			exit(2);
		}
	}
	usleep(50000);
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double median_us(unsigned flags, int reps)
{
	double *t = calloc((size_t)reps, sizeof *t);
	struct procwide_call call = {.nr = SYS_setresuid, .args = {-1, -1, -1}};
	struct procwide_opts opts = {.size = sizeof opts, .flags = flags, .deadline_ms = 10000};
	for (int i = 0; i < reps; i++) {
		struct procwide_report rep = {.size = sizeof rep};
		if (procwide_run(&call, &opts, &rep) != 0) {
			fprintf(stderr, "bench_inject: %s\n", rep.message);
			exit(1);
		}
		t[i] = (double)rep.elapsed_ns / 1000.0;
		procwide_report_release(&rep);
	}
	qsort(t, (size_t)reps, sizeof *t, cmp);
	double m = t[reps / 2];
	free(t);
	return m;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	int reps = argc > 2 ? atoi(argv[2]) : 21;
	struct utsname u;
	uname(&u);
	printf("bench_inject: %d threads, %d calls a row, median wall time (us)\n", n, reps);
	printf("machine: %ld CPUs, %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
	start(n, 0);
	double sig = median_us(0, reps);
	double parked = median_us(PROCWIDE_ATOMIC, reps);
	double all = median_us(PROCWIDE_PTRACE_ALL, reps);
	start(n, 1); /* now n take signals and n block every signal */
	double mixed = median_us(0, reps);
	printf("%-34s %10.1f\n", "signal: N idle threads", sig);
	printf("%-34s %10.1f\n", "parked: the same N, parked path", parked);
	printf("%-34s %10.1f  (%.1f us per thread)\n", "ptrace-all: the same N, no signal", all,
	       all / n);
	printf("%-34s %10.1f  (%.1f us per blocked thread over the parked row, %.1f over the signal row)\n",
	       "blocked: + N blocking every signal", mixed, (mixed - parked) / n, (mixed - sig) / n);
	return 0;
}
