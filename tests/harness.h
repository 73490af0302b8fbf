/* Test harness: every case runs in its own forked process with a timeout
 * (the changes procwide makes cannot be undone), and the results are TAP. */
#ifndef PW_TEST_HARNESS_H
#define PW_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct pw_case {
	const char *name;
	void (*fn)(void);
	unsigned timeout_s; /* 0: 30 s */
};

#define PW_CASE(fn) { #fn, fn, 0 }
#define PW_CASE_T(fn, t) { #fn, fn, t }

/* Runs every case (or only those named on the command line), prints TAP,
 * returns the exit status for main(). */
int pw_main(int argc, char **argv, const struct pw_case *cases, size_t n);

/* In a case: a failed check prints a "# " diagnostic and ends the case. */
#define PW_CHECK(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond))                                                   \
			pw_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);       \
	} while (0)
#define PW_EQ_LONG(a, b)                                                       \
	do {                                                                   \
		long pw_a_ = (long)(a), pw_b_ = (long)(b);                     \
		if (pw_a_ != pw_b_)                                            \
			pw_fail(__FILE__, __LINE__, #a " == " #b,              \
				"%ld != %ld", pw_a_, pw_b_);                   \
	} while (0)

__attribute__((noreturn, format(printf, 4, 5))) void
pw_fail(const char *file, int line, const char *expr, const char *fmt, ...);
/* Ends the case as skipped; the reason is shown by prove. */
__attribute__((noreturn, format(printf, 1, 2))) void pw_skip(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void pw_diag(const char *fmt, ...);

/* ---- observing threads from /proc -------------------------------------- */
/* Fills tids[] with the threads now listed in /proc/self/task (max n);
 * returns how many were listed. */
size_t pw_list_tids(pid_t *tids, size_t n);
/* A field of /proc/self/task/TID/status ("NoNewPrivs"), copied without the
 * name and leading blanks; false if the thread is gone. */
bool pw_task_status(pid_t tid, const char *field, char *out, size_t outsz);
/* The same for thread tid of process pid, readable from another process. */
bool pw_proc_task_status(pid_t pid, pid_t tid, const char *field, char *out, size_t outsz);
/* The value of `field` in the text of a status file (same form). */
bool pw_status_field(const char *buf, const char *field, char *out, size_t outsz);
/* /proc/TID/timerslack_ns, -1 if the thread is gone. */
long pw_timerslack(pid_t tid);
/* /proc/self/task/TID/comm without the newline; false if gone. */
bool pw_task_comm(pid_t tid, char *out, size_t outsz);
/* The state letter of /proc/self/task/TID/stat, or 0 if gone. */
char pw_task_state(pid_t tid);
char pw_proc_task_state(pid_t pid, pid_t tid); /* from another process too */

pid_t pw_gettid(void);
bool pw_have_cap(int cap); /* effective capability of the calling thread */

/* Checks that the report lists thread tid once, with this path and status
 * (an entry of rep->threads; the report was asked with its size). */
struct procwide_report;
void pw_expect_thread(const struct procwide_report *rep, pid_t tid, int path, int status);

/* ---- idle threads ------------------------------------------------------- */
/* Starts n threads that wait until pw_idle_stop(); returns their number. */
struct pw_idle;
struct pw_idle *pw_idle_start(size_t n);
void pw_idle_stop(struct pw_idle *idle);

/* Starts n threads that keep making short-lived threads (each ends within
 * 3 ms, a new one every 100 us from each), so that threads end during every
 * call, until pw_churn_stop(). */
struct pw_churn;
struct pw_churn *pw_churn_start(size_t n);
void pw_churn_stop(struct pw_churn *churn);

/* Blocks every signal in the calling thread with the raw call (the C
 * library's wrappers keep their own signals). */
void pw_block_all_signals(void);
/* Starts a thread that blocks every signal and sleeps in pause(), as a
 * runtime's service thread does; returns its tid once it is blocked. */
pid_t pw_start_blocking_thread(void);
/* The same, but the thread unblocks every signal after `ms` ms. */
pid_t pw_start_blocking_thread_for(unsigned ms);
/* Starts fn(arg) in *t and waits until it has stored its tid in *tid
 * (which must start at 0); returns that tid. */
pid_t pw_start_thread(pthread_t *t, void *(*fn)(void *), void *arg, atomic_int *tid);
/* Seconds on the monotonic clock. */
double pw_now_s(void);
/* Starts a thread with a raw clone(), unknown to the C library and sharing
 * its creator's TLS (errno included), that waits forever; returns its tid. */
pid_t pw_start_raw_thread(void);
/* Runs test case case_name of this program again in a new process whose
 * environment has env=1 (for settings the library reads when it loads);
 * its output goes to this one's diagnostics.  Fails unless it passes;
 * skipped there, skipped here with the same reason. */
void pw_rerun_with(const char *case_name, const char *env);
/* Waits for `child`, which must have been killed by procwide for a
 * differing result (SIGKILL), with its one-line diagnostic naming both
 * threads on errfd (its stderr's pipe, whose write end the caller has
 * closed). */
void pw_expect_mismatch_kill(pid_t child, int errfd);
/* Forks a "debugger": a process that holds `victim' with PTRACE_SEIZE and
 * keeps no descriptor of ours; it dies with the thread that called this.
 * Returns its pid once it holds the victim, -1 if it could not. */
pid_t pw_start_tracer(pid_t victim);

#endif
