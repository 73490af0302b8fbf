/* SPDX-License-Identifier: MIT */
/*
 * bench_broadcast: the wall time of one all-threads system call, three ways,
 * in the same process with the same threads:
 *
 *   glibc     setresuid(-1, -1, -1): glibc's own set*id broadcast
 *             (__nptl_setxid: signal 33 to every thread it knows)
 *   libpsx    psx_syscall3(SYS_setresuid, -1, -1, -1) (libcap's libpsx,
 *             which knows the threads made through its pthread_create wrap)
 *   procwide  procwide_syscall(SYS_setresuid, -1, -1, -1, 0, 0, 0)
 *
 * setresuid(-1, -1, -1) changes nothing and is allowed to every user, so the
 * benchmark runs as root or not and leaves the process as it was.
 *
 * For each N the process has N idle worker threads (blocked in FUTEX_WAIT,
 * 64 KiB stacks) plus the main thread; then N busy workers (spinning).  Each
 * round calls the three methods once, in an order that rotates from round to
 * round, so drift and cache effects fall on all three alike.  Medians and
 * 90th percentiles of the rounds are printed, with the ratios of the medians.
 *
 * Memory: before the timed rounds at each N, every worker takes one no-op
 * signal (so that its stack holds a signal frame already, as any
 * signal-based method needs), then each method makes its first call at this
 * N with the peak RSS (VmHWM, reset through /proc/self/clear_refs) recorded
 * around it.  The growth of the peak over the RSS before the call is the
 * memory the call needed; divided by the threads it is the cost per thread.
 * After the timed rounds the RSS is read again: growth there is memory the
 * calls kept.
 *
 * Run it by hand (see bench/README.md); it is not a test.
 */
#include "procwide.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <malloc.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/psx_syscall.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PSX_VERSION
#define PSX_VERSION "unknown"
#endif

enum { M_GLIBC, M_PSX, M_PROCWIDE, NMETHODS };
static const char *const method_name[NMETHODS] = {"glibc", "libpsx", "procwide"};

/* ---- options ---------------------------------------------------------------- */

#define MAX_NS 16
static struct {
	size_t ns[MAX_NS];	/* idle thread counts, ascending */
	size_t nns;
	unsigned reps;		/* 0: a default that depends on N */
	size_t busy;		/* busy threads for the busy row; 0: no busy row */
	unsigned busy_reps;
	size_t stack_kib;
	unsigned deadline_ms;	/* 0: procwide_syscall(); else procwide_run() */
	bool atomic;		/* -A: procwide_run() with PROCWIDE_ATOMIC */
	unsigned warmup;
	bool memory;
	bool busy_only;		/* -X: internal, the busy row in a fresh process */
} opt = {
	.ns = {1, 10, 100, 1000, 10000},
	.nns = 5,
	.busy = 1000,
	.busy_reps = 3,
	.stack_kib = 64,
	.warmup = 2,
	.memory = true,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_broadcast [-n N,N,...] [-r REPS] [-b BUSY] [-B REPS] [-s KIB]\n"
		"                       [-d MS] [-A] [-w WARMUP] [-M]\n"
		"  -n LIST   idle worker counts (default 1,10,100,1000,10000)\n"
		"  -r REPS   rounds per idle N (default: 400, 400, 200, 50, 9 by size)\n"
		"  -b BUSY   spinning workers for the busy row (default 1000; 0: none)\n"
		"  -B REPS   rounds for the busy row (default 3)\n"
		"  -s KIB    worker stack size (default 64)\n"
		"  -d MS     time procwide_run() with this deadline instead of\n"
		"            procwide_syscall() (whose deadline is %u ms)\n"
		"  -A        time procwide_run() with PROCWIDE_ATOMIC: the parked path\n"
		"            (procwide_syscall() takes the direct path after its first call)\n"
		"  -w N      untimed calls of each method before the rounds (default 2)\n"
		"  -M        skip the memory measurement\n",
		PROCWIDE_DEFAULT_DEADLINE_MS);
}

static unsigned long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "bench_broadcast: bad %s '%s'\n", what, s);
		usage(stderr);
		exit(2);
	}
	return v;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

static void parse_args(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "n:r:b:B:s:d:w:AMXh")) != -1) {
		switch (c) {
		case 'n': {
			char *list = strdup(optarg), *save = NULL;
			if (!list)
				exit(1);
			opt.nns = 0;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (opt.nns == MAX_NS) {
					fprintf(stderr, "bench_broadcast: at most %d values for -n\n", MAX_NS);
					exit(2);
				}
				opt.ns[opt.nns++] = parse_num(t, "thread count");
			}
			free(list);
			qsort(opt.ns, opt.nns, sizeof opt.ns[0], cmp_size);
			break;
		}
		case 'r': opt.reps = (unsigned)parse_num(optarg, "repetitions"); break;
		case 'b': opt.busy = parse_num(optarg, "busy thread count"); break;
		case 'B': opt.busy_reps = (unsigned)parse_num(optarg, "busy repetitions"); break;
		case 's': opt.stack_kib = parse_num(optarg, "stack size"); break;
		case 'd': opt.deadline_ms = (unsigned)parse_num(optarg, "deadline"); break;
		case 'A': opt.atomic = true; break;
		case 'w': opt.warmup = (unsigned)parse_num(optarg, "warm-up count"); break;
		case 'M': opt.memory = false; break;
		case 'X': opt.busy_only = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (opt.busy_reps == 0)
		opt.busy_reps = 1;
}

static unsigned default_reps(size_t n)
{
	if (opt.reps)
		return opt.reps;
	if (n <= 10)
		return 400;
	if (n <= 100)
		return 200;
	if (n <= 1000)
		return 50;
	return 9;
}

/* ---- heap accounting ---------------------------------------------------------- */
/*
 * The malloc family is replaced here by thin counters over glibc's own
 * allocator (__libc_malloc and friends, exported for this purpose), so that
 * the heap a call needs is measured to the byte, including what
 * libprocwide.so and libpsx allocate: the executable's definitions interpose
 * on theirs.  RSS figures are coarser (page granularity, and the kernel's
 * per-CPU RSS counters are approximate).
 */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static atomic_long heap_cur, heap_peak;

static void heap_add(void *p)
{
	if (!p)
		return;
	long cur = atomic_fetch_add(&heap_cur, (long)malloc_usable_size(p)) +
		   (long)malloc_usable_size(p);
	long peak = atomic_load(&heap_peak);
	while (cur > peak && !atomic_compare_exchange_weak(&heap_peak, &peak, cur))
		;
}

static void heap_sub(void *p)
{
	if (p)
		atomic_fetch_sub(&heap_cur, (long)malloc_usable_size(p));
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	heap_add(p);
	return p;
}

void *calloc(size_t n, size_t m)
{
	void *p = __libc_calloc(n, m);
	heap_add(p);
	return p;
}

void *realloc(void *old, size_t n)
{
	size_t old_sz = old ? malloc_usable_size(old) : 0;
	void *p = __libc_realloc(old, n);
	if (p || n == 0) {
		atomic_fetch_sub(&heap_cur, (long)old_sz);
		heap_add(p);
	}
	return p;
}

void free(void *p)
{
	heap_sub(p);
	__libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	heap_add(p);
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);
	heap_add(p);
	return p;
}

void *memalign(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);
	heap_add(p);
	return p;
}

/* Starts a measurement window; returns the heap in use at its start. */
static long heap_window(void)
{
	long cur = atomic_load(&heap_cur);
	atomic_store(&heap_peak, cur);
	return cur;
}

/* ---- time, /proc -------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A "Name:   value kB" (or plain number) field of /proc/self/status, -1 if absent. */
static long status_kib(const char *field)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	size_t fl = strlen(field);
	for (char *l = buf; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, field, fl) == 0 && l[fl] == ':')
			return strtol(l + fl + 1, NULL, 10);
	return -1;
}

/* Resets VmHWM to the current RSS (Linux 4.0); false if not allowed. */
static bool reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

static void cpu_model(char *out, size_t outsz)
{
	char buf[8192];
	snprintf(out, outsz, "unknown CPU");
	int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strstr(buf, "model name");
	if (!p || !(p = strchr(p, ':')))
		return;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	snprintf(out, outsz, "%.*s", (int)strcspn(p, "\n"), p);
}

/* The file a symbol was loaded from, resolved through symlinks. */
static void object_path(const void *sym, char *out, size_t outsz)
{
	Dl_info info;
	snprintf(out, outsz, "?");
	if (dladdr(sym, &info) == 0 || !info.dli_fname)
		return;
	char *real = realpath(info.dli_fname, NULL);
	snprintf(out, outsz, "%s", real ? real : info.dli_fname);
	free(real);
}

static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) : 0;
}

/* ---- worker threads ---------------------------------------------------------- */

struct worker {
	pthread_t th;
	_Atomic pid_t tid;
};

static struct worker *workers;
static size_t nworkers;	/* started and not yet joined */
static atomic_int idle_stop;	/* futex word the idle workers wait on */
static atomic_int busy_gate;	/* futex word: busy workers wait until 1 */
static atomic_int busy_stop;
static atomic_long noop_signals;

static long futex(atomic_int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void *idle_main(void *arg)
{
	struct worker *w = arg;
	atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
	/* A signal may end the wait with EINTR or restart it: loop either way. */
	while (atomic_load(&idle_stop) == 0)
		futex(&idle_stop, FUTEX_WAIT_PRIVATE, 0);
	return NULL;
}

static void *busy_main(void *arg)
{
	struct worker *w = arg;
	atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
	/* Start spinning only once all busy workers exist: 1000 spinning
	 * threads on a few cores would starve the thread creating them. */
	while (atomic_load(&busy_gate) == 0)
		futex(&busy_gate, FUTEX_WAIT_PRIVATE, 0);
	unsigned long x = 0;
	while (atomic_load_explicit(&busy_stop, memory_order_relaxed) == 0)
		x++;
	return (void *)(uintptr_t)x;
}

/* Grows the worker set to `target`; returns how many exist. */
static size_t start_workers(size_t target, void *(*fn)(void *))
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	size_t ss = opt.stack_kib * 1024;
	if (ss < (size_t)PTHREAD_STACK_MIN)
		ss = (size_t)PTHREAD_STACK_MIN;
	int e = pthread_attr_setstacksize(&attr, ss);
	if (e)
		fprintf(stderr, "bench_broadcast: stack size %zu: %s\n", ss, strerror(e));
	while (nworkers < target) {
		struct worker *w = &workers[nworkers];
		atomic_store(&w->tid, 0);
		/* pthread_create is wrapped by libpsx (-Wl,--wrap=pthread_create),
		 * which is how libpsx learns about the thread. */
		e = pthread_create(&w->th, &attr, fn, w);
		if (e) {
			fprintf(stderr, "bench_broadcast: pthread_create #%zu: %s (RLIMIT_NPROC, "
				"threads-max, vm.max_map_count or memory); going on with %zu\n",
				nworkers + 1, strerror(e), nworkers);
			break;
		}
		nworkers++;
	}
	pthread_attr_destroy(&attr);
	for (size_t i = 0; i < nworkers; i++)
		while (atomic_load(&workers[i].tid) == 0)
			sched_yield();
	return nworkers;
}

static void join_workers(void)
{
	atomic_store(&idle_stop, 1);
	futex(&idle_stop, FUTEX_WAKE_PRIVATE, INT_MAX);
	atomic_store(&busy_stop, 1);
	atomic_store(&busy_gate, 1);
	futex(&busy_gate, FUTEX_WAKE_PRIVATE, INT_MAX);
	for (size_t i = 0; i < nworkers; i++)
		pthread_join(workers[i].th, NULL);
	nworkers = 0;
	atomic_store(&idle_stop, 0);
	atomic_store(&busy_stop, 0);
	atomic_store(&busy_gate, 0);
}

static void noop_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&noop_signals, 1);
}

/* One no-op signal to every worker, so that each stack has held a signal
 * frame before memory is measured (any signal-based method pays for that
 * page once per thread; it is not the cost of one method). */
static void prefault_signal_frames(void)
{
	long want = atomic_load(&noop_signals) + (long)nworkers;
	for (size_t i = 0; i < nworkers; i++)
		syscall(SYS_tgkill, getpid(), atomic_load(&workers[i].tid), SIGUSR1);
	uint64_t end = now_ns() + 10000000000u;
	while (atomic_load(&noop_signals) < want && now_ns() < end)
		usleep(1000);
}

/* ---- the three methods ------------------------------------------------------ */

struct stats {
	uint64_t *ns;
	unsigned n;
	unsigned fails;
	long heap_peak;		/* bytes: the most heap one call needed */
	int last_errno;
	char last_error[256];
};

static long call_method(int m, int *err, char *msg, size_t msgsz)
{
	long r;
	errno = 0;
	msg[0] = '\0';
	switch (m) {
	case M_GLIBC:
		r = setresuid((uid_t)-1, (uid_t)-1, (uid_t)-1);
		break;
	case M_PSX:
		r = psx_syscall3(SYS_setresuid, -1, -1, -1);
		break;
	default:
		if (opt.deadline_ms || opt.atomic) {
			struct procwide_call call = {SYS_setresuid, {-1, -1, -1, 0, 0, 0}};
			struct procwide_opts o = {.size = sizeof o, .deadline_ms = opt.deadline_ms,
						  .flags = opt.atomic ? PROCWIDE_ATOMIC : 0};
			int rc = procwide_run(&call, &o, NULL);
			if (rc < 0)
				errno = -rc;
			r = rc < 0 ? -1 : 0;
		} else {
			r = procwide_syscall(SYS_setresuid, -1, -1, -1, 0, 0, 0);
		}
		if (r != 0)
			snprintf(msg, msgsz, "%s", procwide_last_error());
		break;
	}
	*err = errno;
	return r;
}

static uint64_t timed_call(int m, struct stats *st)
{
	int err;
	char msg[256];
	long heap0 = heap_window();
	uint64_t t0 = now_ns();
	long r = call_method(m, &err, msg, sizeof msg);
	uint64_t dt = now_ns() - t0;
	long hp = atomic_load(&heap_peak) - heap0;
	if (hp > st->heap_peak)
		st->heap_peak = hp;
	if (r != 0) {
		st->fails++;
		st->last_errno = err;
		snprintf(st->last_error, sizeof st->last_error, "%s", msg);
	}
	return dt;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double pct_us(const uint64_t *v, unsigned n, unsigned p)
{
	if (n == 0)
		return 0;
	unsigned k = (n * p + 99) / 100;
	if (k == 0)
		k = 1;
	return (double)v[k - 1] / 1000.0;
}

/* ---- memory ------------------------------------------------------------------- */

struct mem {
	long rss_before;		/* KiB, before the first calls */
	long peak[NMETHODS];		/* KiB, VmHWM growth over one first call */
	long heap_first[NMETHODS];	/* bytes, heap peak of that first call */
	long heap_held;			/* bytes, heap procwide's first call kept */
	long rss_kept;			/* KiB, RSS growth over the timed rounds */
	long heap_kept;			/* bytes, heap growth over the timed rounds */
	bool valid;			/* VmHWM could be reset */
};

static void measure_first_calls(struct mem *mm)
{
	memset(mm, 0, sizeof *mm);
	prefault_signal_frames();
	mm->rss_before = status_kib("VmRSS");
	mm->valid = true;
	for (int m = NMETHODS - 1; m >= 0; m--) { /* procwide first: coldest */
		if (!reset_peak_rss()) {
			mm->valid = false;
			return;
		}
		long before = status_kib("VmRSS");
		long heap0 = heap_window();
		int err;
		char msg[256];
		call_method(m, &err, msg, sizeof msg);
		mm->heap_first[m] = atomic_load(&heap_peak) - heap0;
		if (m == M_PROCWIDE) {
			/* procwide keeps tables that grow with the threads:
			 * its held heap so far, over every row. */
			static long held_total;
			held_total += atomic_load(&heap_cur) - heap0;
			mm->heap_held = held_total;
		}
		mm->peak[m] = status_kib("VmHWM") - before;
	}
}

/* ---- one row --------------------------------------------------------------------- */

struct row {
	const char *kind;
	size_t n;
	size_t tasks;
	unsigned reps;
	struct stats st[NMETHODS];
	struct mem mem;
	uint64_t total_ns;
};

static void run_row(struct row *row)
{
	unsigned reps = row->reps;
	for (int m = 0; m < NMETHODS; m++) {
		row->st[m].ns = calloc(reps ? reps : 1, sizeof(uint64_t));
		if (!row->st[m].ns) {
			perror("calloc");
			exit(1);
		}
	}
	uint64_t t0 = now_ns();
	row->tasks = (size_t)status_kib("Threads");
	if (opt.memory && strcmp(row->kind, "idle") == 0)
		measure_first_calls(&row->mem);
	struct stats scratch = {0};
	for (unsigned w = 0; w < opt.warmup; w++)
		for (int m = 0; m < NMETHODS; m++)
			timed_call(m, &scratch);
	if (scratch.fails)
		fprintf(stderr, "bench_broadcast: %s N=%zu: %u warm-up calls failed (errno %d %s) %s\n",
			row->kind, row->n, scratch.fails, scratch.last_errno,
			strerror(scratch.last_errno), scratch.last_error);
	long rss0 = status_kib("VmRSS");
	long heap0 = atomic_load(&heap_cur);
	for (unsigned r = 0; r < reps; r++) {
		for (int k = 0; k < NMETHODS; k++) {
			int m = (int)((r + (unsigned)k) % NMETHODS);
			row->st[m].ns[row->st[m].n++] = timed_call(m, &row->st[m]);
		}
	}
	row->mem.rss_kept = status_kib("VmRSS") - rss0;
	row->mem.heap_kept = atomic_load(&heap_cur) - heap0;
	for (int m = 0; m < NMETHODS; m++)
		qsort(row->st[m].ns, row->st[m].n, sizeof(uint64_t), cmp_u64);
	row->total_ns = now_ns() - t0;
}

static void print_row(const struct row *row)
{
	double med[NMETHODS];
	printf("%-5s %6zu %6zu %5u", row->kind, row->n, row->tasks, row->reps);
	for (int m = 0; m < NMETHODS; m++) {
		med[m] = pct_us(row->st[m].ns, row->st[m].n, 50);
		printf("  %10.1f %10.1f", med[m], pct_us(row->st[m].ns, row->st[m].n, 90));
	}
	printf("  %7.2f %7.2f", med[M_GLIBC] > 0 ? med[M_PROCWIDE] / med[M_GLIBC] : 0,
	       med[M_PSX] > 0 ? med[M_PROCWIDE] / med[M_PSX] : 0);
	unsigned fails = 0;
	for (int m = 0; m < NMETHODS; m++)
		fails += row->st[m].fails;
	if (fails)
		printf("  FAILED: glibc %u, libpsx %u, procwide %u", row->st[M_GLIBC].fails,
		       row->st[M_PSX].fails, row->st[M_PROCWIDE].fails);
	printf("\n");
	for (int m = 0; m < NMETHODS; m++)
		if (row->st[m].fails)
			printf("      %s: last failure errno %d (%s)%s%s\n", method_name[m],
			       row->st[m].last_errno, strerror(row->st[m].last_errno),
			       row->st[m].last_error[0] ? ": " : "", row->st[m].last_error);
	fflush(stdout);
}

static void print_mem_header(void)
{
	printf("\nmemory, idle rows.  first = the first call of each method at this N, after a\n"
	       "no-op signal reached every worker (procwide's call first); rss = VmHWM growth\n"
	       "over the RSS before the call, KiB; heap = malloc'ed bytes at the call's peak;\n"
	       "held = heap procwide holds after its first call (its thread tables, grown\n"
	       "over the rows so far), and that per thread of the process; steady = the\n"
	       "largest heap peak of one call in the timed rounds; kept = growth over the\n"
	       "timed rounds (leaks show here).\n");
	printf("%6s %6s %8s | %21s | %29s | %16s | %26s | %15s\n", "", "", "", "first: rss KiB",
	       "first: heap bytes", "procwide held", "steady: heap bytes", "kept");
	printf("%6s %6s %8s | %6s %6s %7s | %9s %9s %9s | %9s %6s | %8s %8s %8s | %8s %6s\n",
	       "N", "tasks", "rss KiB", "glibc", "libpsx", "procw", "glibc", "libpsx", "procw",
	       "bytes", "B/task", "glibc", "libpsx", "procw", "heap B", "rss KiB");
}

static void print_mem(const struct row *row)
{
	const struct mem *mm = &row->mem;
	printf("%6zu %6zu %8ld |", row->n, row->tasks, mm->rss_before);
	if (mm->valid)
		printf(" %6ld %6ld %7ld |", mm->peak[M_GLIBC], mm->peak[M_PSX], mm->peak[M_PROCWIDE]);
	else
		printf(" %21s |", "(no clear_refs)");
	printf(" %9ld %9ld %9ld |", mm->heap_first[M_GLIBC], mm->heap_first[M_PSX],
	       mm->heap_first[M_PROCWIDE]);
	printf(" %9ld %6.1f |", mm->heap_held,
	       (double)mm->heap_held / (double)(row->tasks ? row->tasks : 1));
	printf(" %8ld %8ld %8ld |", row->st[M_GLIBC].heap_peak, row->st[M_PSX].heap_peak,
	       row->st[M_PROCWIDE].heap_peak);
	printf(" %8ld %6ld\n", mm->heap_kept, mm->rss_kept);
}

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = noop_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	size_t maxn = opt.busy;
	for (size_t i = 0; i < opt.nns; i++)
		if (opt.ns[i] > maxn)
			maxn = opt.ns[i];
	workers = calloc(maxn ? maxn : 1, sizeof *workers);
	if (!workers) {
		perror("calloc");
		return 1;
	}

	if (opt.busy_only) {
		struct row busy_row;
		memset(&busy_row, 0, sizeof busy_row);
		busy_row.kind = "busy";
		busy_row.n = start_workers(opt.busy, busy_main);
		atomic_store(&busy_gate, 1);
		futex(&busy_gate, FUTEX_WAKE_PRIVATE, INT_MAX);
		busy_row.reps = opt.busy_reps;
		run_row(&busy_row);
		print_row(&busy_row);
		join_workers();
		return 0;
	}

	struct utsname u;
	uname(&u);
	char cpu[256];
	cpu_model(cpu, sizeof cpu);
	struct rlimit nproc_l, sigp_l;
	getrlimit(RLIMIT_NPROC, &nproc_l);
	getrlimit(RLIMIT_SIGPENDING, &sigp_l);
	printf("bench_broadcast: one all-threads setresuid(-1,-1,-1), wall time in microseconds\n");
	printf("machine:  %ld CPUs online (nproc), %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu);
	printf("kernel:   %s %s %s\n", u.sysname, u.release, u.machine);
	printf("versions: glibc %s, libpsx %s, procwide %d.%d\n", gnu_get_libc_version(),
	       PSX_VERSION, PROCWIDE_VERSION_MAJOR, PROCWIDE_VERSION_MINOR);
	char pw_path[PATH_MAX], psx_path[PATH_MAX];
	object_path((const void *)procwide_syscall, pw_path, sizeof pw_path);
	object_path((const void *)psx_syscall3, psx_path, sizeof psx_path);
	printf("objects:  %s, %s\n", pw_path, psx_path);
	if (dir_len(pw_path) == dir_len(psx_path) &&
	    strncmp(pw_path, psx_path, dir_len(pw_path)) == 0)
		printf("WARNING:  libpsx was loaded from procwide's build folder: that is procwide's\n"
		       "          drop-in libpsx, not libcap's, and the libpsx column times procwide\n");
	printf("process:  uid %d euid %d, worker stack %zu KiB, RLIMIT_NPROC %lld, "
	       "RLIMIT_SIGPENDING %lld\n",
	       (int)getuid(), (int)geteuid(), opt.stack_kib,
	       nproc_l.rlim_cur == RLIM_INFINITY ? -1LL : (long long)nproc_l.rlim_cur,
	       sigp_l.rlim_cur == RLIM_INFINITY ? -1LL : (long long)sigp_l.rlim_cur);
	printf("procwide: %s%s; rounds rotate the order of the methods; %u warm-up calls each\n",
	       opt.deadline_ms ? "procwide_run() with deadline_ms set by -d" :
	       opt.atomic	 ? "procwide_run()" :
				   "procwide_syscall() (default deadline)",
	       opt.atomic ? " with PROCWIDE_ATOMIC (the parked path)" : "", opt.warmup);
	if (opt.deadline_ms)
		printf("          deadline %u ms\n", opt.deadline_ms);
	printf("\n");
	printf("%-5s %6s %6s %5s  %10s %10s  %10s %10s  %10s %10s  %7s %7s\n", "kind", "N",
	       "tasks", "reps", "glibc med", "p90", "libpsx med", "p90", "procw med", "p90",
	       "pw/glib", "pw/psx");

	struct row rows[MAX_NS + 1];
	size_t nrows = 0;
	for (size_t i = 0; i < opt.nns; i++) {
		struct row *row = &rows[nrows];
		memset(row, 0, sizeof *row);
		row->kind = "idle";
		row->n = start_workers(opt.ns[i], idle_main);
		row->reps = default_reps(row->n);
		run_row(row);
		print_row(row);
		nrows++;
		if (row->n < opt.ns[i])
			break;
	}
	join_workers();

	/* The busy row runs in a fresh process (fork and exec of this program
	 * with -X): under CPU overload procwide may time out, and past its
	 * point of no return it kills the whole process (fail closed), and the
	 * idle results must survive that.  Not a plain fork: libpsx 2.66
	 * hangs in its pthread_create wrapper in a forked child of a process
	 * that has had threads. */
	double busy_s = 0;
	if (opt.busy) {
		fflush(stdout);
		uint64_t b0 = now_ns();
		char a_b[32], a_bb[32], a_s[32], a_d[32], a_w[32];
		snprintf(a_b, sizeof a_b, "%zu", opt.busy);
		snprintf(a_bb, sizeof a_bb, "%u", opt.busy_reps);
		snprintf(a_s, sizeof a_s, "%zu", opt.stack_kib);
		snprintf(a_d, sizeof a_d, "%u", opt.deadline_ms);
		snprintf(a_w, sizeof a_w, "%u", opt.warmup ? 1u : 0u);
		char *args[] = {argv[0], "-X", "-b", a_b, "-B", a_bb, "-s", a_s,
				"-d", a_d, "-w", a_w, opt.atomic ? "-A" : NULL, NULL};
		pid_t pid = fork();
		if (pid < 0) {
			perror("bench_broadcast: fork");
		} else if (pid == 0) {
			/* The real path rather than /proc/self/exe, which would
			 * name the threads "exe" in procwide's messages. */
			char self[PATH_MAX];
			ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
			if (len > 0) {
				self[len] = '\0';
				execv(self, args);
			}
			execv("/proc/self/exe", args);
			perror("bench_broadcast: exec /proc/self/exe");
			_exit(127);
		} else {
			int st = 0;
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			if (WIFSIGNALED(st))
				printf("busy  %6zu: the benchmark process was killed by signal %d (%s) "
				       "during the busy row; see procwide's message on stderr\n",
				       opt.busy, WTERMSIG(st), strsignal(WTERMSIG(st)));
			else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				printf("busy  %6zu: the busy row exited with status %d\n", opt.busy,
				       WEXITSTATUS(st));
		}
		busy_s = (double)(now_ns() - b0) / 1e9;
	}

	if (opt.memory && nrows) {
		print_mem_header();
		for (size_t i = 0; i < nrows; i++)
			print_mem(&rows[i]);
	}
	uint64_t total = 0;
	for (size_t i = 0; i < nrows; i++)
		total += rows[i].total_ns;
	printf("\nidle rows measured for %.1f s", (double)total / 1e9);
	if (opt.busy)
		printf(", busy row (its own process) %.1f s", busy_s);
	printf("; peak RSS of the process %ld KiB\n", status_kib("VmHWM"));
	for (size_t i = 0; i < nrows; i++)
		for (int m = 0; m < NMETHODS; m++)
			free(rows[i].st[m].ns);
	free(workers);
	return 0;
}
