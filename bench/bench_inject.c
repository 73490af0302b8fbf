/* bench_inject: the cost of reaching threads through the ptrace helper.
 *
 * Rows, each the median of REPS calls of procwide_run(setresuid(-1,-1,-1)):
 *   alone       N threads that block every signal (a raw rt_sigprocmask),
 *               and no other: the helper sends each on the return path;
 *               they end before the next row
 *   signal      N idle threads that take signals (the direct path)
 *   parked      the same N, parked path (PROCWIDE_ATOMIC): the path every
 *               call takes in a process with a thread that blocks signals
 *   ptrace-all  the same N reached through ptrace by request
 *               (PROCWIDE_PTRACE_ALL), no signal at all
 *   blocked     N more idle threads that block every signal (a raw
 *               rt_sigprocmask): each call starts the helper, which stops
 *               each once and sends it on the return path (one stop; the
 *               ptrace-all row's threads take it too, see procwide_run(3))
 *   blocked-glibc  N more that block with pthread_sigmask, which leaves
 *               glibc's signals 32 and 33 open (their handlers, if any,
 *               have SA_RESTART: the return path too)
 * and the cost per injected thread: ptrace-all / N, (blocked - parked) / N,
 * what the blocking threads add to a call that parks the others (also
 * shown over the signal row), and (blocked-glibc - blocked) / N.
 *
 * Two last rows are the floors this machine sets, measured in the same run
 * by bare helpers written here (x86_64) that share the memory, as
 * procwide's does, and make only the ptrace calls no injection can do
 * without, on the N threads that block every signal.  Three stops: seize,
 * interrupt and wait; point the registers at a syscall instruction; run to
 * the call's entry and exit stops; put the registers back; exit, which
 * detaches them all.  One stop: seize, interrupt and wait; read the
 * registers and the extended state; write a signal frame and point the
 * thread at a stub that makes the call, counts itself and returns with
 * rt_sigreturn; exit; wait for the count.  No check that a thread is ours,
 * no signal mask, no rseq, no report: what they lack is what procwide
 * adds.  Run by hand: build/bench/bench_inject [N] [REPS]. */
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
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#ifdef __x86_64__
#include <sys/user.h>
#endif
#include <time.h>
#include <unistd.h>

static int never;

/* The threads of the first row: every signal blocked, until `alone_end`. */
static int alone_end;

static void *alone_main(void *arg)
{
	(void)arg;
	uint64_t all = ~0ULL;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
	while (!__atomic_load_n(&alone_end, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &alone_end, 128 /* FUTEX_WAIT_PRIVATE */, 0, NULL, NULL, 0);
	return NULL;
}

static double alone_us(int n, int reps);

/* The blocking threads' tids, for the floor row. */
static pid_t *blocking_tids;
static _Atomic int nblocking;

static void *idle_main(void *arg)
{
	if (arg == (void *)1) {
		uint64_t all = ~0ULL;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
		blocking_tids[nblocking++] = (pid_t)syscall(SYS_gettid);
	} else if (arg == (void *)2) {
		sigset_t all;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
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
		if (pthread_create(&t, &a, idle_main, (void *)(intptr_t)block) != 0) {
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

/* The one-stop floor: a signal frame per thread (the kernel's struct
 * rt_sigframe from the ucontext on; registers, mask, extended state) and a
 * stub that makes the call, counts itself, wakes the bench when all have,
 * and returns with rt_sigreturn.  r12: the thread's result, r13: the
 * count, r14: the target, rsp: the frame's ucontext. */
__asm__(".text\n"
	"bench_stub:\n"
	"	syscall\n"
	"	mov %rax, (%r12)\n"
	"	mov $1, %eax\n"
	"	lock xadd %eax, (%r13)\n"
	"	inc %eax\n"
	"	cmp %eax, %r14d\n"
	"	jne 1f\n"
	"	mov %r13, %rdi\n"
	"	mov $129, %esi\n"
	"	mov $1, %edx\n"
	"	mov $202, %eax\n"
	"	syscall\n"
	"1:	mov $15, %eax\n"
	"	syscall\n"
	"	ud2\n");
extern const char bench_stub[];

struct bench_frame {
	uint64_t flags, link, ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	uint64_t gregs[18]; /* r8..r15 rdi rsi rbp rbx rdx rax rcx rsp rip eflags */
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
	uint64_t sigmask;
	uint8_t info[128];
};

struct bench_slot {
	long result;
	char pad[56];
	uint64_t pretcode;
	struct bench_frame frame;
	char fp[4096] __attribute__((aligned(64)));
};

static struct bench_slot *slots1;
static uint32_t count1;

static int floor1_helper(void *arg)
{
	(void)arg;
	int n = nblocking;
	for (int i = 0; i < n; i++)
		if (ptrace(PTRACE_SEIZE, blocking_tids[i], 0, PTRACE_O_TRACESYSGOOD) != 0 ||
		    ptrace(PTRACE_INTERRUPT, blocking_tids[i], 0, 0) != 0)
			floor_failed = 1;
	for (int i = 0; i < n; i++) {
		struct user_regs_struct s;
		struct bench_slot *sl = &slots1[i];
		floor_wait(blocking_tids[i]);
		ptrace(PTRACE_GETREGS, blocking_tids[i], 0, &s);
		struct iovec iov = {sl->fp, 4000};
		if (ptrace(PTRACE_GETREGSET, blocking_tids[i], (void *)0x202 /* NT_X86_XSTATE */,
			   &iov) != 0)
			floor_failed = 1;
		uint32_t *sw = (uint32_t *)(void *)(sl->fp + 464);
		uint64_t xcr0 = *(uint64_t *)(void *)sw;
		sw[0] = 0x46505853U, sw[1] = (uint32_t)iov.iov_len + 4;
		sw[2] = (uint32_t)xcr0, sw[3] = (uint32_t)(xcr0 >> 32), sw[4] = (uint32_t)iov.iov_len;
		*(uint32_t *)(void *)(sl->fp + iov.iov_len) = 0x46505845U;
		long e = -(long)s.rax;
		if ((long)s.orig_rax >= 0 && (e == 512 || e == 513 || e == 514))
			s.rax = s.orig_rax, s.rip -= 2; /* the bench's threads wait in futex */
		struct bench_frame *f = &sl->frame;
		memset(f, 0, sizeof *f);
		f->flags = 7;
		f->ss_flags = 4;
		uint64_t g[18] = {s.r8,	 s.r9,	s.r10, s.r11, s.r12, s.r13, s.r14, s.r15, s.rdi,
				  s.rsi, s.rbp, s.rbx, s.rdx, s.rax, s.rcx, s.rsp, s.rip, s.eflags};
		memcpy(f->gregs, g, sizeof g);
		f->cs = (uint16_t)s.cs, f->ss = (uint16_t)s.ss;
		f->fpstate = (uint64_t)(uintptr_t)sl->fp;
		f->sigmask = ~0ULL;
		s.rip = (unsigned long)bench_stub;
		s.rax = SYS_getppid;
		s.orig_rax = (unsigned long)-1;
		s.r12 = (unsigned long)&sl->result;
		s.r13 = (unsigned long)&count1;
		s.r14 = (unsigned long)n;
		s.rsp = (unsigned long)f;
		ptrace(PTRACE_SETREGS, blocking_tids[i], 0, &s);
	}
	return 0; /* its exit lets them all go, to the stub */
}

/* Median wall time of a bare helper, from its start to its reaping, and,
 * for the one-stop one, until every thread has counted itself. */
static double floor_run(int (*helper)(void *), int reps)
{
	size_t stack = 256 * 1024;
	char *mem = mmap(NULL, stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct user_regs_struct *saved = calloc((size_t)nblocking, sizeof *saved);
	slots1 = aligned_alloc(64, (size_t)nblocking * sizeof *slots1);
	double *t = calloc((size_t)reps, sizeof *t);
	if (mem == MAP_FAILED || !saved || !t || !slots1) {
		perror("bench_inject: floor");
		exit(2);
	}
	for (int i = 0; i < reps; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		__atomic_store_n(&count1, 0, __ATOMIC_SEQ_CST);
		int c = clone(helper, mem + stack, CLONE_VM | SIGCHLD, saved);
		int st;
		if (c < 0 || waitpid(c, &st, 0) != c || floor_failed) {
			fprintf(stderr, "bench_inject: the bare helper failed (ptrace refused?)\n");
			exit(1);
		}
		for (uint32_t k; helper == floor1_helper && (k = __atomic_load_n(&count1, __ATOMIC_SEQ_CST)) < (uint32_t)nblocking;)
			syscall(SYS_futex, &count1, 128 /* FUTEX_WAIT_PRIVATE */, k, NULL, NULL, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	qsort(t, (size_t)reps, sizeof *t, cmp);
	double m = t[reps / 2];
	free(t);
	free(saved);
	free(slots1);
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

static double alone_us(int n, int reps)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (int i = 0; t && i < n; i++)
		if (pthread_create(&t[i], &a, alone_main, NULL) != 0)
			t = NULL;
	if (!t) {
		perror("bench_inject: alone");
		exit(2);
	}
	usleep(50000);
	double m = median_us(0, reps);
	__atomic_store_n(&alone_end, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &alone_end, 129 /* FUTEX_WAKE_PRIVATE */, n, NULL, NULL, 0);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
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
	double alone = alone_us(n, reps);
	start(n, 0);
	double sig = median_us(0, reps);
	double parked = median_us(PROCWIDE_ATOMIC, reps);
	double all = median_us(PROCWIDE_PTRACE_ALL, reps);
	start(n, 1); /* now n take signals and n block every signal */
	while (nblocking < n)
		usleep(1000);
	double mixed = median_us(0, reps);
#ifdef __x86_64__
	double fl = floor_run(floor_helper, reps), fl1 = floor_run(floor1_helper, reps);
#endif
	start(n, 2); /* and n more block with glibc's mask */
	double mixed2 = median_us(0, reps);
	printf("%-34s %10.1f  (%.1f us per thread)\n", "alone: N blocking, no other", alone,
	       alone / n);
	printf("%-34s %10.1f\n", "signal: N idle threads", sig);
	printf("%-34s %10.1f\n", "parked: the same N, parked path", parked);
	printf("%-34s %10.1f  (%.1f us per thread)\n", "ptrace-all: the same N, no signal", all,
	       all / n);
	printf("%-34s %10.1f  (%.1f us per blocked thread over the parked row, %.1f over the signal row)\n",
	       "blocked: + N blocking every signal", mixed, (mixed - parked) / n, (mixed - sig) / n);
	printf("%-34s %10.1f  (%.1f us per thread over the blocked row)\n",
	       "blocked-glibc: + N, glibc's mask", mixed2, (mixed2 - mixed) / n);
#ifdef __x86_64__
	printf("%-34s %10.1f  (%.1f us per thread; ptrace-all %.2fx, blocked-glibc %.2fx this floor)\n",
	       "floor: bare three stops, N blocking", fl, fl / n, all / fl, (mixed2 - mixed) / fl);
	printf("%-34s %10.1f  (%.1f us per thread; blocked %.2fx this floor)\n",
	       "floor-1: bare one stop, N blocking", fl1, fl1 / n, (mixed - parked) / fl1);
#endif
	return 0;
}
