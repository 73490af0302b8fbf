/* Reaching threads that block procwide's signal: a short-lived helper
 * process stops them with ptrace and runs the call inside each. */
#ifndef PW_INJECT_H
#define PW_INJECT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "raw.h"

enum pw_inject_op {
	PW_INJ_SEIZE = 1,   /* stop tid, check it is ours, save its registers */
	PW_INJ_RUN_ALL = 2, /* run the call in every seized thread */
	PW_INJ_RELEASE = 3, /* restore and detach every seized thread, exit */
	PW_INJ_DETACH = 4,  /* the same, and stay for the next call */
};

struct pw_inject_req {
	uint32_t op;
	uint32_t idx; /* helper table index for SEIZE */
	pid_t tid;
	pid_t pid;
	long nr;
	long args[6];
	/* RUN_ALL: threads may take the return path (src/arch/x86_64/
	 * inject_arch.h), which compares the result with `expected` itself.
	 * The dispositions it depends on, of the signals the application
	 * cannot re-handle meanwhile (src/inject.c, read_dispositions; bit
	 * sig - 1): `restartable`, no handler or one with SA_RESTART;
	 * `handled`, a handler.  Any other signal counts as neither. */
	uint32_t may_return;
	int32_t kill_on_mismatch;
	pid_t caller;
	long expected;
	uint64_t restartable, handled;
};

/* A seize answer (and the value procwide__inject_recv_seize returns) for
 * an io_uring worker: a thread that runs no user code, left alone. */
#define PW_INJ_KERNEL_WORKER 1

/* Replies per message, at most. */
#define PW_INJECT_BATCH 64u

struct pw_inject_rep {
	int32_t err;	 /* 0 or -errno */
	uint32_t idx;
	long result;	 /* RUN_ALL: the call's raw result */
	int32_t last;	 /* RUN_ALL/RELEASE: 1 on the closing reply */
	int32_t stage;	 /* where it failed: enum pw_inject_stage */
	pid_t tid;	 /* SEIZE: the thread */
	/* RUN_ALL: the thread takes the return path: it runs the call once
	 * the helper has gone, and its result is in the frames area. */
	int32_t deferred;
};

enum pw_inject_stage {
	PW_STAGE_NONE = 0,
	PW_STAGE_SEIZE = 1,
	PW_STAGE_STOP = 2,
	PW_STAGE_TGID = 3,
	PW_STAGE_REGS = 4,
	PW_STAGE_RUN = 5,
	PW_STAGE_DETACH = 6,
	PW_STAGE_ARCH = 7, /* a thread running 32-bit code: not supported */
};

/* Tests: the helper dies after answering the first seize of a batch of
 * several (environment PROCWIDE_TEST_HELPER_DIES=1, read at load). */
PW_HIDDEN extern bool procwide__test_helper_dies;
/* Tests: the return path's stub sleeps in its tail (src/inject_gadget.c;
 * PROCWIDE_TEST_TAIL_SLEEP=1, read at load). */
PW_HIDDEN extern bool procwide__test_tail_sleep;
PW_HIDDEN extern const struct timespec procwide__test_tail_ts;
/* The helper (src/inject_helper.c): the bytes it needs besides its stack
 * for a table of cap threads; its state set up in that memory (returned:
 * the argument of _main); its entry point, in the child. */
PW_HIDDEN size_t procwide__inject_helper_size(uint32_t cap);
PW_HIDDEN void *procwide__inject_helper_init(void *mem, int sock, pid_t parent, uint32_t cap,
					     int shared, void *frames, uint32_t frames_cap);
PW_HIDDEN __attribute__((noreturn)) void procwide__inject_helper_main(void *helper);

/* Caller side (src/inject.c).  All return 0 or -errno; `why` gets a reason
 * a person can act on. */
PW_HIDDEN int procwide__inject_begin(uint32_t cap, uint64_t deadline, char *why, size_t whysz);
/* Asks the helper to stop the thread of slot idx; the answer comes through
 * procwide__inject_recv_seize() (several may be in flight).  0, -EPIPE. */
PW_HIDDEN int procwide__inject_send_seize(uint32_t idx, pid_t tid);
/* The next answer: 0 (stopped), -ESRCH (gone), a ptrace error (why says
 * which step and why), or -EPIPE/-ETIMEDOUT if the helper died or did not
 * answer (it is then gone, and every thread it held is let go). */
PW_HIDDEN int procwide__inject_recv_seize(uint32_t *idx, uint64_t deadline, char *why,
					  size_t whysz);
/* Runs the call in every stopped thread; fn gets each result, except for
 * threads that take the return path (procwide__inject_collect).  With
 * kill_on_mismatch, a thread on that path whose result differs from
 * `expected` kills the process before it goes on, as the signal handler
 * does; caller: the calling thread, for the message. */
PW_HIDDEN int procwide__inject_run_all(long nr, const long args[6], long expected,
				       int kill_on_mismatch, pid_t caller, uint64_t deadline,
				       void (*fn)(uint32_t idx, long result, int err, void *ctx),
				       void *ctx);
/* The same, then lets every thread it ran go and keeps the helper for more
 * (the direct path runs the call in each batch of stopped threads at once). */
PW_HIDDEN int procwide__inject_run_detach(long nr, const long args[6], uint64_t deadline,
					  void (*fn)(uint32_t idx, long result, int err, void *ctx),
					  void *ctx);
PW_HIDDEN void procwide__inject_end(void);
/* After procwide__inject_end: waits until every thread that took the
 * return path in the last run_all has run the call, and passes each
 * result to fn (err -ESRCH: it ended first).  0, or -ETIMEDOUT after
 * `patience` ns without progress while none of them waits for a CPU (as
 * procwide__release waits for parked threads). */
PW_HIDDEN int procwide__inject_collect(uint64_t patience,
				       void (*fn)(uint32_t idx, long result, int err, void *ctx),
				       void *ctx);
/* Kills the helper at once, session or not (the kernel detaches every
 * thread it held, with the registers it had put back). */
PW_HIDDEN void procwide__inject_abort(void);
/* 1 if nothing known forbids the helper to trace this process: Yama's
 * scope, a seccomp filter (which the helper would inherit), a non-dumpable
 * process without CAP_SYS_PTRACE, threads in Landlock domains of their own.
 * A cheap check, not a promise. */
PW_HIDDEN int procwide__inject_possible(void);
/* true: landlock_restrict_self has run in the caller and in other threads
 * one by one, and each of those has a Landlock domain of its own.
 * Landlock lets a task trace only into its own domain or one nested in
 * it, so a helper started from now on (in the caller's domain) cannot trace
 * them, only the caller's later threads.  The direct path, which would
 * have to kill the process when ptrace fails, is then not taken, and a
 * refusal says why.  false: every thread has the caller's domain again
 * (the kernel's TSYNC).  A forked child forgets it: its threads all
 * descend from one. */
PW_HIDDEN void procwide__inject_split_domains(bool split);
/* Keep one helper across calls (procwide_apply_policy: a helper started
 * before the ids change keeps the privileges to trace the process after
 * it has become non-dumpable).  Best effort; always ended with _end. */
PW_HIDDEN int procwide__inject_session_begin(uint32_t cap, char *why, size_t whysz);
PW_HIDDEN void procwide__inject_session_end(void);
PW_HIDDEN int procwide__inject_active(void);
/* A helper is running that shares this process's memory (not a copy). */
PW_HIDDEN int procwide__inject_shares_memory(void);

#endif
