/* The calling thread's side of a call, shared by src/engine.c (the call,
 * the parked path, the waits and the report) and src/direct.c (the direct
 * path and its proof).  Everything here runs in the calling thread, under
 * the process's procwide lock. */
#ifndef PW_ENGINE_H
#define PW_ENGINE_H

#include "call.h"
#include "internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* What an attempt that stalled returns (not an errno: no system call or
 * helper can produce it). */
#define PW_STALLED (-4096 - 1)
/* What the direct path returns when it cannot prove that every thread ran
 * the call: it is then settled by parking. */
#define PW_UNPROVEN (-4096 - 2)
/* An attempt that made no progress for this long while some thread was
 * still alive but not parked is given up (nothing has changed yet) and
 * started again; the limit doubles with each attempt. */
#define PW_FIRST_STALL_NS 4000000ull

/* Caller-private bookkeeping, reused across calls (under the lock). */
struct pw_engine {
	uint32_t gen;
	uint32_t nused;	   /* slots used by this call */
	uint32_t *hash;	   /* open addressing: slot index + 1, 0 empty */
	uint32_t hcap;	   /* power of two */
	uint32_t reserved; /* slots with memory and index room */
	uint32_t nsent;	   /* signals queued and not known gone */
	uint32_t nunsent;  /* signals refused with EAGAIN, to retry */
	uint32_t nzombie;
	uint32_t nnew;	   /* threads found by the current sweep */
	uint32_t nseized;  /* threads stopped by the ptrace helper */
	uint32_t nkworker; /* io_uring workers found by the helper */
	uint32_t nmarked;  /* marked for the helper by the current sweep */
	uid_t uid;
	int signo;
	bool may_inject;   /* the ptrace helper may be used */
	bool inject_all;   /* ... for every thread, no signal at all */
	bool direct;	   /* this call takes the direct path */
	bool reprobe;	   /* check again which known threads block the signal */
	uint64_t patience; /* direct path: a wait without progress, ns */
	uint64_t started;  /* when the call began */
	uint32_t proof;	   /* direct path: proofs made, stamps slots */
	uint64_t deadline;
	int inject_error;  /* the first error of ptrace, kept for the whole
			      call (E.why says why) */
	pid_t why_tid;	   /* the thread it was for; 0: the helper's own */
	char why[200];	   /* and why */
	/* Threads ptrace refused in this call, by tid: an attempt that starts
	 * again does not ask for them again (the reason lasts: a debugger, a
	 * Landlock domain) and reports them as such. */
	struct pw_refused {
		pid_t tid;
		uint64_t ino;
	} *refused;
	uint32_t nrefused, crefused;
};
PW_HIDDEN extern struct pw_engine procwide__engine;
#define E procwide__engine

static inline uint64_t slot_word(uint32_t idx)
{
	return atomic_load_explicit(&pw_slot_at(idx)->word, memory_order_acquire);
}

static inline enum pw_slot_state slot_state(uint32_t idx)
{
	return (enum pw_slot_state)(slot_word(idx) & 0xff);
}

static inline void slot_set(uint32_t idx, enum pw_slot_state st)
{
	atomic_store_explicit(&pw_slot_at(idx)->word, pw_word(E.gen, st),
			      memory_order_release);
}

static inline bool slot_cas(uint32_t idx, enum pw_slot_state from, enum pw_slot_state to)
{
	uint64_t expect = pw_word(E.gen, from);
	return atomic_compare_exchange_strong(&pw_slot_at(idx)->word, &expect,
					      pw_word(E.gen, to));
}

/* The thread has what the call does: it ran it (in a handler, through
 * ptrace, or as the caller), or it never runs code again (a zombie, a
 * kernel worker). */
static inline bool slot_ran(enum pw_slot_state st)
{
	return st == PW_S_DONE || st == PW_S_INJ_DONE || st == PW_S_ZOMBIE ||
	       st == PW_S_KWORKER || st == PW_S_CALLER;
}

static inline pid_t slot_tid(uint32_t idx)
{
	return atomic_load_explicit(&pw_slot_at(idx)->tid, memory_order_relaxed);
}


/* A list of thread ids, with the inode numbers that identify their threads,
 * kept from one call to the next (allocated after a call, when nothing is
 * held). */
struct tid_list {
	pid_t *tids;
	uint64_t *inos;
	uint32_t n, cap;
};

/* proc lists an entry it could not instantiate (the task is being unhashed,
 * or memory ran out) with inode number 1: it identifies nothing. */
#define PW_INO_NONE 1u

/* src/engine.c */
PW_HIDDEN uint32_t procwide__find_tid(pid_t tid, uint32_t *pos);
/* The first thread that has not answered, or 0; *no_ptrace: and ptrace
 * could not reach it. */
PW_HIDDEN pid_t procwide__first_silent(bool *no_ptrace);
PW_HIDDEN void procwide__keep_tids(struct tid_list *l, bool (*keep)(enum pw_slot_state));
PW_HIDDEN int procwide__sweep_from(const struct tid_list *l);
PW_HIDDEN int procwide__sweep(void);
PW_HIDDEN int procwide__wait_arrivals(uint64_t deadline, uint64_t stall_ns, bool may_retry);
PW_HIDDEN void procwide__start_attempt(void);
PW_HIDDEN void procwide__on_injected(uint32_t idx, long result, int err, void *ctx);
PW_HIDDEN int procwide__release(enum pw_phase ph, uint64_t deadline);
PW_HIDDEN int procwide__prepare_for(const struct pw_request *req, struct pw_result *res,
				    uint32_t count, uint32_t at_least);
PW_HIDDEN int procwide__prepare(const struct pw_request *req, struct pw_result *res,
				uint32_t at_least);
PW_HIDDEN int procwide__gather_all(const struct pw_request *req, struct pw_result *res,
				   uint64_t deadline);
PW_HIDDEN void procwide__finish(const struct pw_request *req, struct pw_result *res);
/* Runs the call in the calling thread; false (res filled) if it failed. */
PW_HIDDEN bool procwide__run_in_caller(const struct pw_request *req, struct pw_result *res);

/* src/direct.c */
PW_HIDDEN bool procwide__direct_allowed(const struct pw_request *req);
PW_HIDDEN void procwide__run_seized_now(void);
PW_HIDDEN uint64_t procwide__ino_trust_ns(void);
/* Sizes the tables for a direct call: 0 or -errno. */
PW_HIDDEN int procwide__direct_prepare(const struct pw_request *req, struct pw_result *res);
PW_HIDDEN void procwide__run_direct(const struct pw_request *req, struct pw_result *res);
/* After every call: whether it went through with signals alone (the next
 * may then be direct), and its threads, kept for the next. */
PW_HIDDEN void procwide__direct_after(bool ok);

#endif
