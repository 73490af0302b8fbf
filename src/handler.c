/* The code that runs inside every other thread.
 *
 * It is a signal handler that may interrupt any code at all, in threads made
 * by any runtime, including raw clone() threads that share their creator's
 * TLS.  So it touches no errno (raw system calls only), no TLS, no allocator
 * and no lock: only procwide__shared, through atomics, and futexes.  This file is
 * built without the stack protector and sanitizers, which read TLS. */
#include "call.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

PW_HIDDEN struct procwide__shared procwide__shared;

#ifndef SIG_BLOCK
#define SIG_BLOCK 0
#endif
#ifndef SIG_SETMASK
#define SIG_SETMASK 2
#endif
#define PW_SA_SIGINFO 4UL
#define PW_SA_NODEFER 0x40000000UL
#define PW_SA_RESETHAND 0x80000000UL

static uint64_t sigbit(int sig)
{
	return 1ULL << (sig - 1);
}

/* Hands a delivery that is not procwide's to the application's previous
 * disposition, as if procwide's handler were not there. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (sig < 1 || sig > PW_NSIG)
		return;
	struct pw_prev *prev = &procwide__shared.prev[sig];
	void *h = prev->handler;
	if (h == (void *)SIG_IGN)
		return;
	if (h == (void *)SIG_DFL) {
		/* The default action of a real-time signal is to end the
		 * process: restore it and re-send; the signal is blocked while
		 * this handler runs, so it takes effect when we return. */
		struct pw_ksigaction dfl = {0};
		dfl.handler = (void *)SIG_DFL;
		pw_rt_sigaction(sig, &dfl, NULL);
		pw_tgkill(pw_getpid(), pw_gettid(), sig);
		return;
	}
	/* Run it under the mask its own sigaction asked for; sigreturn puts
	 * back the thread's mask when this handler returns. */
	uint64_t mask = prev->mask;
	if (!(prev->flags & PW_SA_NODEFER))
		mask |= sigbit(sig);
	uint64_t cur;
	memcpy(&cur, &((ucontext_t *)uc)->uc_sigmask, sizeof cur);
	mask |= cur;
	pw_rt_sigprocmask(SIG_SETMASK, &mask, NULL);
	unsigned long flags = prev->flags;
	/* SA_RESETHAND: the disposition goes back to the default as the
	 * handler is entered, for the next delivery. */
	if (flags & PW_SA_RESETHAND)
		prev->handler = (void *)SIG_DFL;
	if (flags & PW_SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))h)(sig, si, uc);
	else
		((void (*)(int))h)(sig);
}

/* Runs the call in this thread and records its result (ARRIVED to DONE);
 * false if the caller has given up on the slot meanwhile.  Fail closed: a
 * thread that did not get the caller's result never returns to application
 * code in kill mode (always the policy on the direct path). */
static bool run_here(struct procwide__shared *s, struct pw_slot *slot, uint32_t gen)
{
	long r = pw_sys6(s->nr, s->args[0], s->args[1], s->args[2], s->args[3], s->args[4],
			 s->args[5]);
	slot->result = r;
	uint64_t arrived = pw_word(gen, PW_S_ARRIVED);
	if (!atomic_compare_exchange_strong(&slot->word, &arrived, pw_word(gen, PW_S_DONE)))
		return false;
	if (r != s->expected && s->kill_on_mismatch)
		procwide__die_mismatch(pw_gettid(), r, s->caller_tid, s->expected);
	return true;
}

void procwide__handler(int sig, siginfo_t *si, void *uc)
{
	struct procwide__shared *s = &procwide__shared;
	uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;

	if (si->si_code != SI_QUEUE || (v >> PW_INDEX_BITS) != s->secret) {
		chain(sig, si, uc);
		return;
	}
	/* Procwide's own: from this call, or a late one from an earlier call
	 * (which the generation check below turns away). */
	uint32_t idx = (uint32_t)(v & PW_INDEX_MASK);
	if (idx >= atomic_load_explicit(&s->nslots, memory_order_acquire))
		return;
	struct pw_slot *slot = pw_slot_at(idx);
	uint32_t gen = (uint32_t)si->si_errno;
	uint64_t expect = pw_word(gen, PW_S_SENT);
	if (atomic_load_explicit(&slot->word, memory_order_acquire) != expect)
		return;
	if (atomic_load_explicit(&slot->tid, memory_order_relaxed) != pw_gettid())
		return;
	if (!atomic_compare_exchange_strong(&slot->word, &expect,
					    pw_word(gen, PW_S_ARRIVED)))
		return;

	/* The direct path (the caller has already run the call and set the
	 * phase before sending any signal): run it now and go back to the
	 * application; "arrived" then counts threads that are done. */
	if (atomic_load_explicit(&s->phase, memory_order_acquire) == PW_DIRECT) {
		if (run_here(s, slot, gen) &&
		    atomic_fetch_add(&s->arrived, 1) + 1 >= atomic_load(&s->want))
			pw_futex_wake(&s->arrived, 1);
		return;
	}

	/* Arrived: from here until the caller releases us this thread runs
	 * nothing else, so it cannot create a thread that would escape. */
	uint32_t n = atomic_fetch_add(&s->arrived, 1) + 1;
	if (n >= atomic_load(&s->want))
		pw_futex_wake(&s->arrived, 1);

	/* Park.  Wake now and then to check that the caller is alive: a
	 * caller killed mid-call (a seccomp KILL_THREAD rule for the very
	 * call it runs, say) would otherwise leave every thread parked. */
	uint32_t ph;
	pid_t caller = s->caller_tid, pid = s->pid;
	while ((ph = atomic_load_explicit(&s->phase, memory_order_acquire)) == PW_GATHER) {
		struct timespec patience = {0, 100 * 1000 * 1000};
		if (pw_futex_wait(&s->phase, PW_GATHER, &patience) == -ETIMEDOUT &&
		    pw_tgkill(pid, caller, 0) == -ESRCH)
			return; /* nobody will release us: nothing was run */
	}
	/* Still this call's: a caller that took over the lock of a dead one
	 * may have reused the slot. */
	if (atomic_load_explicit(&slot->word, memory_order_acquire) != pw_word(gen, PW_S_ARRIVED))
		return;

	uint64_t arrived = pw_word(gen, PW_S_ARRIVED);
	if (ph == PW_GO) {
		if (!run_here(s, slot, gen))
			return; /* the caller gave up on this call: count nothing */
	} else if (!atomic_compare_exchange_strong(&slot->word, &arrived,
						   pw_word(gen, PW_S_RELEASED))) {
		return; /* idem: a later call may own the counter now */
	}
	if (atomic_fetch_sub(&s->remaining, 1) == 1)
		pw_futex_wake(&s->remaining, 1);
}

/* ---- the mismatch diagnostic, without stdio ------------------------------ */

static size_t put_str(char *b, size_t at, size_t cap, const char *str)
{
	while (*str && at < cap)
		b[at++] = *str++;
	return at;
}

static size_t put_long(char *b, size_t at, size_t cap, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0 && at < cap)
		b[at++] = '-';
	while (n && at < cap)
		b[at++] = tmp[--n];
	return at;
}

void procwide__die_mismatch(pid_t tid, long got, pid_t caller, long expected)
{
	char b[200];
	size_t n = 0, cap = sizeof b - 1;
	n = put_str(b, n, cap, "procwide: thread ");
	n = put_long(b, n, cap, tid);
	n = put_str(b, n, cap, " returned ");
	n = put_long(b, n, cap, got);
	n = put_str(b, n, cap, " but the calling thread ");
	n = put_long(b, n, cap, caller);
	n = put_str(b, n, cap, " returned ");
	n = put_long(b, n, cap, expected);
	n = put_str(b, n, cap, "; killing the process so that no thread runs half-changed\n");
	b[n] = '\0';
	procwide__die(b);
}

void procwide__die(const char *msg)
{
	/* Several threads may differ at once: one line, from the first. */
	static _Atomic int dying;
	size_t n = 0;
	/* volatile: a plain loop becomes a call to strlen, which code that
	 * runs here must not make (an ASan build's interceptor). */
	while (((const volatile char *)msg)[n])
		n++;
	if (atomic_exchange(&dying, 1) == 0)
		pw_write(2, msg, n);
	for (;;) {
		pw_sys3(SYS_kill, pw_getpid(), SIGKILL, 0);
		pw_sys3(SYS_exit_group, 137, 0, 0);
	}
}
