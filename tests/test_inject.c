/* Reaching threads that block every signal, through the ptrace helper:
 * they get the change, and the call they were blocked in resumes or
 * restarts as if nothing happened. */
#include "harness.h"
#include "procwide.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP_SYS_PTRACE 19

#define block_everything pw_block_all_signals

/* The ptrace stops thread tid went through in the call of rep. */
static int stops_of(const struct procwide_report *rep, pid_t tid)
{
	for (size_t i = 0; i < rep->nthreads; i++)
		if (rep->threads[i].tid == tid)
			return rep->threads[i].stops;
	return -1;
}

/* Sets no_new_privs everywhere and checks every thread, and that the
 * thread `via_ptrace` was reached through ptrace, with `stops` stops: 1
 * for a thread that blocks every signal and takes the return path, 3 for
 * one that keeps the stop at the call's exit (see procwide_run(3)); 0:
 * either. */
static void nnp_everywhere(pid_t via_ptrace, int stops)
{
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NO_NEW_PRIVS, 1}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	pw_expect_thread(&rep, via_ptrace, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
	if (stops)
		PW_EQ_LONG(stops_of(&rep, via_ptrace), stops);
	procwide_report_release(&rep);
	pid_t tids[64];
	size_t n = pw_list_tids(tids, 64);
	for (size_t i = 0; i < n; i++) {
		char v[8];
		PW_CHECK(pw_task_status(tids[i], "NoNewPrivs", v, sizeof v) && strcmp(v, "1") == 0,
			 "thread %d NoNewPrivs %s", tids[i], v);
	}
}

/* Starts fn(arg), and waits until it has published its tid in *tid. */
#define start_thread pw_start_thread

/* Installs fn as the handler of sig, with sa_flags (SA_RESTART or not). */
static void handle(int sig, void (*fn)(int), int sa_flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = sa_flags;
	PW_CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

static atomic_int usr1_seen;
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&usr1_seen, 1); }

/* Waits until thread tid sleeps in system call nr (any, if nr is -1). */
static void wait_in_syscall(pid_t tid, long nr)
{
	char path[64], buf[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	for (int i = 0; i < 2000; i++) {
		FILE *f = fopen(path, "r");
		PW_CHECK(f != NULL, "open %s", path);
		/* "running" for a thread on a CPU: no number, not read(2)'s 0. */
		long got;
		bool in = fgets(buf, sizeof buf, f) && sscanf(buf, "%ld", &got) == 1 &&
			  (got == nr || nr == -1) && pw_task_state(tid) == 'S';
		fclose(f);
		if (in)
			return;
		usleep(1000);
	}
	PW_CHECK(false, "thread %d never entered system call %ld", (int)tid, nr);
}

/* Starts fn, which publishes its tid in *tid and then reads a pipe, and
 * waits until it sleeps in that read. */
static pid_t start_reader(pthread_t *t, void *(*fn)(void *), atomic_int *tid)
{
	pid_t id = start_thread(t, fn, NULL, tid);
	wait_in_syscall(id, SYS_read);
	return id;
}

/* ---- a runtime's timer thread ------------------------------------------ */

static atomic_int timer_tid, timer_eintr;
static atomic_bool timer_stop;

static void *timer_main(void *arg)
{
	(void)arg;
	atomic_store(&timer_tid, pw_gettid());
	while (!atomic_load(&timer_stop)) {
		struct timespec ts = {0, 2000000};
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			atomic_fetch_add(&timer_eintr, 1);
	}
	return NULL;
}

static void runtime_timer_thread(void)
{
	/* As GHC's RTS starts its ticker: created with every signal blocked
	 * in its creator, so it starts with them blocked too. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	pid_t timer = start_thread(&t, timer_main, NULL, &timer_tid);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	struct pw_idle *idle = pw_idle_start(3);
	/* glibc's mask leaves its signals 32 and 33 open, whose handlers (if
	 * any) have SA_RESTART: three stops in nanosleep, one between two. */
	nnp_everywhere(timer, 0);
	atomic_store(&timer_stop, true);
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&timer_eintr), 0);
	pw_idle_stop(idle);
}

/* ---- blocked in read() on a pipe --------------------------------------- */

static int pfd[2];
static atomic_int reader_tid;
static atomic_long reader_ret, reader_errno;
static char reader_byte;

static void *reader_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&reader_tid, pw_gettid());
	ssize_t n = read(pfd[0], &reader_byte, 1);
	atomic_store(&reader_errno, n < 0 ? errno : 0);
	atomic_store(&reader_ret, (long)n);
	return NULL;
}

static void read_on_pipe_resumes(void)
{
	PW_CHECK(pipe(pfd) == 0, "pipe");
	atomic_store(&reader_ret, -2);
	pthread_t t;
	pid_t tid = start_reader(&t, reader_main, &reader_tid);
	nnp_everywhere(tid, 1);
	/* Back to sleep in read() (had it returned, the thread would end). */
	wait_in_syscall(tid, SYS_read);
	PW_EQ_LONG(atomic_load(&reader_ret), -2);
	PW_CHECK(write(pfd[1], "z", 1) == 1, "write");
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&reader_ret), 1);
	PW_EQ_LONG(atomic_load(&reader_errno), 0);
	PW_EQ_LONG(reader_byte, 'z');
}

/* ---- timed waits: nanosleep, epoll_wait, poll, futex -------------------- */

enum wait_kind { W_NANOSLEEP, W_EPOLL, W_POLL, W_FUTEX, W_INT80_NANOSLEEP };
static enum wait_kind kind;
static atomic_int waiter_tid;
static atomic_long waiter_ret, waiter_errno;
static double waited;
static int32_t *ts32; /* W_INT80_NANOSLEEP: i386's timespec, below 4 GiB */

/* nanosleep through int $0x80 (i386's number 162, 32-bit pointer): a
 * call the kernel restarts through i386's restart_syscall. */
static long int80_nanosleep(int32_t *ts)
{
	long eax = 162;
	__asm__ volatile("int $0x80"
			 : "+a"(eax)
			 : "b"((long)(uintptr_t)ts), "c"(0L)
			 : "memory", "r8", "r9", "r10", "r11");
	return eax;
}

#define WAIT_MS 400

static void *waiter_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&waiter_tid, pw_gettid());
	double t0 = pw_now_s();
	long r = 0;
	if (kind == W_NANOSLEEP) {
		struct timespec ts = {0, WAIT_MS * 1000000L};
		r = nanosleep(&ts, NULL);
	} else if (kind == W_EPOLL) {
		int ep = epoll_create1(0);
		struct epoll_event ev;
		r = epoll_wait(ep, &ev, 1, WAIT_MS);
	} else if (kind == W_POLL) {
		r = poll(NULL, 0, WAIT_MS);
	} else if (kind == W_INT80_NANOSLEEP) {
		r = int80_nanosleep(ts32);
		if (r < 0) {
			errno = (int)-r;
			r = -1;
		}
	} else {
		static int word;
		struct timespec ts = {0, WAIT_MS * 1000000L};
		r = syscall(SYS_futex, &word, 128 /* FUTEX_WAIT_PRIVATE */, 0, &ts, NULL, 0);
		if (r < 0 && errno == ETIMEDOUT)
			r = 0; /* the normal end of this wait */
	}
	atomic_store(&waiter_errno, r < 0 ? errno : 0);
	waited = pw_now_s() - t0;
	atomic_store(&waiter_ret, r);
	return NULL;
}

static void wait_completes_normally(enum wait_kind k)
{
	kind = k;
	atomic_store(&waiter_ret, -99);
	pthread_t t;
	pid_t tid = start_thread(&t, waiter_main, NULL, &waiter_tid);
	/* Its wait is the first call after it published its tid that
	 * sleeps (the number differs between C libraries). */
	wait_in_syscall(tid, -1);
	/* All but epoll_wait (whose EINTR becomes a restart) end a stop with
	 * -ERESTART_RESTARTBLOCK, which rt_sigreturn would end. */
	nnp_everywhere(tid, k == W_EPOLL ? 1 : 3);
	pthread_join(t, NULL);
	PW_CHECK(atomic_load(&waiter_ret) == 0, "returned %ld errno %ld (%s)",
		 atomic_load(&waiter_ret), atomic_load(&waiter_errno),
		 strerror((int)atomic_load(&waiter_errno)));
	PW_CHECK(waited >= WAIT_MS / 1000.0 - 0.005, "waited only %.3f s", waited);
	pw_diag("waited %.3f s for %d ms", waited, WAIT_MS);
}

static void nanosleep_completes(void) { wait_completes_normally(W_NANOSLEEP); }
static void epoll_wait_completes(void) { wait_completes_normally(W_EPOLL); }
static void poll_completes(void) { wait_completes_normally(W_POLL); }
static void futex_wait_completes(void) { wait_completes_normally(W_FUTEX); }

/* A nanosleep restarted after the stop goes back to sleep for what is left
 * (-ERESTART_RESTARTBLOCK): through i386's restart_syscall (0), since
 * x86_64's (219) is i386's madvise. */
/* Maps ts32 (memory below 4 GiB) and skips the case if this kernel runs
 * no int $0x80 system call. */
static void need_int80(void)
{
	ts32 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
		    -1, 0);
	PW_CHECK(ts32 != MAP_FAILED, "mmap MAP_32BIT");
	pid_t probe = fork();
	PW_CHECK(probe >= 0, "fork");
	if (probe == 0) {
		ts32[0] = 0;
		ts32[1] = 1000;
		_exit(int80_nanosleep(ts32) == 0 ? 0 : 1);
	}
	int st;
	PW_CHECK(waitpid(probe, &st, 0) == probe, "waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		pw_skip("this kernel runs no int $0x80 system call (no IA32 emulation)");
}

static void int80_nanosleep_completes(void)
{
	need_int80();
	ts32[0] = 0;
	ts32[1] = WAIT_MS * 1000000;
	wait_completes_normally(W_INT80_NANOSLEEP);
}

/* A read made with int $0x80 (i386's number 3) by a thread that blocks
 * every signal: the return path's frame restarts it through the same
 * two-byte instruction with i386's number, and it returns the byte. */
static atomic_int int80_tid;
static atomic_long int80_ret = -99;

static void *int80_reader_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&int80_tid, pw_gettid());
	long eax = 3; /* read */
	__asm__ volatile("int $0x80"
			 : "+a"(eax)
			 : "b"((long)pfd[0]), "c"((long)(uintptr_t)ts32), "d"(1L)
			 : "memory", "r8", "r9", "r10", "r11");
	atomic_store(&int80_ret, eax);
	return NULL;
}

static void int80_read_on_the_return_path(void)
{
	need_int80();
	PW_CHECK(pipe(pfd) == 0, "pipe");
	pthread_t t;
	pid_t tid = start_thread(&t, int80_reader_main, NULL, &int80_tid);
	wait_in_syscall(tid, 3); /* i386's number, as /proc shows it */
	nnp_everywhere(tid, 1);
	wait_in_syscall(tid, 3); /* back in its read */
	PW_EQ_LONG(atomic_load(&int80_ret), -99);
	PW_CHECK(write(pfd[1], "i", 1) == 1, "write");
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&int80_ret), 1);
	PW_EQ_LONG(((char *)ts32)[0], 'i');
}

/* ---- every register survives: a thread reached in a system call -------- */

/* long regs_probe(int fd, void *buf, uint64_t out[45]): loads known values
 * into the registers a thread keeps across a system call (the general ones
 * but rax, rcx and r11, and the low 128 bits of xmm0..15; not the upper
 * halves of ymm, MXCSR or the x87 state), sets the direction flag, reads one byte from fd, then
 * stores those registers in out: rbx rbp r12 r13 r14 r15 rdi rsi rdx r8 r9
 * r10, rflags, then xmm0..xmm15 (two words each).  The read blocks; the
 * call reaches the thread there through ptrace, and the read restarts. */
__asm__(".text\n"
	".type regs_probe, @function\n"
	"regs_probe:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	push %rdx\n"
	"	movabs $0x1111111111111111, %rbx\n"
	"	movabs $0x2222222222222222, %rbp\n"
	"	movabs $0x3333333333333333, %r12\n"
	"	movabs $0x4444444444444444, %r13\n"
	"	movabs $0x5555555555555555, %r14\n"
	"	movabs $0x6666666666666666, %r15\n"
	"	movabs $0x7777777777777777, %r8\n"
	"	movabs $0x8888888888888888, %r9\n"
	"	movabs $0x9999999999999999, %r10\n"
	"	mov $1, %edx\n"
	"	lea regs_pattern(%rip), %rax\n"
	"	movdqu 0(%rax), %xmm0\n	movdqu 16(%rax), %xmm1\n	movdqu 32(%rax), %xmm2\n"
	"	movdqu 48(%rax), %xmm3\n	movdqu 64(%rax), %xmm4\n	movdqu 80(%rax), %xmm5\n"
	"	movdqu 96(%rax), %xmm6\n	movdqu 112(%rax), %xmm7\n	movdqu 128(%rax), %xmm8\n"
	"	movdqu 144(%rax), %xmm9\n	movdqu 160(%rax), %xmm10\n	movdqu 176(%rax), %xmm11\n"
	"	movdqu 192(%rax), %xmm12\n	movdqu 208(%rax), %xmm13\n	movdqu 224(%rax), %xmm14\n"
	"	movdqu 240(%rax), %xmm15\n"
	"	std\n"
	"	xor %eax, %eax\n" /* read */
	"	syscall\n"
	"	pushfq\n"
	"	cld\n"
	"	mov 8(%rsp), %rcx\n"
	"	mov %rbx, 0(%rcx)\n	mov %rbp, 8(%rcx)\n	mov %r12, 16(%rcx)\n	mov %r13, 24(%rcx)\n"
	"	mov %r14, 32(%rcx)\n	mov %r15, 40(%rcx)\n	mov %rdi, 48(%rcx)\n	mov %rsi, 56(%rcx)\n"
	"	mov %rdx, 64(%rcx)\n	mov %r8, 72(%rcx)\n	mov %r9, 80(%rcx)\n	mov %r10, 88(%rcx)\n"
	"	pop %r11\n	mov %r11, 96(%rcx)\n"
	"	movdqu %xmm0, 104(%rcx)\n	movdqu %xmm1, 120(%rcx)\n	movdqu %xmm2, 136(%rcx)\n"
	"	movdqu %xmm3, 152(%rcx)\n	movdqu %xmm4, 168(%rcx)\n	movdqu %xmm5, 184(%rcx)\n"
	"	movdqu %xmm6, 200(%rcx)\n	movdqu %xmm7, 216(%rcx)\n	movdqu %xmm8, 232(%rcx)\n"
	"	movdqu %xmm9, 248(%rcx)\n	movdqu %xmm10, 264(%rcx)\n	movdqu %xmm11, 280(%rcx)\n"
	"	movdqu %xmm12, 296(%rcx)\n	movdqu %xmm13, 312(%rcx)\n	movdqu %xmm14, 328(%rcx)\n"
	"	movdqu %xmm15, 344(%rcx)\n"
	"	pop %rdx\n	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n"
	".size regs_probe, . - regs_probe\n"
	".section .rodata\n"
	"regs_pattern:\n"
	"	.fill 256, 1, 0xa5\n"
	".previous\n");
long regs_probe(int fd, void *buf, uint64_t *out);

static int probe_pipe[2];
static char probe_byte;
static uint64_t probe_out[45];
static atomic_int probe_tid;
static atomic_long probe_ret = -1;

static void *probe_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&probe_tid, pw_gettid());
	atomic_store(&probe_ret, regs_probe(probe_pipe[0], &probe_byte, probe_out));
	return NULL;
}



static void registers_survive_injection(void)
{
	PW_CHECK(pipe(probe_pipe) == 0, "pipe");
	pthread_t t;
	pid_t tid = start_reader(&t, probe_main, &probe_tid);
	nnp_everywhere(tid, 1); /* the frame puts them back */
	PW_CHECK(write(probe_pipe[1], "r", 1) == 1, "write");
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&probe_ret), 1);
	PW_CHECK(probe_byte == 'r', "read %d", probe_byte);
	static const uint64_t want[] = {
		0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444,
		0x5555555555555555, 0x6666666666666666,
	};
	for (int i = 0; i < 6; i++)
		PW_CHECK(probe_out[i] == want[i], "callee-saved register %d: %#llx", i,
			 (unsigned long long)probe_out[i]);
	PW_EQ_LONG((long)probe_out[6], probe_pipe[0]);			/* rdi */
	PW_CHECK(probe_out[7] == (uint64_t)(uintptr_t)&probe_byte, "rsi"); /* rsi */
	PW_EQ_LONG((long)probe_out[8], 1);				/* rdx */
	PW_CHECK(probe_out[9] == 0x7777777777777777 && probe_out[10] == 0x8888888888888888 &&
			 probe_out[11] == 0x9999999999999999,
		 "r8 %#llx r9 %#llx r10 %#llx", (unsigned long long)probe_out[9],
		 (unsigned long long)probe_out[10], (unsigned long long)probe_out[11]);
	PW_CHECK(probe_out[12] & 0x400, "direction flag lost: rflags %#llx",
		 (unsigned long long)probe_out[12]);
	for (int i = 13; i < 45; i++)
		PW_CHECK(probe_out[i] == 0xa5a5a5a5a5a5a5a5ULL, "xmm%d: %#llx", (i - 13) / 2,
			 (unsigned long long)probe_out[i]);
}

/* ---- the return path: what the frame must put back --------------------- */

/* The state a thread keeps across a system call that the general
 * registers do not hold: the upper halves of ymm7 and ymm15 (with AVX),
 * MXCSR and the x87 control word, set to values of their own (rounding
 * towards zero).  vec_main loads them, sleeps in a raw futex wait until
 * vec_go is set, stores what it finds, and puts the defaults back. */
struct vec_state {
	uint64_t want[8]; /* ymm7, ymm15 */
	uint64_t seen[10]; /* ymm7, ymm15, mxcsr, x87 control word */
	long avx;
	atomic_int tid;
};
static int vec_go;

static void *vec_main(void *arg)
{
	struct vec_state *v = arg;
	block_everything();
	atomic_store(&v->tid, pw_gettid());
	uint32_t mxcsr = 0x7f80, mxcsr_default = 0x1f80;
	uint16_t fcw = 0x0f7f, fcw_default = 0x037f;
	__asm__ volatile(
		"	test %[avx], %[avx]\n"
		"	jz 1f\n"
		"	vmovdqu 0(%[want]), %%ymm7\n"
		"	vmovdqu 32(%[want]), %%ymm15\n"
		"1:	ldmxcsr %[mx]\n"
		"	fldcw %[cw]\n"
		"2:	mov $202, %%eax\n" /* futex(&vec_go, FUTEX_WAIT_PRIVATE, 0) */
		"	mov %[go], %%rdi\n"
		"	mov $128, %%esi\n"
		"	xor %%edx, %%edx\n"
		"	xor %%r10d, %%r10d\n"
		"	syscall\n"
		"	cmpl $0, (%[go])\n"
		"	je 2b\n"
		"	test %[avx], %[avx]\n"
		"	jz 3f\n"
		"	vmovdqu %%ymm7, 0(%[seen])\n"
		"	vmovdqu %%ymm15, 32(%[seen])\n"
		"	vzeroupper\n"
		"3:	stmxcsr 64(%[seen])\n"
		"	fnstcw 72(%[seen])\n"
		"	ldmxcsr %[mxd]\n"
		"	fldcw %[cwd]\n"
		:
		: [avx] "r"(v->avx), [want] "r"(v->want), [seen] "r"(v->seen), [go] "r"(&vec_go),
		  [mx] "m"(mxcsr), [cw] "m"(fcw), [mxd] "m"(mxcsr_default), [cwd] "m"(fcw_default)
		: "rax", "rdi", "rsi", "rdx", "r10", "rcx", "r11", "xmm7", "xmm15", "memory", "cc");
	return NULL;
}

/* n threads with values of their own, one call (each must take the return
 * path), then each checks what it finds: a frame written over another's
 * slot would show. */
static void vector_state_in(int n)
{
	static struct vec_state v[32];
	pthread_t t[32];
	bool avx = __builtin_cpu_supports("avx");
	if (!avx)
		pw_diag("no AVX: MXCSR and the x87 control word only");
	__atomic_store_n(&vec_go, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 8; k++)
			v[i].want[k] = 0x0123456789abcdefULL * (uint64_t)(k + 1) ^ (uint64_t)i << 40;
		v[i].avx = avx;
		start_thread(&t[i], vec_main, &v[i], &v[i].tid);
	}
	for (int i = 0; i < n; i++)
		wait_in_syscall(atomic_load(&v[i].tid), SYS_futex);
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NO_NEW_PRIVS, 1}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	for (int i = 0; i < n; i++) {
		pw_expect_thread(&rep, atomic_load(&v[i].tid), PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
		PW_EQ_LONG(stops_of(&rep, atomic_load(&v[i].tid)), 1);
	}
	procwide_report_release(&rep);
	__atomic_store_n(&vec_go, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &vec_go, 129 /* FUTEX_WAKE_PRIVATE */, n, NULL, NULL, 0);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		for (int k = 0; avx && k < 8; k++)
			PW_CHECK(v[i].seen[k] == v[i].want[k], "thread %d: ymm%d word %d: %#llx", i,
				 k < 4 ? 7 : 15, k % 4, (unsigned long long)v[i].seen[k]);
		PW_EQ_LONG((long)(v[i].seen[8] & 0xffff), 0x7f80);
		PW_EQ_LONG((long)(v[i].seen[9] & 0xffff), 0x0f7f);
	}
}

static void vector_state_survives_the_return_path(void) { vector_state_in(1); }
static void many_threads_on_the_return_path(void) { vector_state_in(32); }

/* A thread stopped in a call the kernel restarts depending on handlers
 * takes the return path only if a restart after any signal its mask lets
 * through is what the kernel would do, whatever happens to those signals'
 * dispositions while the call runs: the signal is the C library's own (32,
 * which glibc's and musl's sigaction refuse; set here with the raw system
 * call, never sent), and has no handler or one with SA_RESTART; and if it
 * has one, the call is not one a handler always ends (pause: -ERESTARTNOHAND).
 * A signal of the application's (SIGUSR1) open: three stops. */
static atomic_int open_read_tid, open_pause_tid, usr1_read_tid;
static int open_sig;

static void block_all_but(int sig)
{
	uint64_t m = ~(1ULL << (sig - 1));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &m, NULL, 8);
}

static void *open_read_main(void *arg)
{
	atomic_int *tid = arg;
	block_all_but(tid == &usr1_read_tid ? SIGUSR1 : open_sig);
	atomic_store(tid, pw_gettid());
	char c;
	while (read(pfd[0], &c, 1) != 1)
		;
	return NULL;
}

static void *open_pause_main(void *arg)
{
	(void)arg;
	block_all_but(open_sig);
	atomic_store(&open_pause_tid, pw_gettid());
	for (;;)
		syscall(SYS_pause); /* the system call itself */
	return NULL;
}

/* A signal's disposition through the raw system call (the C library's
 * sigaction refuses its own signals), with a restorer of our own. */
__asm__(".text\n"
	".type test_restorer, @function\n"
	"test_restorer:\n"
	"	mov $15, %eax\n" /* rt_sigreturn */
	"	syscall\n"
	"	hlt\n"
	".size test_restorer, . - test_restorer\n");
void test_restorer(void);

static void set_raw_handler(int sig, void (*handler)(int), unsigned long flags)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		uint64_t mask;
	} a = {handler, flags | 0x04000000 /* SA_RESTORER */, test_restorer, 0};
	PW_CHECK(syscall(SYS_rt_sigaction, sig, &a, NULL, 8) == 0, "rt_sigaction");
}

static void set_libc_signal(void *handler, unsigned long flags)
{
	set_raw_handler(open_sig, (void (*)(int))handler, flags);
}

static void expect_stops(const pid_t *tids, const int *want, int n)
{
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 12345}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	for (int i = 0; i < n; i++) {
		pw_expect_thread(&rep, tids[i], PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
		PW_CHECK(stops_of(&rep, tids[i]) == want[i], "thread %d of %d: %d stops, not %d", i, n,
			 stops_of(&rep, tids[i]), want[i]);
	}
	procwide_report_release(&rep);
	for (int i = 0; i < n; i++) /* back in their calls */
		wait_in_syscall(tids[i], i == 1 ? SYS_pause : SYS_read);
}

static void open_signal_decides_the_stops(void)
{
	open_sig = 32;
	PW_CHECK(pipe(pfd) == 0, "pipe");
	handle(SIGUSR1, on_usr1, SA_RESTART);
	pthread_t t[3];
	pid_t tids[3];
	tids[0] = start_thread(&t[0], open_read_main, &open_read_tid, &open_read_tid);
	tids[1] = start_thread(&t[1], open_pause_main, NULL, &open_pause_tid);
	tids[2] = start_thread(&t[2], open_read_main, &usr1_read_tid, &usr1_read_tid);
	wait_in_syscall(tids[0], SYS_read);
	wait_in_syscall(tids[1], SYS_pause);
	wait_in_syscall(tids[2], SYS_read);
	set_libc_signal((void *)on_usr1, SA_RESTART);
	expect_stops(tids, (const int[]){1, 3, 3}, 3);
	set_libc_signal((void *)on_usr1, 0); /* a handler would end the read */
	expect_stops(tids, (const int[]){3, 3, 3}, 3);
	set_libc_signal((void *)SIG_DFL, 0); /* no handler: both restart */
	expect_stops(tids, (const int[]){1, 1, 3}, 3);
	PW_CHECK(write(pfd[1], "oo", 2) == 2, "write");
	pthread_join(t[0], NULL);
	pthread_join(t[2], NULL);
	PW_EQ_LONG(atomic_load(&usr1_seen), 0);
}

/* The frame's uc_stack is one rt_sigreturn ignores: a thread's alternate
 * signal stack is left as it was. */
static char alt_stack[64 * 1024];
static stack_t alt_seen;
static atomic_int alt_tid;

static void *alt_main(void *arg)
{
	(void)arg;
	stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0}, old;
	PW_CHECK(sigaltstack(&ss, &old) == 0, "sigaltstack");
	block_everything();
	atomic_store(&alt_tid, pw_gettid());
	char c;
	PW_CHECK(read(pfd[0], &c, 1) == 1, "read");
	PW_CHECK(sigaltstack(NULL, &alt_seen) == 0, "sigaltstack");
	/* Back to the one it had: a sanitizer frees its own at exit. */
	PW_CHECK(sigaltstack(&old, NULL) == 0, "sigaltstack");
	return NULL;
}

static void sigaltstack_survives_the_return_path(void)
{
	PW_CHECK(pipe(pfd) == 0, "pipe");
	pthread_t t;
	pid_t tid = start_reader(&t, alt_main, &alt_tid);
	nnp_everywhere(tid, 1);
	PW_CHECK(write(pfd[1], "a", 1) == 1, "write");
	pthread_join(t, NULL);
	PW_CHECK(alt_seen.ss_sp == alt_stack && alt_seen.ss_size == sizeof alt_stack &&
			 alt_seen.ss_flags == 0,
		 "sigaltstack now %p size %zu flags %d", alt_seen.ss_sp, alt_seen.ss_size,
		 alt_seen.ss_flags);
}

/* A call that may install a seccomp filter keeps the stops: the filter
 * would judge what the stub runs after it. */
static void seccomp_call_keeps_the_stops(void)
{
	pid_t tid = pw_start_blocking_thread();
	wait_in_syscall(tid, -1);
	uint32_t action = 0x7fff0000U; /* SECCOMP_RET_ALLOW */
	struct procwide_call call = {.nr = SYS_seccomp, .args = {2 /* GET_ACTION_AVAIL */, 0, (long)&action}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	pw_expect_thread(&rep, tid, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
	PW_EQ_LONG(stops_of(&rep, tid), 3);
	procwide_report_release(&rep);
	/* The same thread takes the return path for any other call. */
	nnp_everywhere(tid, 1);
}

/* Run again with PROCWIDE_TEST_TAIL_SLEEP=1: the stub sleeps 300 ms after
 * storing its result, on its way back.  The next call finds the thread
 * there, lets it finish its way out through its system call stops, and
 * sends it on the return path again; the thread ends up in its read(),
 * with everything it had. */
static void thread_in_the_stub_tail_is_let_out(void)
{
	if (!getenv("PROCWIDE_TEST_TAIL_SLEEP")) {
		pw_rerun_with("thread_in_the_stub_tail_is_let_out", "PROCWIDE_TEST_TAIL_SLEEP");
		return;
	}
	PW_CHECK(pipe(pfd) == 0, "pipe");
	atomic_store(&reader_ret, -2);
	pthread_t t;
	pid_t tid = start_reader(&t, reader_main, &reader_tid);
	char name[16];
	for (int round = 0; round < 2; round++) {
		snprintf(name, sizeof name, "pw-tail%c", '0' + round);
		struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
		struct procwide_report rep = {.size = sizeof rep};
		PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
		pw_expect_thread(&rep, tid, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
		PW_EQ_LONG(stops_of(&rep, tid), 1);
		/* The first call returns once the result is stored; the second
		 * waited for the thread to sleep out its tail. */
		pw_diag("call %d: %.0f ms", round, (double)rep.elapsed_ns / 1e6);
		if (round == 1)
			PW_CHECK(rep.elapsed_ns > 150000000ull, "call 2 took %.1f ms: the thread was not in the tail",
				 (double)rep.elapsed_ns / 1e6);
		procwide_report_release(&rep);
	}
	char got[32];
	PW_CHECK(pw_task_comm(tid, got, sizeof got) && strcmp(got, "pw-tail1") == 0, "named %s", got);
	char blk[32];
	PW_CHECK(pw_task_status(tid, "SigBlk", blk, sizeof blk) && strcmp(blk, "fffffffffffbfeff") == 0,
		 "SigBlk %s", blk);
	wait_in_syscall(tid, SYS_read);
	PW_EQ_LONG(atomic_load(&reader_ret), -2);
	PW_CHECK(write(pfd[1], "t", 1) == 1, "write");
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&reader_ret), 1);
	PW_EQ_LONG(reader_byte, 't');
}

/* A thread on the return path whose result differs from the caller's kills
 * the process before it goes back to its own code, as the signal handler
 * does: gettid differs in every thread.  The thread waits on a futex word
 * the caller has already set: were it let go, its restarted wait would
 * return at once and it would write to the witness pipe. */
static int witness[2];
static int mm_word;
static atomic_int mm_tid;

static void *mismatch_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&mm_tid, pw_gettid());
	while (__atomic_load_n(&mm_word, __ATOMIC_SEQ_CST) != 2)
		syscall(SYS_futex, &mm_word, 128 /* FUTEX_WAIT_PRIVATE */, 0, NULL, NULL, 0);
	if (write(witness[1], "ran", 3) != 3)
		_exit(3);
	return NULL;
}

static void return_path_mismatch_kills_first(void)
{
	int err[2];
	PW_CHECK(pipe(witness) == 0 && pipe(err) == 0, "pipe");
	pid_t p = fork();
	PW_CHECK(p >= 0, "fork");
	if (p == 0) {
		dup2(err[1], 2);
		pthread_t t;
		pid_t tid = start_thread(&t, mismatch_main, NULL, &mm_tid);
		wait_in_syscall(tid, SYS_futex);
		__atomic_store_n(&mm_word, 2, __ATOMIC_SEQ_CST); /* no wake */
		struct procwide_call call = {.nr = SYS_gettid};
		struct procwide_opts o = {.size = sizeof o, .flags = PROCWIDE_ATOMIC};
		procwide_run(&call, &o, NULL);
		_exit(0); /* must not be reached */
	}
	close(err[1]);
	close(witness[1]);
	pw_expect_mismatch_kill(p, err[0]);
	char buf[8];
	PW_EQ_LONG(read(witness[0], buf, sizeof buf), 0); /* it never went on */
}

/* A thread that blocks some signals and not others, reached through ptrace
 * in a system call: the helper blocks every signal while it runs the call,
 * and the thread finds its own mask again. */
static atomic_int partly_tid;
static atomic_bool partly_stop;
static int partly_pipe[2];

static void *partly_main(void *arg)
{
	(void)arg;
	sigset_t some;
	sigemptyset(&some);
	sigaddset(&some, SIGUSR1);
	sigaddset(&some, SIGWINCH);
	pthread_sigmask(SIG_SETMASK, &some, NULL);
	atomic_store(&partly_tid, pw_gettid());
	char c;
	while (!atomic_load(&partly_stop))
		if (read(partly_pipe[0], &c, 1) < 0 && errno != EINTR)
			break;
	return NULL;
}

static void partly_masked_thread_keeps_its_mask(void)
{
	PW_CHECK(pipe(partly_pipe) == 0, "pipe");
	pthread_t t;
	pid_t tid = start_reader(&t, partly_main, &partly_tid);
	char blk_before[32], blk[32];
	PW_CHECK(pw_task_status(tid, "SigBlk", blk_before, sizeof blk_before), "blk");
	PW_EQ_LONG(strtoull(blk_before, NULL, 16), (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGWINCH - 1)));
	for (int round = 0; round < 5; round++) {
		struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 7000 + round}};
		struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_PTRACE_ALL};
		struct procwide_report rep = {.size = sizeof rep};
		PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
		pw_expect_thread(&rep, tid, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
		procwide_report_release(&rep);
		/* Back in its read: on the return path the call returns once
		 * the thread has stored its result, and rt_sigreturn puts its
		 * mask back a moment later. */
		wait_in_syscall(tid, SYS_read);
		PW_CHECK(pw_task_status(tid, "SigBlk", blk, sizeof blk), "blk");
		PW_CHECK(strcmp(blk, blk_before) == 0, "mask %s became %s", blk_before, blk);
	}
	atomic_store(&partly_stop, true);
	PW_CHECK(write(partly_pipe[1], "x", 1) == 1, "write");
	pthread_join(t, NULL);
}

/* ---- a signal that comes while the thread is held ----------------------- */


static int intr_pipe[2];
static atomic_int intr_tid;
static atomic_long intr_ret = -99, intr_errno;
static bool intr_ppoll; /* wait in ppoll under a temporary mask instead */
static int intr_sig = SIGUSR1; /* the signal that comes while it is held */
static uint64_t intr_mask_after; /* ppoll: the thread's mask once it returned */

static void *interrupted_main(void *arg)
{
	(void)arg;
	if (intr_ppoll) {
		/* Every signal blocked but during the wait: the mask
		 * PTRACE_GETSIGMASK reports is the full one ppoll puts back. */
		block_everything();
		atomic_store(&intr_tid, pw_gettid());
		struct pollfd p = {intr_pipe[0], POLLIN, 0};
		sigset_t none;
		sigemptyset(&none);
		long r = ppoll(&p, 1, NULL, &none);
		int e = errno;
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &intr_mask_after, 8);
		errno = e;
		atomic_store(&intr_errno, r < 0 ? errno : 0);
		atomic_store(&intr_ret, r);
		return NULL;
	}
	/* That signal alone open: what decides its stops is its handler,
	 * not those a sanitizer gives its own. */
	uint64_t all_but_one = ~(1ULL << (intr_sig - 1));
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all_but_one, NULL, 8);
	atomic_store(&intr_tid, pw_gettid());
	char c;
	long r = read(intr_pipe[0], &c, 1);
	atomic_store(&intr_errno, r < 0 ? errno : 0);
	atomic_store(&intr_ret, r);
	return NULL;
}

/* A thread that spends its time in vfork(), whose child exits only when a
 * byte comes on slow_pipe.  The kernel lets a thread stop only once that
 * wait is over (a killable sleep): while procwide waits for it, the threads
 * it stopped with it stay held, until the watcher has signalled one of
 * them and confirmed it, then lets the child go. */
static atomic_bool slow_stop;
static atomic_int slow_tid;
static int slow_pipe[2];

static void *slow_main(void *arg)
{
	(void)arg;
	atomic_store(&slow_tid, pw_gettid());
	while (!atomic_load(&slow_stop)) {
		pid_t c = vfork();
		if (c == 0) {
			char b;
			_exit(read(slow_pipe[0], &b, 1) == 1 ? 0 : 1);
		}
		int st = 0;
		/* Let go by the watcher: no more vfork, or the next call
		 * would wait for a child nobody lets go. */
		if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			break;
	}
	return NULL;
}

/* Whether thread tid of pid is in a tracing stop with intr_sig pending for
 * it (SigPnd) or for the process (ShdPnd, process_wide). */
static bool held_with_signal(pid_t pid, pid_t tid, bool process_wide)
{
	char pnd[32];
	return pw_proc_task_state(pid, tid) == 't' &&
	       pw_proc_task_status(pid, tid, process_wide ? "ShdPnd" : "SigPnd", pnd, sizeof pnd) &&
	       ((strtoull(pnd, NULL, 16) >> (intr_sig - 1)) & 1);
}

/* A watcher process: sends SIGUSR1 once it sees thread tid of pid in a
 * tracing stop ('t') while the slow thread is in vfork ('D'), so that
 * procwide cannot let it go yet; to the thread, or to the process
 * (process_wide).  Then it checks that the thread is still held with the
 * signal pending, lets the vfork child go, and exits 0; 3 if the check
 * failed, 1 if it never saw the thread held. */
static pid_t start_stop_watcher(pid_t pid, pid_t tid, bool process_wide)
{
	pid_t w = fork();
	PW_CHECK(w >= 0, "fork");
	if (w != 0)
		return w;
	pid_t slow = atomic_load(&slow_tid);
	for (long i = 0; i < 20000000; i++) {
		char st = pw_proc_task_state(pid, tid);
		if (st == 0)
			_exit(2);
		if (st != 't' || pw_proc_task_state(pid, slow) != 'D')
			continue;
		if (process_wide)
			kill(pid, intr_sig);
		else
			syscall(SYS_tgkill, pid, tid, intr_sig);
		bool held = held_with_signal(pid, tid, process_wide);
		_exit(write(slow_pipe[1], "g", 1) == 1 && held ? 0 : 3);
	}
	_exit(1);
}

/* A thread waits in read() while procwide holds it, and SIGUSR1 comes: the
 * read must end as the kernel ends it for that signal once the thread is
 * let go.  Its handler without SA_RESTART: read returns EINTR (the wake-up
 * must not be hidden by procwide's restart of the read); with SA_RESTART:
 * the read goes on and returns the byte written later.  process_wide:
 * kill() to the process, whose other thread blocks SIGUSR1. */
static void signal_while_held(int sa_flags, bool process_wide)
{
	if (intr_sig == SIGUSR1)
		handle(SIGUSR1, on_usr1, sa_flags);
	else /* the C library's: only the raw call sets it */
		set_raw_handler(intr_sig, on_usr1, (unsigned long)sa_flags);
	PW_CHECK(pipe(intr_pipe) == 0, "pipe");
	pthread_t t;
	pid_t tid = start_thread(&t, interrupted_main, NULL, &intr_tid);
	wait_in_syscall(tid, intr_ppoll ? SYS_ppoll : SYS_read);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	PW_CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0, "block"); /* the reader alone */
	PW_CHECK(pipe(slow_pipe) == 0, "pipe");
	pthread_t slow;
	start_thread(&slow, slow_main, NULL, &slow_tid); /* blocks USR1 too */
	pid_t w = start_stop_watcher(getpid(), tid, process_wide);
	int st = 0, round = 0;
	for (; round < 1000 && waitpid(w, &st, WNOHANG) == 0; round++) {
		struct procwide_call call = {.nr = SYS_setresuid, .args = {-1, -1, -1}};
		struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_PTRACE_ALL};
		struct procwide_report rep = {.size = sizeof rep};
		int seen_before = atomic_load(&usr1_seen);
		PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
		/* Every call that began before the handler ran (the thread was
		 * in its wait, or held while the signal came); after it the
		 * thread may have returned.  In ppoll the thread blocks
		 * everything but for the wait: the return path; in read it
		 * lets SIGUSR1 through, whose disposition the application may
		 * change while the call runs: three stops, where the kernel
		 * decides. */
		if (!seen_before)
			PW_EQ_LONG(stops_of(&rep, tid),
				   intr_ppoll || (intr_sig != SIGUSR1 && (sa_flags & SA_RESTART)) ? 1 : 3);
		procwide_report_release(&rep);
	}
	if (waitpid(w, &st, WNOHANG) == 0) {
		kill(w, SIGKILL);
		waitpid(w, &st, 0);
		PW_CHECK(false, "the watcher never saw the thread held in 1000 calls");
	}
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "watcher status %#x (3: the thread was not held with the signal pending)", st);
	pw_diag("the watcher saw the thread held during call %d", round);
	atomic_store(&slow_stop, true);
	pthread_join(slow, NULL); /* it ended with the child the watcher let go */
	for (int i = 0; i < 2000 && atomic_load(&usr1_seen) == 0; i++)
		usleep(1000);
	PW_EQ_LONG(atomic_load(&usr1_seen), 1);
	/* The byte ends a read that restarted; one that was interrupted has
	 * returned already, and leaves it in the pipe. */
	PW_CHECK(write(intr_pipe[1], "x", 1) == 1, "write");
	pthread_join(t, NULL);
	long r = atomic_load(&intr_ret);
	if (intr_ppoll) /* ppoll's temporary mask gone, the thread's back */
		PW_CHECK(intr_mask_after == ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))),
			 "mask after ppoll %#llx", (unsigned long long)intr_mask_after);
	if (sa_flags & SA_RESTART) {
		PW_EQ_LONG(r, 1);
	} else {
		PW_CHECK(r == -1 && atomic_load(&intr_errno) == EINTR,
			 "read returned %ld (errno %ld), not EINTR: the signal's wake-up was lost",
			 r, atomic_load(&intr_errno));
	}
}

static void signal_while_held_interrupts_the_call(void) { signal_while_held(0, false); }
/* The same with the C library's signal 32, whose handler no other thread
 * can change meanwhile: with SA_RESTART the thread takes the return path,
 * the signal comes while it is held, and the read restarts after the
 * handler as the kernel restarts it; without, three stops and EINTR. */
static void libc_signal_while_held_restarts(void)
{
	intr_sig = 32;
	signal_while_held(SA_RESTART, false);
}
static void libc_signal_while_held_interrupts(void)
{
	intr_sig = 32;
	signal_while_held(0, false);
}
/* The same in ppoll, with every signal blocked but during the wait: the
 * signal must not run its handler before the call is restarted (nor on the
 * return path's frame), and ppoll returns EINTR. */
static void signal_while_held_interrupts_ppoll(void)
{
	intr_ppoll = true;
	signal_while_held(0, false);
}
static void signal_while_held_to_the_process_interrupts(void) { signal_while_held(0, true); }
static void signal_while_held_to_the_process_restarts(void)
{
	signal_while_held(SA_RESTART, true);
}

/* ---- a thread stopped inside a restartable sequence ---------------------- */

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#include <sys/rseq.h>
#define HAVE_GLIBC_RSEQ 1

/* long rseq_spin(const void *cs, long rseq_offset, int *aborts, int *stop):
 * arms the restartable sequence cs in the thread's rseq area (at the
 * thread pointer + rseq_offset: glibc's) and spins inside it.  The kernel
 * aborts the sequence on any preemption or signal: the abort handler
 * counts, and arms it again, or returns 0 once *stop is set.  Inside the
 * sequence, rseq_cs read as 0 means the kernel dropped the sequence without
 * aborting it (the thread was let go in the middle of it): returns 1. */
__asm__(".text\n"
	".type rseq_spin, @function\n"
	"rseq_spin:\n"
	"	mov %fs:0, %rax\n"
	"	add %rsi, %rax\n"
	"rseq_arm:\n"
	"	mov %rdi, 8(%rax)\n"
	"rseq_start:\n"
	"	cmpq $0, 8(%rax)\n"
	"	je rseq_broken\n"
	"	jmp rseq_start\n"
	"rseq_post:\n"
	"	.long 0x53053053\n" /* RSEQ_SIG, x86 */
	"rseq_abort:\n"
	"	lock incl (%rdx)\n"
	"	cmpl $0, (%rcx)\n"
	"	je rseq_arm\n"
	"	movq $0, 8(%rax)\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	"rseq_broken:\n"
	"	mov $1, %eax\n"
	"	ret\n"
	".size rseq_spin, . - rseq_spin\n"
	".data\n"
	".balign 32\n"
	"rseq_desc:\n"
	"	.long 0, 0\n"
	"	.quad rseq_start, rseq_post - rseq_start, rseq_abort\n"
	".previous\n");
long rseq_spin(const void *cs, long rseq_offset, atomic_int *aborts, atomic_int *stop);
extern const char rseq_desc[];
__asm__(".globl rseq_desc\n.hidden rseq_desc\n");

static atomic_int rseq_aborts, rseq_stop, rseq_tid;
static atomic_long rseq_ret = -99;

static void *rseq_main(void *arg)
{
	if (arg) /* every signal blocked: the return path */
		block_everything();
	atomic_store(&rseq_tid, pw_gettid());
	atomic_store(&rseq_ret, rseq_spin(rseq_desc, (long)__rseq_offset, &rseq_aborts, &rseq_stop));
	return NULL;
}

static void on_usr2(int sig) { (void)sig; }
#endif

/* Reached through ptrace while spinning inside its sequence, the thread
 * must resume at the abort handler, as after any preemption: let go from
 * its stops, or by its frame on the return path (`blocking`). */
static void rseq_resumes_at_abort(bool blocking)
{
#ifndef HAVE_GLIBC_RSEQ
	pw_skip("needs glibc 2.35 or later, which registers every thread's rseq area");
#else
	if (__rseq_size == 0)
		pw_skip("glibc registered no rseq area (glibc.pthread.rseq=0, or the kernel refused)");
	handle(SIGUSR2, on_usr2, 0);
	pthread_t t;
	pid_t tid = start_thread(&t, rseq_main, blocking ? (void *)1 : NULL, &rseq_tid);
	/* The thread spins inside its sequence but for two instructions (the
	 * arming and the abort handler): stopped there, it resumes at the
	 * abort handler, which counts.  Ten calls: at least one must have
	 * found it inside. */
	int aborted = 0;
	for (int round = 0; round < 10; round++) {
		/* A call that may install a seccomp filter keeps the stops:
		 * the three-stop path for the thread that blocks nothing. */
		uint32_t action = 0x7fff0000U; /* SECCOMP_RET_ALLOW */
		struct procwide_call call = blocking
			? (struct procwide_call){.nr = SYS_setresuid, .args = {-1, -1, -1}}
			: (struct procwide_call){.nr = SYS_seccomp, .args = {2, 0, (long)&action}};
		struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_PTRACE_ALL};
		struct procwide_report rep = {.size = sizeof rep};
		int before = atomic_load(&rseq_aborts);
		PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
		pw_expect_thread(&rep, tid, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
		PW_EQ_LONG(stops_of(&rep, tid), blocking ? 1 : 3);
		procwide_report_release(&rep);
		/* Let it run again: a sequence dropped without an abort shows
		 * at its next comparison. */
		for (int i = 0; i < 200 && atomic_load(&rseq_aborts) == before &&
				atomic_load(&rseq_ret) == -99; i++)
			usleep(1000);
		aborted += atomic_load(&rseq_aborts) != before;
		PW_CHECK(atomic_load(&rseq_ret) == -99,
			 "call %d: the thread found its sequence dropped without an abort", round);
	}
	PW_CHECK(aborted > 0, "no call found the thread inside its sequence");
	/* A signal, or another call, aborts the sequence: the handler sees
	 * stop and returns. */
	atomic_store(&rseq_stop, 1);
	for (int i = 0; i < 2000 && atomic_load(&rseq_ret) == -99; i++) {
		if (blocking)
			procwide_syscall(SYS_setresuid, -1, -1, -1, 0, 0, 0);
		else
			pthread_kill(t, SIGUSR2);
		usleep(1000);
	}
	PW_EQ_LONG(atomic_load(&rseq_ret), 0);
	pthread_join(t, NULL);
	pw_diag("%d aborts", atomic_load(&rseq_aborts));
#endif
}

static void rseq_thread_resumes_at_its_abort_handler(void) { rseq_resumes_at_abort(false); }
static void rseq_thread_on_the_return_path(void) { rseq_resumes_at_abort(true); }

/* ---- nothing else changes: signal mask, dispositions, pending signals --- */

static void on_trap(int sig) { (void)sig; }

static atomic_int masked_tid;
static atomic_bool masked_stop;

static void *masked_main(void *arg)
{
	(void)arg;
	block_everything();
	atomic_store(&masked_tid, pw_gettid());
	while (!atomic_load(&masked_stop))
		usleep(1000);
	return NULL;
}

static void thread_state_is_untouched(void)
{
	/* The thread's mask, the process's SIGTRAP handler (a trap-based
	 * injection would make the kernel reset it: force_sig on a blocked
	 * signal), and a signal pending for the thread with its siginfo. */
	handle(SIGTRAP, on_trap, 0);
	pthread_t t;
	pid_t tid = start_thread(&t, masked_main, NULL, &masked_tid);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = SIGUSR1;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_value.sival_int = 4242;
	PW_CHECK(syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, SIGUSR1, &si) == 0, "queue");
	char blk_before[32], pnd_before[32];
	PW_CHECK(pw_task_status(tid, "SigBlk", blk_before, sizeof blk_before), "blk");
	PW_CHECK(pw_task_status(tid, "SigPnd", pnd_before, sizeof pnd_before), "pnd");
	nnp_everywhere(tid, 0); /* in usleep (3 stops) or between two (1) */
	/* Asleep again: it has run past its release (a signal the release
	 * sent it, such as a stray SIGTRAP, is pending by now). */
	wait_in_syscall(tid, -1);
	char blk[32], pnd[32];
	PW_CHECK(pw_task_status(tid, "SigBlk", blk, sizeof blk), "blk");
	PW_CHECK(pw_task_status(tid, "SigPnd", pnd, sizeof pnd), "pnd");
	PW_CHECK(strcmp(blk, blk_before) == 0, "mask %s became %s", blk_before, blk);
	/* Pending as before, but for procwide's own signal (SIGRTMAX here),
	 * sent before the thread was found not to answer: it stays queued,
	 * and procwide's handler turns it away once the thread unblocks. */
	unsigned long long own = 1ULL << (SIGRTMAX - 1);
	PW_EQ_LONG(strtoull(pnd, NULL, 16) & ~own, strtoull(pnd_before, NULL, 16));
	struct sigaction now;
	PW_CHECK(sigaction(SIGTRAP, NULL, &now) == 0 && now.sa_handler == on_trap,
		 "SIGTRAP handler was reset");
	atomic_store(&masked_stop, true);
	pthread_join(t, NULL);
}

static long sigq_used(void)
{
	char v[64];
	PW_CHECK(pw_task_status(pw_gettid(), "SigQ", v, sizeof v), "SigQ");
	return atol(v); /* "queued/limit", per user */
}

static void no_signal_piles_up_in_a_blocking_thread(void)
{
	/* A thread that blocks the signal keeps what was queued for it; a
	 * signal for every call would exhaust the user's RLIMIT_SIGPENDING.
	 * Once a thread needed ptrace, the next calls send it none. */
	pthread_t t;
	start_thread(&t, masked_main, NULL, &masked_tid);
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 1111, 0, 0, 0, 0), 0);
	long before = sigq_used();
	for (int i = 0; i < 30; i++)
		PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 2000 + i, 0, 0, 0, 0), 0);
	long after = sigq_used();
	pw_diag("queued signals of this user: %ld before 30 calls, %ld after", before, after);
	PW_CHECK(after <= before + 1, "signals pile up: %ld -> %ld", before, after);
	atomic_store(&masked_stop, true);
	pthread_join(t, NULL);
}

/* ---- no signal at all: PROCWIDE_PTRACE_ALL ----------------------------- */

static atomic_int sleepers_eintr;
static atomic_bool sleepers_stop;

static void *sleeper_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&sleepers_stop)) {
		struct timespec ts = {0, 3000000};
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			atomic_fetch_add(&sleepers_eintr, 1);
	}
	return NULL;
}

static void ptrace_all_delivers_no_signal(void)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		PW_CHECK(pthread_create(&t[i], NULL, sleeper_main, NULL) == 0, "create");
	usleep(10000);
	for (int round = 0; round < 20; round++) {
		struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 9000 + round}};
		struct procwide_opts opts = {.size = sizeof opts, .flags = PROCWIDE_PTRACE_ALL};
		struct procwide_report rep = {.size = sizeof rep};
		PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
		PW_EQ_LONG(rep.signal, 0);
		PW_EQ_LONG(rep.nthreads, 5);
		for (size_t i = 0; i < rep.nthreads; i++)
			PW_EQ_LONG(rep.threads[i].path, rep.threads[i].tid == pw_gettid()
								? PROCWIDE_PATH_SELF
								: PROCWIDE_PATH_PTRACE);
		procwide_report_release(&rep);
	}
	atomic_store(&sleepers_stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	PW_EQ_LONG(atomic_load(&sleepers_eintr), 0);
}

/* ---- when ptrace cannot be used: an error, nothing changed -------------- */

static atomic_int blocked_tid;

static pid_t start_blocked(void)
{
	atomic_store(&blocked_tid, pw_start_blocking_thread());
	return atomic_load(&blocked_tid);
}

/* Lines of /proc/self/maps, or entries of /proc/self/fd. */
static size_t count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	PW_CHECK(f != NULL, "open maps");
	size_t n = 0;
	for (int c; (c = fgetc(f)) != EOF;)
		n += c == '\n';
	fclose(f);
	return n;
}

static size_t count_fds(void)
{
	size_t n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* The helper shares the process's memory (CLONE_VM) on a stack and table
 * procwide maps for it: each call must unmap them, close its socket and
 * reap the helper, on the parked path and with PROCWIDE_PTRACE_ALL. */
static void helper_leaves_nothing_behind(void)
{
	start_blocked();
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, 7000}};
	unsigned flags[] = {0, PROCWIDE_PTRACE_ALL};
	size_t maps = 0, fds = 0;
	for (int round = 0; round < 12; round++) {
		struct procwide_opts opts = {.size = sizeof opts, .flags = flags[round % 2]};
		struct procwide_report rep = {.size = sizeof rep};
		PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
		pw_expect_thread(&rep, atomic_load(&blocked_tid), PROCWIDE_PATH_PTRACE,
				 PROCWIDE_THREAD_OK);
		procwide_report_release(&rep);
		if (round == 1) { /* after one call of each kind */
			maps = count_maps();
			fds = count_fds();
		} else if (round > 1) {
			PW_EQ_LONG(count_maps(), maps);
			PW_EQ_LONG(count_fds(), fds);
		}
		siginfo_t si;
		memset(&si, 0, sizeof si);
		errno = 0;
		/* No child at all, running or not reaped. */
		PW_CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == -1 &&
				 errno == ECHILD,
			 "a child is left after call %d: pid %d", round, (int)si.si_pid);
	}
}

/* Whether the process has a child, running or not reaped (the helper);
 * async-signal-safe. */
static bool has_child(void)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0;
}

/* Sets the timer slack in every thread, the blocking one through ptrace. */
static void slack_everywhere(long want)
{
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_TIMERSLACK, want}};
	/* 10 s, not the default 1 s: caller_handlers_wait_for_the_helper
	 * runs these calls under a 100 us timer that interrupts the caller,
	 * and 1 in 10 to 40 runs here did not reach the thread in 1 s (a
	 * clean refusal, nothing changed). */
	struct procwide_opts opts = {.size = sizeof opts, .deadline_ms = 10000};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, &opts, &rep) == 0, "%s", rep.message);
	pw_expect_thread(&rep, atomic_load(&blocked_tid), PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
	procwide_report_release(&rep);
}

/* A thread that answers signals and watches its timer slack: once it has
 * the new value (it has run the call and gone back to its own code), it
 * checks whether the process has a child, the helper alive or unreaped. */
static atomic_long slack_want, slack_round_seen;
static atomic_int slack_helper_seen;
static atomic_bool slack_stop;

static void *slack_watch_main(void *arg)
{
	(void)arg;
	long seen = -1;
	while (!atomic_load(&slack_stop)) {
		long want = atomic_load(&slack_want);
		if (want == seen || prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != want)
			continue;
		if (has_child())
			atomic_fetch_add(&slack_helper_seen, 1);
		seen = want;
		atomic_store(&slack_round_seen, want);
	}
	return NULL;
}

/* The helper keeps the privileges of before the call and shares the
 * process's memory: no thread that has run the call may run its own code
 * while the helper is alive.  The parked threads go on only once it has
 * been reaped. */
static void helper_gone_before_threads_go_on(void)
{
	start_blocked();
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, slack_watch_main, NULL) == 0, "create");
	for (long round = 0; round < 20; round++) {
		long want = 60000 + round;
		atomic_store(&slack_want, want);
		slack_everywhere(want);
		for (int i = 0; i < 2000 && atomic_load(&slack_round_seen) != want; i++)
			usleep(1000);
		PW_EQ_LONG(atomic_load(&slack_round_seen), want);
	}
	atomic_store(&slack_stop, true);
	pthread_join(t, NULL);
	PW_EQ_LONG(atomic_load(&slack_helper_seen), 0);
}

/* The calling thread too: once it has run the call, no handler of the
 * application runs in it while the helper is alive.  A 100 us timer sends
 * SIGALRM to the only thread that takes it, the caller; the handler looks
 * at its timer slack and for a child process. */
static atomic_long caller_want;
static atomic_int caller_ticks, caller_saw_helper;

static void on_caller_tick(int sig)
{
	(void)sig;
	int saved = errno;
	atomic_fetch_add(&caller_ticks, 1);
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == atomic_load(&caller_want) && has_child())
		atomic_fetch_add(&caller_saw_helper, 1);
	errno = saved;
}

static void caller_handlers_wait_for_the_helper(void)
{
	start_blocked(); /* blocks SIGALRM with everything else */
	handle(SIGALRM, on_caller_tick, SA_RESTART);
	struct itimerval it = {{0, 100}, {0, 100}};
	PW_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
	for (long round = 0; round < 30; round++) {
		long want = 80000 + round;
		atomic_store(&caller_want, want);
		slack_everywhere(want);
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	PW_CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "setitimer");
	PW_CHECK(atomic_load(&caller_ticks) > 0, "the timer never fired");
	PW_EQ_LONG(atomic_load(&caller_saw_helper), 0);
}

/* A policy's session keeps its helper while threads that already have the
 * policy's first steps run their own code: that helper must neither share
 * the process's memory nor let them at its own.  A watcher thread, once it
 * has no_new_privs, looks for the process's children (PPid) and asks the
 * kernel whether one shares its memory (kcmp KCMP_VM, which needs
 * CAP_SYS_PTRACE on a helper that is not dumpable) and, without
 * CAP_SYS_PTRACE, whether it may open the helper's memory (it must not:
 * the helper is not dumpable). */
static atomic_int session_seen, session_shared, session_kcmp_errno, session_mem_opened;
static atomic_bool session_stop;

/* The parent of process pid, or -1. */
static pid_t ppid_of(pid_t pid)
{
	char v[16];
	return pw_proc_task_status(pid, pid, "PPid", v, sizeof v) ? (pid_t)atoi(v) : -1;
}

static void look_at_helper(pid_t me, pid_t pid, bool may_ptrace)
{
	if (may_ptrace) {
		long k = syscall(SYS_kcmp, me, pid, 1 /* KCMP_VM */, 0, 0);
		if (k < 0 && errno != ESRCH)
			atomic_store(&session_kcmp_errno, errno);
		if (k < 0)
			return;
		atomic_fetch_add(&session_shared, k == 0);
	} else {
		/* Judged once it has made itself not dumpable, which makes
		 * the kernel give the files of its /proc directory to root:
		 * from its birth until then (its first system calls, before
		 * any step of the policy) it is open to the process's own uid
		 * (procwide(3)). */
		char path[64];
		struct stat st;
		snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
		if (stat(path, &st) != 0 || st.st_uid != 0)
			return;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			return; /* gone meanwhile */
		if (fd >= 0) {
			atomic_fetch_add(&session_mem_opened, 1);
			close(fd);
		}
	}
	atomic_fetch_add(&session_seen, 1);
}

static void *session_watch_main(void *arg)
{
	bool may_ptrace = arg != NULL;
	pid_t me = getpid();
	while (!atomic_load(&session_stop)) {
		if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
			continue;
		DIR *d = opendir("/proc");
		if (!d)
			return NULL;
		for (struct dirent *e; (e = readdir(d)) != NULL;) {
			pid_t pid = (pid_t)atoi(e->d_name);
			if (pid > 0 && pid != me && ppid_of(pid) == me)
				look_at_helper(me, pid, may_ptrace);
		}
		closedir(d);
	}
	return NULL;
}

static void session_helper_is_a_copy(void)
{
	bool may_ptrace = pw_have_cap(CAP_SYS_PTRACE);
	start_blocked();
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, session_watch_main, may_ptrace ? (void *)1 : NULL) == 0,
		 "create");
	struct procwide_policy p = {.size = sizeof p, .apply = PROCWIDE_POLICY_NO_NEW_PRIVS};
	for (int round = 0; round < 200 && atomic_load(&session_seen) < 3; round++) {
		struct procwide_sec_report rep = {.size = sizeof rep};
		int step = -1;
		PW_CHECK(procwide_apply_policy(&p, NULL, &rep, &step) == 0, "%s", rep.message);
		p.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_AMBIENT_CLEAR;
	}
	atomic_store(&session_stop, true);
	pthread_join(t, NULL);
	if (atomic_load(&session_kcmp_errno) == ENOSYS)
		pw_skip("kcmp(2) is not in this kernel (CONFIG_KCMP)");
	PW_EQ_LONG(atomic_load(&session_kcmp_errno), 0);
	PW_CHECK(atomic_load(&session_seen) > 0, "the watcher never saw the session's helper");
	pw_diag("the watcher saw the helper %d times (%s)", atomic_load(&session_seen),
		may_ptrace ? "kcmp" : "its memory, refused");
	PW_EQ_LONG(atomic_load(&session_shared), 0);
	PW_EQ_LONG(atomic_load(&session_mem_opened), 0);
}

static char new_name[16] = "pw-changed";

static void expect_refusal(int want_errno, const char *want_text)
{
	pid_t tids[16];
	size_t n = pw_list_tids(tids, 16);
	char before[16][32];
	for (size_t i = 0; i < n; i++)
		PW_CHECK(pw_task_comm(tids[i], before[i], sizeof before[i]), "comm");
	errno = 0;
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)new_name, 0, 0, 0, 0), -1);
	int e = errno;
	const char *m = procwide_last_error();
	pw_diag("%s", m);
	PW_EQ_LONG(e, want_errno);
	char tid[32];
	snprintf(tid, sizeof tid, "thread %d ", (int)atomic_load(&blocked_tid));
	PW_CHECK(strstr(m, tid) && strstr(m, want_text) && strstr(m, "; nothing was changed"),
		 "message: %s", m);
	/* The report names the thread and how it failed. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)new_name}};
	struct procwide_opts opts = {.size = sizeof opts, .deadline_ms = 200};
	struct procwide_report rep = {.size = sizeof rep};
	PW_EQ_LONG(procwide_run(&call, &opts, &rep), -want_errno);
	PW_EQ_LONG(rep.outcome, PROCWIDE_OUTCOME_UNREACHABLE);
	PW_EQ_LONG(rep.nunreachable, 1);
	for (size_t i = 0; i < rep.nthreads; i++)
		if (rep.threads[i].tid == atomic_load(&blocked_tid))
			PW_EQ_LONG(rep.threads[i].status, PROCWIDE_THREAD_NO_PTRACE);
	procwide_report_release(&rep);
	for (size_t i = 0; i < n; i++) {
		char now[32];
		PW_CHECK(pw_task_comm(tids[i], now, sizeof now) && strcmp(now, before[i]) == 0,
			 "thread %d changed", tids[i]);
	}
}

static void not_dumpable_without_cap_sys_ptrace(void)
{
	start_blocked();
	PW_CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable");
	if (pw_have_cap(CAP_SYS_PTRACE)) {
		/* Root may trace a non-dumpable process: it works. */
		PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)new_name, 0, 0, 0, 0), 0);
		return;
	}
	expect_refusal(EPERM, "not dumpable");
	PW_EQ_LONG(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0); /* never lowered or raised */
}

static void already_traced_by_a_debugger(void)
{
	pid_t dbg = pw_start_tracer(start_blocked());
	PW_CHECK(dbg > 0, "the debugger could not attach");
	expect_refusal(EPERM, "traced by pid");
	kill(dbg, SIGKILL);
	waitpid(dbg, NULL, 0);
}

/* A thread that blocks every signal and runs 32-bit code for ever (a far
 * return to the kernel's 32-bit user code segment, 0x23, onto `jmp .`, as
 * Wine's WoW64 switches): the library's 64-bit code cannot run there. */
static void *compat_main(void *arg)
{
	block_everything();
	atomic_store(&blocked_tid, pw_gettid());
	__asm__ volatile("pushq $0x23\n\tpushq %0\n\tlretq" : : "r"(arg) : "memory");
	return NULL;
}

static void thread_running_32bit_code(void)
{
	unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	PW_CHECK(code != MAP_FAILED, "mmap MAP_32BIT");
	/* In 32-bit code: movl $1, %ss:flag (an absolute address below
	 * 4 GiB, MAP_32BIT; through ss, since a 64-bit task's ds is the null
	 * selector, which compat mode does not accept); jmp . */
	volatile uint32_t *flag = (volatile uint32_t *)(void *)(code + 64); /* aligned: page + 64 */
	uint32_t at = (uint32_t)(uintptr_t)flag, one = 1;
	code[0] = 0x36;
	code[1] = 0xc7;
	code[2] = 0x05;
	memcpy(code + 3, &at, 4);
	memcpy(code + 7, &one, 4);
	code[11] = 0xeb;
	code[12] = 0xfe;
	pthread_t t;
	start_thread(&t, compat_main, code, &blocked_tid);
	while (*flag == 0) /* it runs 32-bit code now */
		sched_yield();
	expect_refusal(EINVAL, "32-bit code");
	/* The thread never returns: the case's process ends with it. */
}

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif

/* no_new_privs, then a Landlock domain that forbids removing directories,
 * each run in every thread with procwide_syscall. */
static void landlock_in_every_thread(void)
{
	struct { uint64_t fs, net, scoped; } attr = {1ull << 4 /* REMOVE_DIR */, 0, 0};
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr.fs, 0);
	if (fd < 0)
		pw_skip("Landlock unavailable: %s", strerror(errno));
	PW_EQ_LONG(procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), 0);
	PW_EQ_LONG(procwide_syscall(SYS_landlock_restrict_self, fd, 0, 0, 0, 0, 0), 0);
}

/* landlock_restrict_self run in each thread (Linux before 7.0) gives each
 * a domain of its own, and Landlock forbids tracing across them: the
 * blocked thread is reached for that call (the helper is forked before it
 * changes anything), not for the next, which says why. */
static void landlock_in_each_thread_forbids_ptrace(void)
{
	start_blocked();
	landlock_in_every_thread();
	expect_refusal(EPERM, "its own Landlock domain");
	/* A forked child's threads all descend from its one thread, whose
	 * domain the helper shares: it may trace them again. */
	pid_t child = fork();
	PW_CHECK(child >= 0, "fork");
	if (child == 0) {
		start_blocked();
		_exit(procwide_syscall(SYS_prctl, PR_SET_NAME, (long)new_name, 0, 0, 0, 0) == 0 ? 0 : 1);
	}
	int st;
	PW_CHECK(waitpid(child, &st, 0) == child, "waitpid");
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* The caller alone enters a Landlock domain that scopes signals (ABI 6):
 * the helper, in it too, may not even check with tgkill(tid, 0) that a
 * thread outside belongs to the process.  That is a refusal, not a thread
 * gone: the call fails with EPERM, naming the thread, nothing changed. */
static void landlock_signal_scope_is_a_refusal(void)
{
	start_blocked();
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */) < 6)
		pw_skip("Landlock ABI 6 (signal scoping) unavailable");
	struct { uint64_t fs, net, scoped; } attr = {1ull << 4 /* REMOVE_DIR */, 0, 1ull << 1 /* SIGNAL */};
	long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	PW_CHECK(fd >= 0, "ruleset: %s", strerror(errno));
	PW_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
	PW_CHECK(syscall(SYS_landlock_restrict_self, fd, 0) == 0, "landlock: %s", strerror(errno));
	expect_refusal(EPERM, "EPERM");
}

/* In a process with one thread, landlock_restrict_self gives the domain to
 * every thread made afterwards: the helper, in that domain too, traces
 * them. */
static void landlock_before_threads_keeps_ptrace(void)
{
	landlock_in_every_thread();
	pid_t blocked = start_blocked();
	/* Nothing forbids the helper: the call may take the direct path. */
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)new_name}};
	struct procwide_report rep = {.size = sizeof rep};
	PW_CHECK(procwide_run(&call, NULL, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.mode, PROCWIDE_MODE_DIRECT);
	/* The direct path lets threads go while its helper stays: no return
	 * path there. */
	pw_expect_thread(&rep, blocked, PROCWIDE_PATH_PTRACE, PROCWIDE_THREAD_OK);
	PW_EQ_LONG(stops_of(&rep, blocked), 3);
	procwide_report_release(&rep);
	char got[32];
	PW_CHECK(pw_task_comm(blocked, got, sizeof got) && strcmp(got, new_name) == 0,
		 "blocked thread named %s", got);
}

/* Run again with PROCWIDE_TEST_HELPER_DIES=1: the helper dies after
 * answering the first seize of a batch of several.  Two threads block
 * every signal for 300 ms and are handed to the helper together; it stops the first and dies, and the kernel lets that one go.
 * Both go back to their signals, take them once they unblock, and the call
 * succeeds: on the direct path, which killed the process when it still
 * counted the released thread as stopped; and on the parked one (where a
 * new attempt starts from zero: a guard, not a reproduction). */
static void helper_dying_mid_batch(int flags)
{
	char name[16] = "pw-dying";
	struct procwide_call call = {.nr = SYS_prctl, .args = {PR_SET_NAME, (long)name}};
	struct procwide_opts o = {.size = sizeof o, .flags = (unsigned)flags};
	struct procwide_report rep = {.size = sizeof rep};
	/* A first call with signals alone: the next may take the direct path. */
	PW_EQ_LONG(procwide_run(&call, &o, &rep), 0);
	procwide_report_release(&rep);
	pid_t a = pw_start_blocking_thread_for(300), b = pw_start_blocking_thread_for(300);
	while (pw_task_state(a) != 'S' || pw_task_state(b) != 'S')
		usleep(1000);
	snprintf(name, sizeof name, "pw-died");
	PW_CHECK(procwide_run(&call, &o, &rep) == 0, "%s", rep.message);
	PW_EQ_LONG(rep.mode, flags ? PROCWIDE_MODE_PARKED : PROCWIDE_MODE_DIRECT);
	/* By signal: the helper died before running the call in either. */
	for (size_t i = 0; i < rep.nthreads; i++)
		if (rep.threads[i].tid == a || rep.threads[i].tid == b)
			PW_EQ_LONG(rep.threads[i].path, PROCWIDE_PATH_SIGNAL);
	procwide_report_release(&rep);
	char got[32];
	PW_CHECK(pw_task_comm(a, got, sizeof got) && strcmp(got, name) == 0, "%d named %s", a, got);
	PW_CHECK(pw_task_comm(b, got, sizeof got) && strcmp(got, name) == 0, "%d named %s", b, got);
}

static void helper_dying_mid_batch_direct(void)
{
	if (getenv("PROCWIDE_TEST_HELPER_DIES"))
		helper_dying_mid_batch(0);
	else
		pw_rerun_with("helper_dying_mid_batch_direct", "PROCWIDE_TEST_HELPER_DIES");
}

static void helper_dying_mid_batch_parked(void)
{
	if (getenv("PROCWIDE_TEST_HELPER_DIES"))
		helper_dying_mid_batch(PROCWIDE_ATOMIC);
	else
		pw_rerun_with("helper_dying_mid_batch_parked", "PROCWIDE_TEST_HELPER_DIES");
}

struct bpf_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct bpf_prog {
	unsigned short len;
	struct bpf_insn *filter;
};

static void seccomp_forbids_ptrace(void)
{
	start_blocked();
	/* Allow everything but ptrace, which fails with EPERM; installed in
	 * every thread with TSYNC (it needs no_new_privs or CAP_SYS_ADMIN). */
	struct bpf_insn f[] = {
		{0x20, 0, 0, offsetof(struct {int nr; uint32_t arch;}, nr)}, /* ld nr */
		{0x15, 0, 1, SYS_ptrace},				     /* jeq */
		{0x06, 0, 0, 0x00050000u | EPERM},			     /* ERRNO */
		{0x06, 0, 0, 0x7fff0000u},				     /* ALLOW */
	};
	struct bpf_prog prog = {4, f};
	PW_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "nnp");
	PW_CHECK(syscall(SYS_seccomp, 1 /* SET_MODE_FILTER */, 1 /* TSYNC */, &prog) == 0,
		 "seccomp: %s", strerror(errno));
	expect_refusal(EPERM, "PTRACE_SEIZE");
}

int main(int argc, char **argv)
{
	static const struct pw_case cases[] = {
		PW_CASE(runtime_timer_thread),
		PW_CASE(read_on_pipe_resumes),
		PW_CASE(nanosleep_completes),
		PW_CASE(epoll_wait_completes),
		PW_CASE(poll_completes),
		PW_CASE(futex_wait_completes),
		PW_CASE(int80_nanosleep_completes),
		PW_CASE(int80_read_on_the_return_path),
		PW_CASE(registers_survive_injection),
		PW_CASE(vector_state_survives_the_return_path),
		PW_CASE(many_threads_on_the_return_path),
		PW_CASE(sigaltstack_survives_the_return_path),
		PW_CASE(seccomp_call_keeps_the_stops),
		PW_CASE(open_signal_decides_the_stops),
		PW_CASE(thread_in_the_stub_tail_is_let_out),
		PW_CASE(return_path_mismatch_kills_first),
		PW_CASE(partly_masked_thread_keeps_its_mask),
		PW_CASE(signal_while_held_interrupts_the_call),
		PW_CASE(libc_signal_while_held_restarts),
		PW_CASE(libc_signal_while_held_interrupts),
		PW_CASE(signal_while_held_interrupts_ppoll),
		PW_CASE(signal_while_held_to_the_process_interrupts),
		PW_CASE(signal_while_held_to_the_process_restarts),
		PW_CASE(rseq_thread_resumes_at_its_abort_handler),
		PW_CASE(rseq_thread_on_the_return_path),
		PW_CASE(ptrace_all_delivers_no_signal),
		PW_CASE(thread_state_is_untouched),
		PW_CASE(no_signal_piles_up_in_a_blocking_thread),
		PW_CASE(not_dumpable_without_cap_sys_ptrace),
		PW_CASE(already_traced_by_a_debugger),
		PW_CASE(thread_running_32bit_code),
		PW_CASE(seccomp_forbids_ptrace),
		PW_CASE(landlock_in_each_thread_forbids_ptrace),
		PW_CASE(landlock_before_threads_keeps_ptrace),
		PW_CASE(landlock_signal_scope_is_a_refusal),
		PW_CASE(helper_dying_mid_batch_direct),
		PW_CASE(helper_dying_mid_batch_parked),
		PW_CASE(helper_leaves_nothing_behind),
		PW_CASE(helper_gone_before_threads_go_on),
		PW_CASE(caller_handlers_wait_for_the_helper),
		PW_CASE(session_helper_is_a_copy),
	};
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
