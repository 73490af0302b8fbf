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
 * shown over the signal row).
 *
 * A last row is the floor this machine sets, measured in the same run: a
 * bare helper written here (x86_64) that shares the memory, as procwide's
 * does, and makes only the ptrace calls no injection can do without, on
 * the N blocking threads: seize, interrupt and wait; point the registers
 * at a syscall instruction; run to the call's entry and exit stops; put
 * the registers back; exit, which detaches them all.  No check that a thread is ours, no signal
 * mask, no restart fix-up, no rseq, no report: what it lacks is what
 * procwide adds.  Run by hand: build/bench/bench_inject [N] [REPS]. */
#include <procwide.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#ifdef __x86_64__
#include <sys/user.h>
#endif
#include <time.h>
#include <unistd.h>

static int never;

/* The blocking threads' tids, for the floor row. */
static pid_t *blocking_tids;
static _Atomic int nblocking;

static void *idle_main(void *arg)
{
	if (arg) {
		uint64_t all = ~0ULL;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
		blocking_tids[nblocking++] = (pid_t)syscall(SYS_gettid);
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

#ifdef __x86_64__

__asm__(".text\n"
	"bench_gadget:\n"
	"	syscall\n"
	"	int3\n");
extern const char bench_gadget[];

static volatile int floor_failed;

static void floor_wait(pid_t tid)
{
	int st;
	if (waitpid(tid, &st, __WALL) != tid || !WIFSTOPPED(st))
		floor_failed = 1;
}

/* The bare helper: the ptrace calls of one injection into every blocking
 * thread (getppid, which changes nothing), nothing else. */
static int floor_helper(void *arg)
{
	int n = nblocking;
	struct user_regs_struct *saved = arg;
	for (int i = 0; i < n; i++)
		if (ptrace(PTRACE_SEIZE, blocking_tids[i], 0, PTRACE_O_TRACESYSGOOD) != 0 ||
		    ptrace(PTRACE_INTERRUPT, blocking_tids[i], 0, 0) != 0)
			floor_failed = 1;
	for (int i = 0; i < n; i++) {
		floor_wait(blocking_tids[i]);
		ptrace(PTRACE_GETREGS, blocking_tids[i], 0, &saved[i]);
	}
	for (int i = 0; i < n; i++) {
		struct user_regs_struct r = saved[i];
		r.rip = (unsigned long)bench_gadget;
		r.rax = SYS_getppid;
		r.orig_rax = (unsigned long)-1;
		ptrace(PTRACE_SETREGS, blocking_tids[i], 0, &r);
		ptrace(PTRACE_SYSCALL, blocking_tids[i], 0, 0);
	}
	for (int i = 0; i < n; i++) { /* entry stops */
		floor_wait(blocking_tids[i]);
		ptrace(PTRACE_SYSCALL, blocking_tids[i], 0, 0);
	}
	for (int i = 0; i < n; i++) { /* exit stops */
		struct user_regs_struct r;
		floor_wait(blocking_tids[i]);
		ptrace(PTRACE_GETREGS, blocking_tids[i], 0, &r);
		ptrace(PTRACE_SETREGS, blocking_tids[i], 0, &saved[i]);
	}
	return 0; /* its exit detaches them all, the cheapest release */
}

/* Median wall time of the bare helper, from its start to its reaping. */
static double floor_us(int reps)
{
	size_t stack = 256 * 1024;
	char *mem = mmap(NULL, stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct user_regs_struct *saved = calloc((size_t)nblocking, sizeof *saved);
	double *t = calloc((size_t)reps, sizeof *t);
	if (mem == MAP_FAILED || !saved || !t) {
		perror("bench_inject: floor");
		exit(2);
	}
	for (int i = 0; i < reps; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int c = clone(floor_helper, mem + stack, CLONE_VM | SIGCHLD, saved);
		int st;
		if (c < 0 || waitpid(c, &st, 0) != c || floor_failed) {
			fprintf(stderr, "bench_inject: the bare helper failed (ptrace refused?)\n");
			exit(1);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	qsort(t, (size_t)reps, sizeof *t, cmp);
	double m = t[reps / 2];
	free(t);
	free(saved);
	munmap(mem, stack);
	return m;
}
#endif


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
	blocking_tids = calloc((size_t)n, sizeof *blocking_tids);
	if (!blocking_tids) {
		perror("calloc");
		return 2;
	}
	start(n, 0);
	double sig = median_us(0, reps);
	double parked = median_us(PROCWIDE_ATOMIC, reps);
	double all = median_us(PROCWIDE_PTRACE_ALL, reps);
	start(n, 1); /* now n take signals and n block every signal */
	while (nblocking < n)
		usleep(1000);
	double mixed = median_us(0, reps);
#ifdef __x86_64__
	double fl = floor_us(reps);
#endif
	printf("%-34s %10.1f\n", "signal: N idle threads", sig);
	printf("%-34s %10.1f\n", "parked: the same N, parked path", parked);
	printf("%-34s %10.1f  (%.1f us per thread)\n", "ptrace-all: the same N, no signal", all,
	       all / n);
	printf("%-34s %10.1f  (%.1f us per blocked thread over the parked row, %.1f over the signal row)\n",
	       "blocked: + N blocking every signal", mixed, (mixed - parked) / n, (mixed - sig) / n);
#ifdef __x86_64__
	printf("%-34s %10.1f  (%.1f us per thread; ptrace-all %.2fx, blocked %.2fx this floor)\n",
	       "floor: bare ptrace of the N blocking", fl, fl / n, all / fl,
	       (mixed - parked) / fl);
#endif
	return 0;
}
