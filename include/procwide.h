/* SPDX-License-Identifier: MIT */
/*
 * procwide: make per-thread Linux security state process-wide.
 *
 * Linux keeps no_new_privs, seccomp filters, Landlock domains, uids/gids,
 * capabilities and securebits per thread.  procwide runs one system call in
 * every thread of the calling process, with no thread left behind, and fails
 * closed: it never reports success unless every thread ran the call with the
 * caller's result, it returns an error only while no thread has changed, and
 * once threads have changed it kills the process rather than leave it half
 * changed.
 *
 * Error convention: procwide_syscall() follows syscall(2) (-1 and errno);
 * every other function returns 0 (or a documented non-negative value) on
 * success and a negative errno value on failure, and leaves errno alone.
 */
#ifndef PROCWIDE_H
#define PROCWIDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PROCWIDE_API __attribute__((visibility("default")))
#else
#define PROCWIDE_API
#endif

#define PROCWIDE_VERSION_MAJOR 0
#define PROCWIDE_VERSION_MINOR 1

/* Deadline used when procwide_opts.deadline_ms is 0. */
#define PROCWIDE_DEFAULT_DEADLINE_MS 1000u

/*
 * Run syscall `nr` in every thread of the process, the calling thread first.
 *
 * On the parked path (see enum procwide_mode), every other thread is first
 * brought to a stop inside procwide (so that none can create a thread that
 * escapes); then the call runs in the caller.  If it fails there, the others
 * are released untouched and -1 is returned with errno set to the caller's
 * error.  Otherwise it runs in every other thread and the caller's result is
 * returned.  On the direct path the caller runs it first (failing there, no
 * other thread is touched), then every other thread as the signal reaches
 * it.  If any thread's result differs from the caller's, one line naming the
 * thread and both results is written to stderr and the whole process is
 * killed with SIGKILL.
 *
 * A thread that does not answer procwide's signal (it blocks it, as
 * runtimes' timer threads do) is reached through a short-lived ptrace helper
 * process instead (see PROCWIDE_NO_PTRACE).  If a thread can be reached in
 * neither way (parked path; the direct path kills the process, as for a
 * differing result), nothing has changed in any thread and -1 is returned with
 * errno EPERM (ptrace is not allowed: a non-dumpable process without
 * CAP_SYS_PTRACE, a debugger already tracing the thread, a seccomp filter,
 * Yama) or ETIMEDOUT (no answer within PROCWIDE_DEFAULT_DEADLINE_MS);
 * procwide_last_error() names the thread and the reason.  Other errors:
 * EINVAL (a system call that cannot be broadcast: exit, clone, clone3, fork,
 * vfork, execve, execveat, rt_sigreturn, and those that the return from the
 * signal handler or the register restore would undo in other threads:
 * rt_sigprocmask, sigaltstack, rt_sigsuspend, arch_prctl; x32 numbers),
 * EDEADLK (called from a signal handler that interrupted a procwide call in
 * the same thread), EAGAIN (no usable real-time signal), ENOENT (/proc is
 * not mounted), EACCES (/proc/self/task cannot be opened: the first call in
 * a forked child of a process whose Landlock domain forbids /proc), ENOMEM.
 */
PROCWIDE_API long procwide_syscall(long nr, long a1, long a2, long a3,
				   long a4, long a5, long a6);

/* The system call to run in every thread. */
struct procwide_call {
	long nr;
	long args[6];
};

/* What to do when another thread's result differs from the caller's. */
enum procwide_mismatch {
	/* Diagnostic line on stderr, then SIGKILL to the whole process,
	 * before the differing thread returns to application code. */
	PROCWIDE_MISMATCH_KILL = 0,
	/* Finish, report every differing thread, return -ENOTRECOVERABLE.
	 * The process is then divergent: the caller must deal with it. */
	PROCWIDE_MISMATCH_REPORT = 1,
};

struct procwide_opts {
	size_t size;		  /* sizeof(struct procwide_opts) */
	unsigned int mismatch;	  /* enum procwide_mismatch */
	unsigned int deadline_ms; /* 0: PROCWIDE_DEFAULT_DEADLINE_MS.  Bounds
				     reaching every thread, from the start of
				     the call (past it: -ETIMEDOUT, nothing
				     changed); then, once threads have run the
				     call, any wait without progress while no
				     thread that must still finish is waiting
				     for a CPU (past it: the process is killed,
				     fail closed).  On the direct path (see
				     enum procwide_mode) a wait without
				     progress bounds it from the start:
				     past it, every thread still silent is
				     reached through ptrace, runnable or
				     not (but one ptrace refused, which
				     is left to the signal); past it
				     again, the process is killed (at once
				     if no such thread is left to reach).  On a machine
				     whose CPUs are all busy, reaching every
				     thread can take longer than the default:
				     raise it. */
	int signal;		  /* 0: chosen at runtime; else a real-time
				     signal >= 35 the application leaves alone */
	unsigned int flags;	  /* PROCWIDE_NO_PTRACE or PROCWIDE_PTRACE_ALL,
				     PROCWIDE_ATOMIC */
};

/*
 * procwide_opts.flags.  By default a thread that does not answer the signal
 * (it blocks it, as runtimes' timer threads do) is reached through ptrace: a
 * helper process forked during the call stops it, runs the call inside it,
 * restores its registers exactly and detaches; a system call it was blocked
 * in resumes or restarts as after any signal.
 */
#define PROCWIDE_NO_PTRACE (1u << 0)  /* never use ptrace: such a thread
					 makes the call fail (nothing changed) */
#define PROCWIDE_PTRACE_ALL (1u << 1) /* reach every thread through ptrace and
					 deliver no signal at all: for programs
					 that cannot tolerate EINTR */
#define PROCWIDE_ATOMIC (1u << 2)     /* never take the direct path (see
					 enum procwide_mode): a thread found
					 unreachable always means an error
					 with nothing changed */

/*
 * How the call went, in struct procwide_report.mode.
 *
 * PARKED: every other thread is first stopped inside procwide, then the call
 * runs in the caller, then in the others: a thread that cannot be reached
 * is found while nothing has changed, and the call fails cleanly.  Each
 * thread is woken twice (to stop, then to run).
 *
 * DIRECT: the call runs in the caller, then in each thread as soon as
 * procwide's signal (or the ptrace helper) reaches it: one wake-up per
 * thread.  A thread found unreachable after the caller has run the call
 * (ptrace refused, or no progress for deadline_ms) kills the process
 * (diagnostic on stderr), as a differing result does: the process never
 * runs half-changed.  A thread created during the call by one that had
 * already run it inherits the change and may run the call a second time;
 * if threads end faster than completeness can be proven, every thread is
 * parked and runs it again (mode DIRECT_THEN_PARKED).  A thread that ran
 * the call and ended may leave its id to a new thread: the proof tells them
 * apart by their /proc/self/task entries' inode numbers, and the new thread
 * is reached too (enum procwide_proof: the listing is skipped when no task
 * was created on the machine since an earlier call's proof).
 *
 * procwide takes the direct path only when all of these hold: the mismatch
 * policy is PROCWIDE_MISMATCH_KILL (procwide_syscall()); ptrace is allowed
 * (no PROCWIDE_NO_PTRACE, PROCWIDE_PTRACE_ALL or PROCWIDE_ATOMIC) and
 * nothing procwide can check cheaply forbids it (Yama scope 3, or 2 without
 * CAP_SYS_PTRACE; a seccomp filter in the caller; a non-dumpable process
 * without CAP_SYS_PTRACE); the call is on a short list of calls that, once
 * run in the caller, cannot stop it from reaching the others (signals,
 * /proc, the ptrace helper) and give the same result when repeated:
 * prctl PR_SET_NO_NEW_PRIVS, PR_SET_TIMERSLACK, PR_SET_NAME,
 * PR_CAPBSET_DROP, PR_CAP_AMBIENT, and a setresuid or setresgid that changes
 * no id of the caller (each argument -1 or the current id, the filesystem id
 * equal to the effective one); and the previous call in this process
 * succeeded with no thread reached through ptrace (a forked child inherits
 * that record).  So the first call of a process is parked, as is every call
 * of a process whose threads block the signal, every call that changes ids,
 * capabilities, seccomp filters or Landlock domains, and every other call
 * not on the list.  A direct call that lasts longer than the machine's
 * 32-bit inode counter could take to go round (2^32 inodes made at 20 ns
 * each, on every CPU at once: 43 s on 2 CPUs) is settled by parking too.
 */
enum procwide_mode {
	PROCWIDE_MODE_PARKED = 0,
	PROCWIDE_MODE_DIRECT = 1,
	PROCWIDE_MODE_DIRECT_THEN_PARKED = 2, /* direct, completed by parking
						 every thread and running the
						 call again in each */
};

/*
 * How procwide knows that no thread was left out, in
 * struct procwide_report.proof.
 *
 * PARKED: every thread was stopped inside procwide or by the ptrace helper
 * (a stopped thread makes no thread), a listing of /proc/self/task then
 * found no thread it did not know, and the kernel's thread count agreed.
 *
 * LISTING (direct path): once every thread known had run the call, the
 * kernel's thread count equalled the number of those threads still listed
 * in /proc/self/task, each recognised by its entry's inode number.  About
 * half a microsecond per thread.
 *
 * FORK_COUNT (direct path): the machine's count of tasks ever created
 * ("processes" in /proc/stat, which every new thread raises) had not moved
 * since an earlier call was proven, and every thread that call knew has run
 * this one.  So no thread exists that this call did not reach, and the
 * listing is skipped.  Taken only when reading that count costs less than
 * listing the threads would.  Any task created anywhere on the machine in
 * between makes the call prove it by LISTING instead, as does a count that
 * is not the kernel's own: a file mounted over /proc/stat (lxcfs does so in
 * containers), or a count that has not moved since the library loaded (a
 * kernel that does not keep it).
 */
enum procwide_proof {
	PROCWIDE_PROOF_NONE = 0,       /* not reported: the call did not run in
					  every thread (also what a library
					  older than this field leaves) */
	PROCWIDE_PROOF_PARKED = 1,
	PROCWIDE_PROOF_LISTING = 2,
	PROCWIDE_PROOF_FORK_COUNT = 3,
};

/* Per-thread outcome, in struct procwide_thread.status. */
enum procwide_thread_status {
	PROCWIDE_THREAD_CALLER = 0,	 /* the calling thread */
	PROCWIDE_THREAD_OK = 1,		 /* ran the call, same result */
	PROCWIDE_THREAD_MISMATCH = 2,	 /* ran the call, different result */
	PROCWIDE_THREAD_NOT_RUN = 3,	 /* reached, released without the call
					    (the call was refused or failed) */
	PROCWIDE_THREAD_EXITED = 4,	 /* exited during the call */
	PROCWIDE_THREAD_ZOMBIE = 5,	 /* a zombie (e.g. a main thread that
					    called pthread_exit): runs no code */
	PROCWIDE_THREAD_BLOCKED = 6,	 /* unreachable: blocks the signal */
	PROCWIDE_THREAD_NO_ANSWER = 7,	 /* unreachable: did not answer */
	PROCWIDE_THREAD_QUEUE_FULL = 8,	 /* unreachable: the signal could not
					    be queued (RLIMIT_SIGPENDING) */
	PROCWIDE_THREAD_KERNEL_WORKER = 10, /* a kernel worker thread of the
					    process (io_uring's iou-wrk-*,
					    iou-sqp-*; vhost): the kernel marks
					    it PF_IO_WORKER or PF_USER_WORKER
					    and it never runs user code, so it
					    runs no call; left as it was.  Note
					    that an io_uring SQPOLL ring keeps
					    the credentials of the thread that
					    made it (and registered
					    personalities theirs): close rings
					    before dropping privileges */
	PROCWIDE_THREAD_NO_PTRACE = 9,	 /* unreachable: no answer to the signal,
					    and ptrace failed (see message) */
};

/* How a thread was reached, in struct procwide_thread.path. */
enum procwide_path {
	PROCWIDE_PATH_NONE = 0,	  /* not reached */
	PROCWIDE_PATH_SELF = 1,	  /* the calling thread itself */
	PROCWIDE_PATH_SIGNAL = 2, /* procwide's signal handler */
	PROCWIDE_PATH_PTRACE = 3, /* stopped and run by the ptrace helper */
};

struct procwide_thread {
	pid_t tid;
	int status; /* enum procwide_thread_status */
	int path;   /* enum procwide_path */
	int stops;  /* PROCWIDE_PATH_PTRACE: the ptrace stops the thread went
		       through, 1 (it ran the call on its way back to its own
		       code) or 3 (the helper ran it between stops; see
		       procwide_run(3)); 0 otherwise (a field that filled
		       padding: the structure's size is unchanged) */
	long result; /* raw result: >= 0, or -errno; 0 unless run */
};

/* Overall outcome, in struct procwide_report.outcome. */
enum procwide_outcome {
	PROCWIDE_OUTCOME_OK = 0,	    /* every thread ran it, same result */
	PROCWIDE_OUTCOME_REFUSED = 1,	    /* bad arguments or engine error */
	PROCWIDE_OUTCOME_CALLER_FAILED = 2, /* failed in the caller: nothing
					       changed anywhere */
	PROCWIDE_OUTCOME_UNREACHABLE = 3,   /* some thread unreachable: the
					       call ran nowhere */
	PROCWIDE_OUTCOME_MISMATCH = 4,	    /* ran everywhere, results differ */
};

struct procwide_report {
	size_t size;		  /* in: sizeof(struct procwide_report) */
	int outcome;		  /* enum procwide_outcome */
	int signal;		  /* the signal used; 0 with PROCWIDE_PTRACE_ALL
				     or when the call was refused first */
	long result;		  /* the caller's raw result (-errno on error) */
	size_t nthreads;	  /* entries in threads[] */
	struct procwide_thread *threads; /* owned by the report: release it
					    with procwide_report_release() */
	size_t nmismatch;	  /* threads with status MISMATCH */
	size_t nunreachable;	  /* threads BLOCKED, NO_ANSWER, QUEUE_FULL,
				     NO_PTRACE */
	uint64_t elapsed_ns;	  /* wall time of the whole call */
	char message[256];	  /* one line for people, "" on success */
	int mode;		  /* enum procwide_mode: how the call went */
	int proof;		  /* enum procwide_proof: how procwide knows
				     every thread ran it */
};

/*
 * The rich form.  `opts` may be NULL (defaults); `report` may be NULL.
 * When the arguments themselves are refused (-EFAULT, or -EINVAL from the
 * checks of sizes, policy, flags and signal), the report is not written.
 * Returns 0 when the call ran in every thread with the caller's result, or:
 *   -EFAULT        call is NULL
 *   -EINVAL        an unknown mismatch policy or flag, a size field too small,
 *                  or larger with non-zero bytes past what this library knows,
 *                  a bad signal, a system call that cannot be broadcast
 *   -ETIMEDOUT     a thread could not be reached by the deadline (nothing
 *                  changed; see report->threads for which and why)
 *   -EPERM (or another ptrace error)  a thread that did not answer the
 *                  signal could not be reached with ptrace either (nothing
 *                  changed; report->message says why)
 *   -ENOTRECOVERABLE  PROCWIDE_MISMATCH_REPORT and some thread's result
 *                  differed (the call ran everywhere)
 *   -EDEADLK, -EAGAIN, -ENOENT, -EACCES, -ENOMEM  as for procwide_syscall()
 *   the caller's own -errno when the call failed in the calling thread
 *                  (outcome CALLER_FAILED; nothing changed)
 * report->outcome tells these cases apart when a code is ambiguous.
 */
PROCWIDE_API int procwide_run(const struct procwide_call *call,
			      const struct procwide_opts *opts,
			      struct procwide_report *report);

/* Free what procwide_run() allocated in a report; safe to call twice. */
PROCWIDE_API void procwide_report_release(struct procwide_report *report);

/* A static name for a thread status ("ok", "blocked", ...), or "unknown". */
PROCWIDE_API const char *procwide_thread_status_name(int status);

/*
 * A line describing the last failure of a procwide call in this thread
 * ("" if the last call succeeded).  Valid until the next call in this thread.
 */
PROCWIDE_API const char *procwide_last_error(void);

/* ---- process-wide security ---- */
/*
 * One call per security change, applied to every thread of the process:
 * the kernel's own all-threads flag where it exists (seccomp TSYNC, Landlock
 * RESTRICT_SELF_TSYNC from ABI 8), procwide's engine otherwise; then every
 * thread's state is read back (from /proc/self/task/TID/status, or from each
 * thread's own result where /proc shows nothing) and compared with what was
 * asked.  Each returns 0 (or a documented non-negative value) or -errno:
 *   the caller's own -errno  the change failed in the calling thread, or the
 *                  kernel refused it: nothing changed anywhere
 *   -ETIMEDOUT, -EDEADLK, -EAGAIN, -ENOENT, -ENOMEM  from the engine
 *                  (procwide_run()): nothing changed (no_new_privs and the
 *                  bounding and ambient sets may take the direct path, see
 *                  enum procwide_mode: a thread found unreachable there
 *                  kills the process instead)
 *   -ESRCH         seccomp only: a thread has a filter of its own that is not
 *                  an ancestor of the caller's (report->tid names it when the
 *                  kernel says which); nothing changed
 *   -ENOTRECOVERABLE  the change was made, but a thread's state read back
 *                  does not match (report->tid, report->message): never a
 *                  silent success; the process must not go on as if
 *                  sandboxed
 *   -EINVAL        bad options or report size, unknown option flags
 *   -EACCES, -EMFILE, ...  /proc/self/task could not be opened for the check
 *                  (e.g. a Landlock domain denies it): nothing changed
 * A thread whose own result differs from the caller's during the engine
 * path kills the process (PROCWIDE_MISMATCH_KILL): it cannot go on half
 * restricted.
 */
struct sock_fprog; /* <linux/filter.h> */

/* How the change reached the other threads, in procwide_sec_report.path. */
enum procwide_sec_path {
	PROCWIDE_SEC_PATH_NONE = 0,   /* nothing applied (error, or no-op) */
	PROCWIDE_SEC_PATH_KERNEL = 1, /* the kernel's all-threads flag */
	PROCWIDE_SEC_PATH_ENGINE = 2, /* procwide's engine: the call in each thread */
};

/* procwide_sec_opts.flags */
/* seccomp: when TSYNC fails because a thread has a diverging filter of its
 * own, add the new filter to every thread on top of what each already has
 * (per-thread install through the engine) instead of failing with -ESRCH. */
#define PROCWIDE_SEC_SECCOMP_FORCE_ADD (1u << 0)

struct procwide_sec_opts {
	size_t size;		  /* sizeof(struct procwide_sec_opts) */
	unsigned int flags;	  /* PROCWIDE_SEC_* */
	unsigned int deadline_ms; /* engine path; 0: PROCWIDE_DEFAULT_DEADLINE_MS */
};

struct procwide_sec_report {
	size_t size;	   /* in: sizeof(struct procwide_sec_report) */
	int path;	   /* enum procwide_sec_path: the path taken (on error:
			      the one tried, NONE if refused before) */
	int verified;	   /* 1: every thread was checked after the change */
	size_t nthreads;   /* threads that have the change (0 when nothing
			      changed) */
	pid_t tid;	   /* a diverging seccomp thread, or the thread that
			      failed verification or the engine; 0 if none */
	char message[256]; /* one line for people, "" on success */
};

PROCWIDE_API int procwide_no_new_privs(void);
PROCWIDE_API int procwide_no_new_privs_ex(const struct procwide_sec_opts *opts,
					  struct procwide_sec_report *report);

/* Raw setresuid/setresgid/setgroups in every thread (raw clone() threads
 * too, which glibc's own set*id broadcast misses). (uid_t)-1 keeps a value. */
PROCWIDE_API int procwide_setresuid(uid_t ruid, uid_t euid, uid_t suid);
PROCWIDE_API int procwide_setresuid_ex(uid_t ruid, uid_t euid, uid_t suid,
				       const struct procwide_sec_opts *opts,
				       struct procwide_sec_report *report);
PROCWIDE_API int procwide_setresgid(gid_t rgid, gid_t egid, gid_t sgid);
PROCWIDE_API int procwide_setresgid_ex(gid_t rgid, gid_t egid, gid_t sgid,
				       const struct procwide_sec_opts *opts,
				       struct procwide_sec_report *report);
PROCWIDE_API int procwide_setgroups(size_t size, const gid_t *list);
PROCWIDE_API int procwide_setgroups_ex(size_t size, const gid_t *list,
				       const struct procwide_sec_opts *opts,
				       struct procwide_sec_report *report);

/* Capabilities, as 64-bit masks (bit n: capability n). */
PROCWIDE_API int procwide_cap_bound_drop(unsigned int cap);
PROCWIDE_API int procwide_cap_bound_drop_ex(unsigned int cap,
					    const struct procwide_sec_opts *opts,
					    struct procwide_sec_report *report);
PROCWIDE_API int procwide_capset(uint64_t effective, uint64_t permitted,
				 uint64_t inheritable);
PROCWIDE_API int procwide_capset_ex(uint64_t effective, uint64_t permitted,
				    uint64_t inheritable,
				    const struct procwide_sec_opts *opts,
				    struct procwide_sec_report *report);
/* op: the prctl(PR_CAP_AMBIENT) operations that change state. */
#define PROCWIDE_CAP_AMBIENT_RAISE 2
#define PROCWIDE_CAP_AMBIENT_LOWER 3
#define PROCWIDE_CAP_AMBIENT_CLEAR_ALL 4
PROCWIDE_API int procwide_cap_ambient(int op, unsigned int cap);
PROCWIDE_API int procwide_cap_ambient_ex(int op, unsigned int cap,
					 const struct procwide_sec_opts *opts,
					 struct procwide_sec_report *report);
PROCWIDE_API int procwide_securebits(unsigned int bits);
PROCWIDE_API int procwide_securebits_ex(unsigned int bits,
					const struct procwide_sec_opts *opts,
					struct procwide_sec_report *report);

/*
 * Landlock.  procwide_landlock_abi(): the running kernel's Landlock ABI
 * (>= 1), or -errno (-ENOSYS, -EOPNOTSUPP) when Landlock is unavailable.
 * procwide_landlock_restrict(): landlock_restrict_self(ruleset_fd, flags) in
 * every thread; Landlock's own flags (LOG_*) pass through; the TSYNC flag is
 * procwide's to add (ignored in flags).  On ABI >= 8 the kernel's
 * LANDLOCK_RESTRICT_SELF_TSYNC does it atomically and REPLACES each sibling's
 * own Landlock domain with the caller's; below, the engine runs it in each
 * thread, which STACKS the new layer on each thread's own domain.
 * When the caller has no_new_privs, every thread is given it first (as the
 * kernel's TSYNC does).
 * Test hook: the environment variable PROCWIDE_TEST_LANDLOCK_ABI (read with
 * secure_getenv, ignored in set-user-ID programs) overrides the ABI used to
 * choose between these two paths, and nothing else.
 */
PROCWIDE_API int procwide_landlock_abi(void);
PROCWIDE_API int procwide_landlock_restrict(int ruleset_fd, unsigned int flags);
PROCWIDE_API int procwide_landlock_restrict_ex(int ruleset_fd, unsigned int flags,
					       const struct procwide_sec_opts *opts,
					       struct procwide_sec_report *report);

/*
 * seccomp(SECCOMP_SET_MODE_FILTER, flags | TSYNC, prog) (plus TSYNC_ESRCH with
 * NEW_LISTENER, whose descriptor is then returned).  A thread with a
 * diverging filter of its own: -ESRCH and report->tid, unless
 * PROCWIDE_SEC_SECCOMP_FORCE_ADD adds the filter on top of every thread's
 * own (refused with -EINVAL together with NEW_LISTENER).
 */
PROCWIDE_API int procwide_seccomp_load(const struct sock_fprog *prog, unsigned int flags);
PROCWIDE_API int procwide_seccomp_load_ex(const struct sock_fprog *prog, unsigned int flags,
					  const struct procwide_sec_opts *opts,
					  struct procwide_sec_report *report);

/* ---- Landlock ruleset builder ---- */
/* Access rights, as in <linux/landlock.h> (ABI that introduced them). */
#define PROCWIDE_LL_FS_EXECUTE (1ULL << 0)	/* ABI 1 */
#define PROCWIDE_LL_FS_WRITE_FILE (1ULL << 1)
#define PROCWIDE_LL_FS_READ_FILE (1ULL << 2)
#define PROCWIDE_LL_FS_READ_DIR (1ULL << 3)
#define PROCWIDE_LL_FS_REMOVE_DIR (1ULL << 4)
#define PROCWIDE_LL_FS_REMOVE_FILE (1ULL << 5)
#define PROCWIDE_LL_FS_MAKE_CHAR (1ULL << 6)
#define PROCWIDE_LL_FS_MAKE_DIR (1ULL << 7)
#define PROCWIDE_LL_FS_MAKE_REG (1ULL << 8)
#define PROCWIDE_LL_FS_MAKE_SOCK (1ULL << 9)
#define PROCWIDE_LL_FS_MAKE_FIFO (1ULL << 10)
#define PROCWIDE_LL_FS_MAKE_BLOCK (1ULL << 11)
#define PROCWIDE_LL_FS_MAKE_SYM (1ULL << 12)
#define PROCWIDE_LL_FS_REFER (1ULL << 13)	 /* ABI 2 */
#define PROCWIDE_LL_FS_TRUNCATE (1ULL << 14)	 /* ABI 3 */
#define PROCWIDE_LL_FS_IOCTL_DEV (1ULL << 15)	 /* ABI 5 */
#define PROCWIDE_LL_FS_RESOLVE_UNIX (1ULL << 16) /* ABI 9 */
#define PROCWIDE_LL_NET_BIND_TCP (1ULL << 0)	 /* ABI 4 */
#define PROCWIDE_LL_NET_CONNECT_TCP (1ULL << 1)	 /* ABI 4 */
#define PROCWIDE_LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define PROCWIDE_LL_SCOPE_SIGNAL (1ULL << 1)		   /* ABI 6 */
#define PROCWIDE_LL_RESTRICT_LOG_SAME_EXEC_OFF (1U << 0)   /* ABI 7 */
#define PROCWIDE_LL_RESTRICT_LOG_NEW_EXEC_ON (1U << 1)	   /* ABI 7 */
#define PROCWIDE_LL_RESTRICT_LOG_SUBDOMAINS_OFF (1U << 2)  /* ABI 7 */

/* procwide_landlock_attr.flags */
/* Refuse (-EOPNOTSUPP) any right, scope, rule or flag the running kernel
 * lacks, instead of dropping it and reporting the downgrade. */
#define PROCWIDE_LL_STRICT (1u << 0)

struct procwide_landlock_attr {
	size_t size;		    /* sizeof(struct procwide_landlock_attr) */
	uint64_t handled_access_fs;  /* PROCWIDE_LL_FS_* denied unless allowed */
	uint64_t handled_access_net; /* PROCWIDE_LL_NET_* */
	uint64_t scoped;	    /* PROCWIDE_LL_SCOPE_* */
	unsigned int flags;	    /* PROCWIDE_LL_STRICT */
};

/* What a downgrade dropped, in procwide_landlock_downgrade.kind. */
enum procwide_ll_downgrade_kind {
	PROCWIDE_LL_DOWNGRADE_LANDLOCK = 0,   /* no Landlock at all: nothing enforced */
	PROCWIDE_LL_DOWNGRADE_HANDLED_FS = 1, /* rights from handled_access_fs */
	PROCWIDE_LL_DOWNGRADE_HANDLED_NET = 2,
	PROCWIDE_LL_DOWNGRADE_SCOPED = 3,
	PROCWIDE_LL_DOWNGRADE_PATH_RULE = 4,  /* rights from one path rule */
	PROCWIDE_LL_DOWNGRADE_PORT_RULE = 5,  /* a whole port rule */
	PROCWIDE_LL_DOWNGRADE_RESTRICT_FLAGS = 6,
};

struct procwide_landlock_downgrade {
	int kind;	  /* enum procwide_ll_downgrade_kind */
	int abi;	  /* the running kernel's ABI (<= 0: none) */
	int required_abi; /* the lowest ABI with every dropped bit */
	uint64_t dropped; /* the bits dropped */
	uint64_t subject; /* the port of a port rule; the index of a path rule */
};

struct procwide_landlock; /* opaque */

/* Creates a ruleset; 0 and *out, or -errno (-EOPNOTSUPP in strict mode when
 * something is missing; -EINVAL for unknown bits or sizes). */
PROCWIDE_API int procwide_landlock_open(const struct procwide_landlock_attr *attr,
					struct procwide_landlock **out);
/* Allows `access` beneath path (a directory, or a file for file rights). */
PROCWIDE_API int procwide_landlock_allow_path(struct procwide_landlock *ll,
					      const char *path, uint64_t access);
/* Allows `access` (PROCWIDE_LL_NET_*) on a TCP port. */
PROCWIDE_API int procwide_landlock_allow_port(struct procwide_landlock *ll,
					      uint64_t port, uint64_t access);
/* The ruleset descriptor (-1 when Landlock is unavailable, best effort). */
PROCWIDE_API int procwide_landlock_fd(const struct procwide_landlock *ll);
/* Every downgrade made so far, in order. */
PROCWIDE_API size_t procwide_landlock_ndowngrades(const struct procwide_landlock *ll);
PROCWIDE_API const struct procwide_landlock_downgrade *
procwide_landlock_downgrade(const struct procwide_landlock *ll, size_t i);
/* procwide_landlock_restrict_ex() with this ruleset (restrict flags the
 * kernel lacks are dropped and reported, or refused in strict mode).
 * Best effort without Landlock: 0 and report->path NONE. */
PROCWIDE_API int procwide_landlock_enforce(struct procwide_landlock *ll, unsigned int flags,
					   const struct procwide_sec_opts *opts,
					   struct procwide_sec_report *report);
PROCWIDE_API void procwide_landlock_close(struct procwide_landlock *ll);

/* ---- a whole policy, in the order that works ---- */
/* procwide_policy.apply: which steps to take. */
#define PROCWIDE_POLICY_NO_NEW_PRIVS (1u << 0)
#define PROCWIDE_POLICY_CAP_BOUND (1u << 1)	/* drop cap_bound_drop */
#define PROCWIDE_POLICY_SECUREBITS (1u << 2)
#define PROCWIDE_POLICY_GROUPS (1u << 3)
#define PROCWIDE_POLICY_GID (1u << 4)
#define PROCWIDE_POLICY_UID (1u << 5)
#define PROCWIDE_POLICY_CAPS (1u << 6)		/* capset eff/prm/inh */
#define PROCWIDE_POLICY_AMBIENT_CLEAR (1u << 7)
#define PROCWIDE_POLICY_LANDLOCK (1u << 8)
#define PROCWIDE_POLICY_SECCOMP (1u << 9)

struct procwide_policy {
	size_t size;	    /* sizeof(struct procwide_policy) */
	unsigned int apply; /* PROCWIDE_POLICY_* */
	uint64_t cap_bound_drop; /* capabilities to drop from the bounding set */
	unsigned int securebits;
	size_t ngroups;
	const gid_t *groups;
	gid_t rgid, egid, sgid;
	uid_t ruid, euid, suid;
	uint64_t cap_effective, cap_permitted, cap_inheritable;
	int landlock_fd; /* a ruleset (e.g. procwide_landlock_fd()) */
	unsigned int landlock_flags;
	const struct sock_fprog *seccomp_prog;
	unsigned int seccomp_flags;
};

/* Steps of procwide_apply_policy(), in the order they run. */
enum procwide_policy_step {
	PROCWIDE_STEP_NONE = 0,
	PROCWIDE_STEP_NO_NEW_PRIVS,
	PROCWIDE_STEP_CAP_BOUND,
	PROCWIDE_STEP_SECUREBITS,
	PROCWIDE_STEP_GROUPS,
	PROCWIDE_STEP_GID,
	PROCWIDE_STEP_UID,
	PROCWIDE_STEP_CAPS,
	PROCWIDE_STEP_AMBIENT_CLEAR,
	PROCWIDE_STEP_LANDLOCK,
	PROCWIDE_STEP_SECCOMP,
};

/*
 * Applies every step asked for, each process-wide and verified, in this
 * order: no_new_privs; bounding set, securebits (they need CAP_SETPCAP,
 * which the uid change may take away); groups, gid, then uid (groups and
 * gid need CAP_SETGID, which the uid change takes away); capset and the
 * ambient clear (after the uid change, which clears the effective set
 * unless securebits keep it); Landlock; seccomp last (a filter may deny
 * the system calls the earlier steps use).  Stops at the first error and
 * returns it; *failed_step (may be NULL) names the step, or NONE.  The steps
 * before it stay applied: undoing them is impossible by design.
 */
PROCWIDE_API int procwide_apply_policy(const struct procwide_policy *policy,
				       const struct procwide_sec_opts *opts,
				       struct procwide_sec_report *report,
				       int *failed_step);
/* A static name for a step ("uid", "landlock", ...), or "unknown". */
PROCWIDE_API const char *procwide_policy_step_name(int step);

/* ---- audit ---- */
/*
 * Per-thread security audit: reads what /proc/PID/task/TID/{status,comm,stat}
 * shows for every thread of a process and finds the fields where threads
 * disagree.  It only reads /proc: it changes nothing and stops no thread.
 */

/* The per-thread fields that are compared across threads. */
enum procwide_audit_field {
	PROCWIDE_AUDIT_NO_NEW_PRIVS = 0,	/* NoNewPrivs */
	PROCWIDE_AUDIT_SECCOMP = 1,		/* Seccomp (the mode) */
	PROCWIDE_AUDIT_SECCOMP_FILTERS = 2,	/* Seccomp_filters */
	PROCWIDE_AUDIT_UID = 3,			/* Uid, all four together */
	PROCWIDE_AUDIT_GID = 4,			/* Gid, all four together */
	PROCWIDE_AUDIT_GROUPS = 5,		/* Groups, in the listed order */
	PROCWIDE_AUDIT_CAP_EFF = 6,
	PROCWIDE_AUDIT_CAP_PRM = 7,
	PROCWIDE_AUDIT_CAP_INH = 8,
	PROCWIDE_AUDIT_CAP_BND = 9,
	PROCWIDE_AUDIT_CAP_AMB = 10,
	PROCWIDE_AUDIT_SPEC_STORE_BYPASS = 11,	  /* Speculation_Store_Bypass */
	PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH = 12, /* SpeculationIndirectBranch */
	PROCWIDE_AUDIT_NFIELDS = 13 /* in this header; later versions append */
};

/*
 * One thread.  The library allocates these and may append fields in later
 * versions: use them through the pointer procwide_audit_thread() returns,
 * never by value or with sizeof; `size` is the size the library filled in.
 */
struct procwide_audit_thread {
	size_t size;
	pid_t tid;
	char state;		/* from stat: 'R', 'S', 'D', 'T', 'Z', ... */
	char name[64];		/* comm, NUL-terminated, bytes as the kernel has them */
	uint32_t present;	/* bit (1u << field) set for each field this kernel
				   shows; an absent field reads as 0 or "" */
	int no_new_privs;	/* 0 or 1 */
	int seccomp;		/* 0 disabled, 1 strict, 2 filter */
	int seccomp_filters;	/* number of attached filters */
	uid_t uid[4];		/* real, effective, saved set, filesystem */
	gid_t gid[4];
	size_t ngroups;
	const gid_t *groups;	/* supplementary groups */
	uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
	char spec_store_bypass[64];	/* e.g. "thread force mitigated" */
	char spec_indirect_branch[64];	/* e.g. "conditional enabled" */
};

struct procwide_audit; /* opaque */

/*
 * Audit every thread of process `pid` (0: the calling process; a thread ID
 * audits the process that thread belongs to).  On success *out holds the
 * result, to be released with procwide_audit_free(), and 0 is returned.
 * A thread that exits during the audit is left out; the thread list is
 * re-read until it is consistent, so that no live thread is missing.
 * Errors (nothing is allocated, *out is left alone):
 *   -EINVAL  pid < 0, or out is NULL
 *   -ESRCH   no such process (or it exited during the audit)
 *   -EPERM, -EACCES  /proc denies access (e.g. mounted with hidepid=1)
 *   -ENOENT  /proc is not mounted
 *   -EAGAIN  the thread list kept changing; nothing consistent was read
 *   -EIO     /proc showed something this library cannot parse
 *   -ENOMEM, -EMFILE, -ENFILE, and other errors of open(2) and read(2)
 */
PROCWIDE_API int procwide_audit(pid_t pid, struct procwide_audit **out);

/* Release a result; NULL is allowed. */
PROCWIDE_API void procwide_audit_free(struct procwide_audit *audit);

/* The process ID audited (the thread group ID). */
PROCWIDE_API pid_t procwide_audit_pid(const struct procwide_audit *audit);

/* Number of threads, at least 1. */
PROCWIDE_API size_t procwide_audit_nthreads(const struct procwide_audit *audit);

/* Thread i (0 <= i < nthreads, in ascending TID order), or NULL. */
PROCWIDE_API const struct procwide_audit_thread *
procwide_audit_thread(const struct procwide_audit *audit, size_t i);

/* A static name for a field ("no_new_privs", "cap_bnd",
 * "speculation.store_bypass", ...), or NULL for an unknown field. */
PROCWIDE_API const char *procwide_audit_field_name(int field);

/*
 * Divergence.  For each field the threads are partitioned by value; a field
 * the kernel does not show counts as one value of its own.  Class 0 is the
 * majority value (on a tie: the class of the main thread, tid == pid, if it
 * is tied, else the one seen first); classes 1, 2, ... are the other values
 * in ascending order of their first thread.
 */
/* Number of distinct values of `field` (1 when uniform), 0 if unknown. */
PROCWIDE_API size_t procwide_audit_nvalues(const struct procwide_audit *audit,
					   int field);
/* The class of thread i's value, or -EINVAL for an unknown field or i. */
PROCWIDE_API int procwide_audit_value_class(const struct procwide_audit *audit,
					    int field, size_t i);
/* Number of fields with more than one value: 0 when every thread agrees. */
PROCWIDE_API size_t procwide_audit_ndivergent(const struct procwide_audit *audit);

#ifdef __cplusplus
}
#endif

#endif /* PROCWIDE_H */
