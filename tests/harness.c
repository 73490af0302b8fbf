#include "harness.h"
#include "procwide.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int skip_fd = -1;

void pw_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;
	printf("# %s:%d: check failed: %s: ", file, line, expr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	/* Also on stderr, which prove shows: a failure in CI names its
	 * check in the log. */
	fprintf(stderr, "%s:%d: check failed: %s: ", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(1);
}

void pw_skip(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	if (skip_fd >= 0 && write(skip_fd, buf, (size_t)n) < 0)
		_exit(1);
	fflush(stdout);
	_exit(77);
}

void pw_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

double pw_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_case(size_t idx, const struct pw_case *c)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		printf("not ok %zu %s # pipe: %s\n", idx, c->name, strerror(errno));
		return 1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("not ok %zu %s # fork: %s\n", idx, c->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		skip_fd = pfd[1];
		/* Its own process group, so a timeout can end what it forked. */
		setpgid(0, 0);
		c->fn();
		fflush(stdout);
		_exit(0);
	}
	close(pfd[1]);
	unsigned limit = c->timeout_s ? c->timeout_s : 30;
	double end = pw_now_s() + limit;
	int status = 0;
	bool timed_out = false;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = 0xff00;
			break;
		}
		if (pw_now_s() > end) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			timed_out = true;
			break;
		}
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	/* End anything the case left in its group first: a forked child
	 * still holding the pipe would otherwise block the read below. */
	kill(-pid, SIGKILL);
	char reason[256] = "";
	int fl = fcntl(pfd[0], F_GETFL);
	fcntl(pfd[0], F_SETFL, fl | O_NONBLOCK);
	ssize_t n = read(pfd[0], reason, sizeof reason - 1);
	reason[n > 0 ? n : 0] = '\0';
	close(pfd[0]);

	if (timed_out) {
		printf("not ok %zu %s # timed out after %u s\n", idx, c->name, limit);
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok %zu %s\n", idx, c->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("ok %zu %s # SKIP %s\n", idx, c->name, reason);
		return 2;
	}
	if (WIFSIGNALED(status))
		printf("not ok %zu %s # killed by signal %d\n", idx, c->name, WTERMSIG(status));
	else
		printf("not ok %zu %s # exit status %d\n", idx, c->name, WEXITSTATUS(status));
	return 1;
}

int pw_main(int argc, char **argv, const struct pw_case *cases, size_t n)
{
	size_t selected = 0;
	for (size_t i = 0; i < n; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], cases[i].name) == 0;
		selected += want;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%zu\n", selected);
	size_t failed = 0, skipped = 0, idx = 0;
	for (size_t i = 0; i < n; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], cases[i].name) == 0;
		if (!want)
			continue;
		int r = run_case(++idx, &cases[i]);
		failed += r == 1;
		skipped += r == 2;
	}
	if (failed)
		return 1;
	/* Run again by pw_rerun_with: a skip must reach the case that asked,
	 * not pass as its success. */
	return getenv("PW_HARNESS_RERUN") && selected && skipped == selected ? 77 : 0;
}

size_t pw_list_tids(pid_t *tids, size_t n)
{
	DIR *d = opendir("/proc/self/task");
	size_t k = 0;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (k < n)
			tids[k] = (pid_t)atoi(e->d_name);
		k++;
	}
	closedir(d);
	return k;
}

static bool read_file(const char *path, char *buf, size_t sz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sz - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

bool pw_status_field(const char *buf, const char *field, char *out, size_t outsz)
{
	size_t fl = strlen(field);
	for (const char *line = buf; line && *line;) {
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			const char *v = line + fl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t len = strcspn(v, "\n");
			if (len >= outsz)
				len = outsz - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
		const char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

bool pw_proc_task_status(pid_t pid, pid_t tid, const char *field, char *out, size_t outsz)
{
	char path[64], buf[16384];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
	return read_file(path, buf, sizeof buf) && pw_status_field(buf, field, out, outsz);
}

bool pw_task_status(pid_t tid, const char *field, char *out, size_t outsz)
{
	return pw_proc_task_status(getpid(), tid, field, out, outsz);
}

long pw_timerslack(pid_t tid)
{
	char path[64], buf[64];
	snprintf(path, sizeof path, "/proc/%d/timerslack_ns", (int)tid);
	if (!read_file(path, buf, sizeof buf))
		return -1;
	return atol(buf);
}

bool pw_task_comm(pid_t tid, char *out, size_t outsz)
{
	char path[64], buf[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
	if (!read_file(path, buf, sizeof buf))
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(out, outsz, "%s", buf);
	return true;
}

char pw_task_state(pid_t tid)
{
	return pw_proc_task_state(getpid(), tid);
}

char pw_proc_task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (!read_file(path, buf, sizeof buf))
		return 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

pid_t pw_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

bool pw_have_cap(int cap)
{
	char v[64];
	if (!pw_task_status(pw_gettid(), "CapEff", v, sizeof v))
		return false;
	unsigned long long eff = strtoull(v, NULL, 16);
	return (eff >> cap) & 1;
}

struct pw_idle {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	size_t n, ready;
	pthread_t th[];
};

static void *idle_main(void *arg)
{
	struct pw_idle *idle = arg;
	pthread_mutex_lock(&idle->mu);
	idle->ready++;
	pthread_cond_broadcast(&idle->cv);
	while (!idle->stop)
		pthread_cond_wait(&idle->cv, &idle->mu);
	pthread_mutex_unlock(&idle->mu);
	return NULL;
}

struct pw_idle *pw_idle_start(size_t n)
{
	struct pw_idle *idle = calloc(1, sizeof *idle + n * sizeof(pthread_t));
	if (!idle)
		return NULL;
	pthread_mutex_init(&idle->mu, NULL);
	pthread_cond_init(&idle->cv, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (; idle->n < n; idle->n++)
		if (pthread_create(&idle->th[idle->n], &attr, idle_main, idle) != 0)
			break;
	pthread_attr_destroy(&attr);
	/* Returns once every thread waits: a thread still starting may be
	 * inside the C library or a sanitizer's allocator, holding a lock
	 * that a fork() right after would leave locked in the child (GCC 12's
	 * ASan takes no allocator lock around fork). */
	pthread_mutex_lock(&idle->mu);
	while (idle->ready < idle->n)
		pthread_cond_wait(&idle->cv, &idle->mu);
	pthread_mutex_unlock(&idle->mu);
	return idle;
}

void pw_idle_stop(struct pw_idle *idle)
{
	if (!idle)
		return;
	pthread_mutex_lock(&idle->mu);
	idle->stop = true;
	pthread_cond_broadcast(&idle->cv);
	pthread_mutex_unlock(&idle->mu);
	for (size_t i = 0; i < idle->n; i++)
		pthread_join(idle->th[i], NULL);
	free(idle);
}

struct pw_churn {
	atomic_bool stop;
	size_t n;
	pthread_t th[];
};

static void *short_lived(void *arg)
{
	(void)arg;
	unsigned seed = (unsigned)pw_gettid(); /* rand() would share one lock */
	usleep((useconds_t)(rand_r(&seed) % 3000));
	return NULL;
}

static void *churn_main(void *arg)
{
	struct pw_churn *churn = arg;
	while (!atomic_load(&churn->stop)) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_detach(t);
		usleep(100);
	}
	return NULL;
}

struct pw_churn *pw_churn_start(size_t n)
{
	struct pw_churn *churn = calloc(1, sizeof *churn + n * sizeof(pthread_t));
	if (!churn)
		return NULL;
	for (; churn->n < n; churn->n++)
		if (pthread_create(&churn->th[churn->n], NULL, churn_main, churn) != 0)
			break;
	return churn;
}

void pw_churn_stop(struct pw_churn *churn)
{
	if (!churn)
		return;
	atomic_store(&churn->stop, true);
	for (size_t i = 0; i < churn->n; i++)
		pthread_join(churn->th[i], NULL);
	free(churn);
}

void pw_block_all_signals(void)
{
	uint64_t all = ~0ULL;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
}

struct blocking {
	_Atomic pid_t tid;
	unsigned ms; /* 0: for ever */
};

static void *blocking_main(void *arg)
{
	struct blocking *b = arg;
	unsigned ms = b->ms;
	pw_block_all_signals();
	atomic_store(&b->tid, pw_gettid());
	if (ms) {
		/* No signal can cut the sleep short: every one is blocked. */
		struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
		nanosleep(&t, NULL);
		sigset_t none;
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
	}
	for (;;)
		pause();
	return NULL;
}

pid_t pw_start_blocking_thread_for(unsigned ms)
{
	static struct blocking b;
	atomic_store(&b.tid, 0);
	b.ms = ms;
	pthread_t t;
	PW_CHECK(pthread_create(&t, NULL, blocking_main, &b) == 0, "create");
	while (!atomic_load(&b.tid))
		usleep(1000);
	return atomic_load(&b.tid);
}

pid_t pw_start_blocking_thread(void)
{
	return pw_start_blocking_thread_for(0);
}

pid_t pw_start_tracer(pid_t victim)
{
	int go[2];
	if (pipe(go) != 0)
		return -1;
	pid_t dbg = fork();
	if (dbg == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (int fd = 0; fd < 1024; fd++)
			if (fd != go[1])
				close(fd);
		if (ptrace(PTRACE_SEIZE, victim, 0, 0) != 0)
			_exit(3);
		if (write(go[1], "x", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(go[1]);
	char c;
	bool held = dbg > 0 && read(go[0], &c, 1) == 1;
	close(go[0]);
	if (!held && dbg > 0) {
		kill(dbg, SIGKILL);
		waitpid(dbg, NULL, 0);
	}
	return held ? dbg : -1;
}

void pw_rerun_with(const char *case_name, const char *env)
{
	int out[2];
	PW_CHECK(pipe2(out, O_CLOEXEC) == 0, "pipe");
	fflush(stdout);
	pid_t child = fork();
	PW_CHECK(child >= 0, "fork");
	if (child == 0) {
		if (dup2(out[1], 1) < 0 || setenv(env, "1", 1) != 0 ||
		    setenv("PW_HARNESS_RERUN", "1", 1) != 0)
			_exit(126);
		execl("/proc/self/exe", program_invocation_short_name, case_name, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Its report, as diagnostics of this case; a skip's reason kept. */
	static char text[16384];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof text - 1 && (n = read(out[0], text + got, sizeof text - 1 - got)) > 0)
		got += (size_t)n;
	text[got] = '\0';
	close(out[0]);
	int st;
	PW_CHECK(waitpid(child, &st, 0) == child, "waitpid");
	char reason[256] = "";
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		printf("# %s\n", line);
		char *skip = strstr(line, "# SKIP ");
		if (skip)
			snprintf(reason, sizeof reason, "%s", skip + 7);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		pw_skip("%s", reason);
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s run again with %s=1 exited with %#x",
		 case_name, env, st);
}

void pw_expect_thread(const struct procwide_report *rep, pid_t tid, int path, int status)
{
	size_t seen = 0;
	for (size_t i = 0; i < rep->nthreads; i++) {
		const struct procwide_thread *t = &rep->threads[i];
		if (t->tid != tid)
			continue;
		seen++;
		PW_CHECK(t->path == path && t->status == status,
			 "thread %d: path %d status %d, expected path %d status %d", (int)tid,
			 t->path, t->status, path, status);
	}
	PW_CHECK(seen == 1, "thread %d listed %zu times in the report", (int)tid, seen);
}

static int raw_thread_main(void *arg)
{
	/* Only system calls that cannot fail: this thread shares its
	 * creator's errno.  A futex wait without timeout is restarted after a
	 * handler (SA_RESTART), never EINTR, so syscall() never writes errno. */
	static int never;
	atomic_store((atomic_int *)arg, (int)syscall(SYS_gettid));
	for (;;)
		syscall(SYS_futex, &never, 128 /* FUTEX_WAIT_PRIVATE */, 0, NULL, NULL, 0);
	return 0;
}

pid_t pw_start_raw_thread(void)
{
	size_t sz = 256 * 1024;
	char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PW_CHECK(stack != MAP_FAILED, "mmap");
	/* Its tid is written at the far end of its own stack, never freed. */
	atomic_int *tid = (atomic_int *)(void *)stack;
	atomic_init(tid, 0);
	/* No CLONE_SETTLS: the new thread shares this thread's TLS (errno
	 * included), which is what procwide's handler must never touch. */
	int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
		    CLONE_SYSVSEM;
	PW_CHECK(clone(raw_thread_main, stack + sz, flags, tid) > 0, "clone: %s", strerror(errno));
	while (!atomic_load(tid))
		usleep(1000);
	return atomic_load(tid);
}

pid_t pw_start_thread(pthread_t *t, void *(*fn)(void *), void *arg, atomic_int *tid)
{
	PW_CHECK(pthread_create(t, NULL, fn, arg) == 0, "pthread_create");
	while (!atomic_load(tid))
		usleep(1000);
	return atomic_load(tid);
}

void pw_expect_mismatch_kill(pid_t child, int errfd)
{
	int st;
	PW_CHECK(waitpid(child, &st, 0) == child, "waitpid");
	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
	char buf[1024];
	ssize_t n = read(errfd, buf, sizeof buf - 1);
	PW_CHECK(n > 0, "no diagnostic");
	buf[n] = '\0';
	pw_diag("stderr: %s", buf);
	PW_CHECK(strncmp(buf, "procwide: thread ", 17) == 0 && strstr(buf, "but the calling thread") &&
			 strchr(buf, '\n') == buf + n - 1,
		 "one line naming both: %s", buf);
}
