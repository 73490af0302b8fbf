/* Internal interfaces between the caller-side parts of the engine.  Nothing
 * here is exported (the build hides every symbol not in procwide.h). */
#ifndef PW_INTERNAL_H
#define PW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "procwide.h"
#include "raw.h"

/* CLOCK_MONOTONIC in ns (the vDSO: no system call). */
static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- lock.c: one call at a time, per process ------------------------------ */
/* 0, or -EDEADLK when this thread already holds it (a procwide call from a
 * signal handler that interrupted one). */
PW_HIDDEN int procwide__lock(pid_t pid, pid_t tid);
PW_HIDDEN void procwide__unlock(void);

/* ---- threads.c: the kernel's list of this process's threads -------------- */
/* Opens /proc/self/task (again after a fork) and checks that the descriptor
 * is still the one procwide opened; 0 or -errno. */
PW_HIDDEN int procwide__taskdir_ensure(pid_t pid);
/* Calls fn for every tid listed, with the inode number of its entry; 0, or
 * -errno (from the directory or fn). */
PW_HIDDEN int procwide__taskdir_sweep(int (*fn)(pid_t tid, uint64_t ino, void *ctx), void *ctx);
/* The inode number of /proc/self/task/TID by a path lookup (which
 * revalidates a cached entry), 0 if there is none. */
PW_HIDDEN uint64_t procwide__task_ino(pid_t tid);
/* Whether the kernel frees a thread's id only after dropping its /proc
 * entries (Linux 6.15 and later), so that readdir never shows a new
 * thread with an ended one's inode number.  PROCWIDE_TEST_PROC_REVALIDATE=1
 * in the environment (ignored in set-id programs) answers no, to test the
 * other way. */
PW_HIDDEN bool procwide__proc_frees_tid_after_flush(void);
/* Threads the kernel counts now (st_nlink - 2), or -errno. */
PW_HIDDEN long procwide__taskdir_count(void);
/* The state letter of a thread ('R', 'S', 'Z', ...), 0 if unknown. */
PW_HIDDEN char procwide__task_state(pid_t tid);
/* The kernel's task flags (field 9 of stat), 0 if unknown. */
PW_HIDDEN unsigned long procwide__task_flags(pid_t tid);
/* 1 if the thread blocks sig now, 0 if not, -1 if unknown. */
PW_HIDDEN int procwide__task_blocks(pid_t tid, int sig);
/* The pid tracing the thread, 0 if none, -1 if unknown. */
PW_HIDDEN int procwide__task_tracer(pid_t tid);
/* The thread's name into buf ("?" if unknown). */
PW_HIDDEN void procwide__task_name(pid_t tid, char *buf, size_t size);

/* ---- fork_count.c: the machine's count of created tasks ------------------ */
/* The count ("processes" in /proc/stat, threads included), read from the
 * kernel's own /proc/stat opened at load; 0, or -errno: -ENOTSUP (no such
 * file of the kernel's own, or the application closed it), -EAGAIN (the
 * count has not moved since the library loaded: not trusted yet), another
 * error of the read. */
PW_HIDDEN int procwide__forks_read(uint64_t *count);
/* PROCWIDE_TEST_FORK_COUNT_ALWAYS=1 at load (ignored in set-id programs):
 * read the count on every direct call, whatever it costs. */
PW_HIDDEN bool procwide__forks_always_worth(void);

/* ---- signal_setup.c: the signal procwide uses ----------------------------- */
/* Makes sure procwide's handler is installed on a usable real-time signal
 * (`requested`, or one chosen at runtime when 0); returns it, or -errno. */
PW_HIDDEN int procwide__signal_ensure(int requested);

/* ---- engine.c -------------------------------------------------------------- */
struct pw_result {
	int ret;		/* 0 or -errno, what procwide_run returns */
	int outcome;		/* enum procwide_outcome */
	int signo;
	long result;		/* the caller's raw result */
	size_t nthreads;
	struct procwide_thread *threads; /* malloc'd when asked for */
	size_t nmismatch, nunreachable;
	uint64_t elapsed_ns;
	char message[256];
	int mode;		/* enum procwide_mode */
	int proof;		/* enum procwide_proof */
};

struct pw_request {
	struct procwide_call call;
	int kill_on_mismatch;
	unsigned deadline_ms;
	int signo;
	bool want_threads;
	bool may_inject;  /* reach threads that do not answer through ptrace */
	bool inject_all;  /* reach every thread through ptrace, no signal */
	bool atomic;      /* never the direct path (PROCWIDE_ATOMIC) */
};

PW_HIDDEN void procwide__engine_run(const struct pw_request *req, struct pw_result *res);

/* ---- direct_calls.c -------------------------------------------------------- */
/* True if the call may take the direct path: once run in the caller, it
 * cannot stop the caller from reaching the other threads, and repeating it
 * in a thread gives the same result. */
PW_HIDDEN bool procwide__direct_safe(const struct procwide_call *call);
/* Keep one ptrace helper across the calls that follow (true), or end it. */
PW_HIDDEN void procwide__session(bool on);

#endif
