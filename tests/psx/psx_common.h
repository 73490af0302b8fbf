/* Helpers shared by the libpsx tests (tests/psx/): which library is under
 * test, every thread's /proc state, raw clone() threads, threads that block
 * every signal, and scenarios run in a child process that may hang. */
#ifndef PW_PSX_COMMON_H
#define PW_PSX_COMMON_H

#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PSXT_UNUSED __attribute__((unused))
#define PSXT_MAX_TIDS 512

enum psxt_impl { PSXT_DEBIAN, PSXT_PROCWIDE };

/* The library under test, from PSX_IMPL (set by tests/psx/run.sh). */
PSXT_UNUSED static enum psxt_impl psxt_impl(void)
{
	const char *e = getenv("PSX_IMPL");
	if (e && strcmp(e, "procwide") == 0)
		return PSXT_PROCWIDE;
	if (e && strcmp(e, "debian") == 0)
		return PSXT_DEBIAN;
	pw_skip("PSX_IMPL is not set: run through tests/psx/run.sh debian|procwide BUILD");
}

/* The file the dynamic linker loaded `sym' from, resolved. */
PSXT_UNUSED static bool psxt_loaded_from(const char *sym, char *out, size_t n)
{
	void *p = dlsym(RTLD_DEFAULT, sym);
	Dl_info info;
	if (!p || !dladdr(p, &info) || !info.dli_fname)
		return false;
	char real[PATH_MAX];
	if (!realpath(info.dli_fname, real))
		return false;
	snprintf(out, n, "%s", real);
	return true;
}

/* Raw system calls for code that must not touch errno: a raw clone()
 * thread shares its creator's TLS, errno included. */
#if defined(__x86_64__)
#define PSXT_HAVE_RAW 1
PSXT_UNUSED static long psxt_raw4(long nr, long a1, long a2, long a3, long a4)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}
#else
#define PSXT_HAVE_RAW 0
PSXT_UNUSED static long psxt_raw4(long nr, long a1, long a2, long a3, long a4)
{
	return syscall(nr, a1, a2, a3, a4);
}
#endif

#ifndef FUTEX_WAIT_PRIVATE
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#endif

/* ---- /proc checks ------------------------------------------------------- */

/* Every thread of this process shows `field' == want; on failure names the
 * first thread that does not (skipping `except', 0 for none). */
PSXT_UNUSED static bool psxt_every_thread(const char *field, const char *want,
					  pid_t except, pid_t *bad, char *got,
					  size_t gotsz)
{
	pid_t tids[PSXT_MAX_TIDS];
	size_t n = pw_list_tids(tids, PSXT_MAX_TIDS);
	for (size_t i = 0; i < n && i < PSXT_MAX_TIDS; i++) {
		if (tids[i] == except)
			continue;
		if (!pw_task_status(tids[i], field, got, gotsz))
			continue; /* exited */
		if (strcmp(got, want) != 0) {
			*bad = tids[i];
			return false;
		}
	}
	return true;
}

#define PSXT_CHECK_EVERY_THREAD(field, want)                                   \
	do {                                                                   \
		pid_t bad_ = 0;                                                \
		char got_[128];                                                \
		PW_CHECK(psxt_every_thread(field, want, 0, &bad_, got_,       \
					   sizeof got_),                       \
			 "thread %d has %s: %s, want %s", (int)bad_, field,    \
			 got_, want);                                          \
	} while (0)

/* A field of /proc/PID/task/TID/status for another process. */
PSXT_UNUSED static bool psxt_proc_status(pid_t pid, pid_t tid,
					 const char *field, char *out,
					 size_t outsz)
{
	char path[96], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return pw_status_field(buf, field, out, outsz);
}

/* ---- raw clone() threads ------------------------------------------------- */

/* A thread made with clone(), not pthread_create(): no C library thread
 * descriptor, never registered with libpsx, sharing its creator's TLS.
 * It waits on a futex with raw system calls until told to stop. */
struct psxt_raw_thread {
	_Atomic uint32_t stop;
	pid_t tid;
	void *stack;
};

#define PSXT_RAW_STACK (256 * 1024)

static int psxt_raw_main(void *arg)
{
	struct psxt_raw_thread *t = arg;
	while (!atomic_load(&t->stop))
		psxt_raw4(SYS_futex, (long)&t->stop, FUTEX_WAIT_PRIVATE, 0, 0);
	return 0;
}

PSXT_UNUSED static struct psxt_raw_thread *psxt_raw_thread_start(void)
{
	if (!PSXT_HAVE_RAW)
		pw_skip("no raw system call helper for this architecture");
	struct psxt_raw_thread *t = calloc(1, sizeof *t);
	PW_CHECK(t != NULL, "calloc");
	t->stack = mmap(NULL, PSXT_RAW_STACK, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	PW_CHECK(t->stack != MAP_FAILED, "mmap: %s", strerror(errno));
	int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
		    CLONE_THREAD | CLONE_SYSVSEM;
	t->tid = clone(psxt_raw_main, (char *)t->stack + PSXT_RAW_STACK, flags, t);
	PW_CHECK(t->tid > 0, "clone: %s", strerror(errno));
	return t;
}

/* ---- a thread that blocks every signal ------------------------------------ */

/* A pthread that blocks every signal with a raw rt_sigprocmask (so also
 * glibc's hidden 32 and 33, which pthread_sigmask would strip), then waits.
 * cmd: 0 wait, 1 unblock everything and go on waiting, 2 exit. */
struct psxt_blocker {
	pthread_t th;
	_Atomic uint32_t cmd;
	_Atomic uint32_t blocked; /* 1 once blocked, 2 once unblocked */
	_Atomic pid_t tid;
};

static void *psxt_blocker_main(void *arg)
{
	struct psxt_blocker *b = arg;
	uint64_t all = ~0ULL, none = 0;
	psxt_raw4(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, sizeof all);
	atomic_store(&b->tid, (pid_t)psxt_raw4(SYS_gettid, 0, 0, 0, 0));
	atomic_store(&b->blocked, 1);
	for (;;) {
		uint32_t c = atomic_load(&b->cmd);
		if (c == 2)
			break;
		if (c == 1 && atomic_load(&b->blocked) == 1) {
			psxt_raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none,
				  0, sizeof none);
			atomic_store(&b->blocked, 2);
			psxt_raw4(SYS_futex, (long)&b->blocked,
				  FUTEX_WAKE_PRIVATE, 1, 0);
			continue;
		}
		psxt_raw4(SYS_futex, (long)&b->cmd, FUTEX_WAIT_PRIVATE, c, 0);
	}
	return NULL;
}

PSXT_UNUSED static void psxt_blocker_start(struct psxt_blocker *b)
{
	memset(b, 0, sizeof *b);
	PW_CHECK(pthread_create(&b->th, NULL, psxt_blocker_main, b) == 0,
		 "pthread_create");
	while (atomic_load(&b->blocked) != 1)
		sched_yield();
}

PSXT_UNUSED static void psxt_blocker_command(struct psxt_blocker *b, uint32_t c)
{
	atomic_store(&b->cmd, c);
	psxt_raw4(SYS_futex, (long)&b->cmd, FUTEX_WAKE_PRIVATE, 1, 0);
	if (c == 1)
		while (atomic_load(&b->blocked) != 2)
			sched_yield();
}

/* ---- scenarios in a child process ----------------------------------------- */

/* A scenario runs in a forked child whose stdout (key=value lines) and
 * stderr are captured, so that the test can watch it hang, die of a
 * signal, or print a diagnostic. */
struct psxt_scen {
	pid_t pid;
	bool finished;
	int status;
	char out[2048];
	char err[4096];
	int outfd, errfd;
};

PSXT_UNUSED static double psxt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void psxt_drain(int fd, char *buf, size_t sz)
{
	size_t len = strlen(buf);
	while (len + 1 < sz) {
		ssize_t n = read(fd, buf + len, sz - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
}

/* Starts fn in a child and waits up to timeout_s.  Returns true if it
 * ended; if not, the child is still running (look at /proc/PID, then
 * psxt_scen_kill()). */
PSXT_UNUSED static bool psxt_scen_run(struct psxt_scen *s, void (*fn)(void),
				      double timeout_s)
{
	int o[2], e[2];
	memset(s, 0, sizeof *s);
	PW_CHECK(pipe2(o, O_CLOEXEC) == 0 && pipe2(e, O_CLOEXEC) == 0, "pipe");
	fflush(stdout);
	fflush(stderr);
	s->pid = fork();
	PW_CHECK(s->pid >= 0, "fork: %s", strerror(errno));
	if (s->pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		setvbuf(stdout, NULL, _IONBF, 0);
		fn();
		_exit(0);
	}
	close(o[1]);
	close(e[1]);
	s->outfd = o[0];
	s->errfd = e[0];
	fcntl(s->outfd, F_SETFL, O_NONBLOCK);
	fcntl(s->errfd, F_SETFL, O_NONBLOCK);
	double end = psxt_now() + timeout_s;
	for (;;) {
		psxt_drain(s->outfd, s->out, sizeof s->out);
		psxt_drain(s->errfd, s->err, sizeof s->err);
		pid_t r = waitpid(s->pid, &s->status, WNOHANG);
		if (r == s->pid) {
			s->finished = true;
			break;
		}
		if (psxt_now() > end)
			break;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	psxt_drain(s->outfd, s->out, sizeof s->out);
	psxt_drain(s->errfd, s->err, sizeof s->err);
	if (s->finished) {
		close(s->outfd);
		close(s->errfd);
	}
	return s->finished;
}

PSXT_UNUSED static void psxt_scen_kill(struct psxt_scen *s)
{
	if (s->finished)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &s->status, 0);
	psxt_drain(s->outfd, s->out, sizeof s->out);
	psxt_drain(s->errfd, s->err, sizeof s->err);
	close(s->outfd);
	close(s->errfd);
}

/* The value of "key=" in the scenario's stdout, or dflt. */
PSXT_UNUSED static long psxt_scen_get(const struct psxt_scen *s,
				      const char *key, long dflt)
{
	size_t kl = strlen(key);
	for (const char *p = s->out; p && *p;) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 0);
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : NULL;
	}
	return dflt;
}

PSXT_UNUSED static const char *psxt_status_text(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "status 0x%x", status);
	return buf;
}

#endif
