/* The lock that serialises procwide calls within a process.
 *
 * Not a pthread mutex, for two reasons.  A fork() (or a raw clone without
 * CLONE_VM) in another thread during a call copies a held lock into a child
 * whose holder does not exist: the word stores the holder's process id, and
 * a child sees a foreign id and takes the lock over.  And a call from a
 * signal handler that interrupted a call in the same thread must fail with
 * EDEADLK rather than wait for itself.  A holder that died mid-call is
 * detected (its tid is gone) and the lock taken over.  Waiting threads sleep in FUTEX_WAIT,
 * which procwide's signal interrupts, so a waiter still takes part in the
 * running call. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>

#define WAITERS 0x40000000u /* above PID_MAX_LIMIT (2^22) */

static _Atomic uint32_t lock_word;
static _Atomic pid_t owner_tid;

int procwide__lock(pid_t pid, pid_t tid)
{
	uint32_t mine = (uint32_t)pid;
	uint32_t w = 0;
	if (atomic_compare_exchange_strong(&lock_word, &w, mine))
		goto taken;
	for (;;) {
		w = atomic_load(&lock_word);
		if (w == 0) {
			/* Having waited, others may still wait: keep the flag. */
			if (atomic_compare_exchange_weak(&lock_word, &w, mine | WAITERS))
				break;
			continue;
		}
		if ((w & ~WAITERS) != mine) {
			/* Held by the process we were forked from. */
			if (atomic_compare_exchange_weak(&lock_word, &w, mine))
				break;
			continue;
		}
		pid_t owner = atomic_load(&owner_tid);
		if (owner == tid)
			return -EDEADLK;
		/* A holder that died mid-call (killed by a seccomp rule, or
		 * unwound by a signal handler's longjmp) never unlocks. */
		if (owner && pw_tgkill(pid, owner, 0) == -ESRCH &&
		    atomic_compare_exchange_strong(&owner_tid, &owner, 0)) {
			atomic_store(&lock_word, mine | WAITERS);
			break;
		}
		if (!(w & WAITERS) &&
		    !atomic_compare_exchange_weak(&lock_word, &w, w | WAITERS))
			continue;
		struct timespec patience = {0, 100 * 1000 * 1000};
		pw_futex_wait(&lock_word, w | WAITERS, &patience);
	}
taken:
	atomic_store(&owner_tid, tid);
	return 0;
}

void procwide__unlock(void)
{
	atomic_store(&owner_tid, 0);
	if (atomic_exchange(&lock_word, 0) & WAITERS)
		pw_futex_wake(&lock_word, 1);
}
