/* The state shared between a calling thread and the signal handler that
 * runs in every other thread.
 *
 * It is one static object, reused by every call, so the handler never
 * touches memory that a call could free under it: a late signal (from a call
 * that gave up on a thread that blocked the signal, say) finds a slot whose
 * generation no longer matches and returns.  Slots live in fixed chunks that
 * never move once published, so the array can grow while handlers read it. */
#ifndef PW_CALL_H
#define PW_CALL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "raw.h"

#define PW_NSIG 64
#define PW_CHUNK_SHIFT 8
#define PW_CHUNK_SLOTS (1u << PW_CHUNK_SHIFT)
/* 4,194,304 slots: the kernel's PID_MAX_LIMIT, so one slot per possible
 * thread always fits. */
#define PW_MAX_CHUNKS 16384u
#define PW_INDEX_BITS 24
#define PW_INDEX_MASK ((1u << PW_INDEX_BITS) - 1)

/* A slot's state, in the low byte of slot->word; the call's generation sits
 * above it, so a compare-and-swap can never act on a slot that has since
 * been reused by a later call (no ABA). */
enum pw_slot_state {
	PW_S_FREE = 0,
	PW_S_SENT = 1,	    /* signal queued, not arrived */
	PW_S_ARRIVED = 2,   /* parked in the handler */
	PW_S_DONE = 3,	    /* ran the call; result valid */
	PW_S_RELEASED = 4,  /* released without running it */
	PW_S_CANCELLED = 5, /* never arrived; a late arrival is turned away */
	PW_S_GONE = 6,	    /* exited before arriving */
	PW_S_ZOMBIE = 7,    /* a zombie: will never run code */
	PW_S_CALLER = 8,    /* the calling thread */
	PW_S_UNSENT = 9,    /* signal could not be queued (EAGAIN) */
	/* Caller-only states of threads reached through ptrace; the handler
	 * acts only on SENT, so these also turn away a late signal. */
	PW_S_INJECTING = 10, /* being handed to the ptrace helper */
	PW_S_SEIZED = 11,    /* stopped by the helper: parked */
	PW_S_INJ_DONE = 12,  /* ran the call through ptrace; result valid */
	PW_S_NOPTRACE = 13,  /* ptrace could not reach it */
	PW_S_SEIZING = 14,   /* asked of the helper, no answer yet */
	PW_S_KWORKER = 15,   /* an io_uring worker: runs no user code */
};

static inline uint64_t pw_word(uint32_t gen, enum pw_slot_state st)
{
	return ((uint64_t)gen << 8) | (uint64_t)st;
}

struct pw_slot {
	_Atomic uint64_t word;
	_Atomic pid_t tid;
	long result; /* written by the handler before DONE (release) */
	/* The caller's alone (the handler never reads them): the inode number
	 * of /proc/self/task/TID when the thread was found, which tells this
	 * thread from a later one given the same tid (src/direct.c, the
	 * direct path's proof), and the last proof that counted it. */
	uint64_t ino;
	uint32_t proof;
	bool refused; /* ptrace refused it in this call: not asked again */
	bool returned; /* ran the call on the return path (one stop) */
};

enum pw_phase {
	PW_GATHER = 0, /* threads arrive and park */
	PW_GO = 1,     /* run the call */
	PW_ABORT = 2,  /* return without running it */
	PW_DIRECT = 3, /* the direct path: run the call on arrival, no park */
};

struct procwide__shared {
	/* Set once, before the handler is first installed. */
	uint64_t secret; /* identifies procwide's own deliveries */

	/* For every signal procwide has put its handler on, the application's
	 * disposition before, to which every delivery that is not procwide's
	 * is handed (the handler stays on a signal procwide moved away from). */
	struct pw_prev {
		void *handler;
		unsigned long flags;
		uint64_t mask;
	} prev[PW_NSIG + 1];
	int signo;

	/* Per call, written by the caller before the phase that reads them. */
	pid_t pid;
	pid_t caller_tid;
	long nr;
	long args[6];
	long expected;	      /* the caller's result, valid from PW_GO */
	int kill_on_mismatch;

	_Atomic uint32_t phase;	    /* futex: enum pw_phase */
	_Atomic uint32_t arrived;   /* futex: slots that reached ARRIVED */
	_Atomic uint32_t want;	    /* arrivals that complete the gather */
	_Atomic uint32_t remaining; /* futex: parked threads not yet done */
	_Atomic uint32_t nslots;    /* slots published (high-water mark) */
	struct pw_slot *_Atomic chunks[PW_MAX_CHUNKS];
};

PW_HIDDEN extern struct procwide__shared procwide__shared;

/* The SA_SIGINFO handler installed for procwide__shared.signo (src/handler.c). */
PW_HIDDEN void procwide__handler(int sig, siginfo_t *si, void *uc);

/* Writes the mismatch diagnostic and kills the process (async-signal-safe). */
PW_HIDDEN __attribute__((noreturn)) void procwide__die_mismatch(pid_t tid, long got,
							 pid_t caller,
							 long expected);

/* Writes msg to stderr and kills the process (async-signal-safe). */
PW_HIDDEN __attribute__((noreturn)) void procwide__die(const char *msg);

static inline struct pw_slot *pw_slot_at(uint32_t idx)
{
	struct pw_slot *chunk = atomic_load_explicit(
		&procwide__shared.chunks[idx >> PW_CHUNK_SHIFT], memory_order_acquire);
	return &chunk[idx & (PW_CHUNK_SLOTS - 1)];
}

#endif
