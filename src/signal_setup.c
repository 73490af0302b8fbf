/* Choosing and installing the signal procwide uses.
 *
 * glibc reserves signals 32 and 33 (cancellation, set*id) and musl 32-34;
 * procwide never uses 32-34.  It picks a real-time signal at runtime, from
 * the top down (applications tend to count up from SIGRTMIN), preferring one
 * whose disposition is still SIG_DFL, i.e. one the application does not
 * handle.  Runtimes such as Go install a handler on every signal; there it
 * takes the highest and hands every delivery that is not procwide's to the
 * previous handler.  Before each call it checks that its handler is still
 * installed: an application that later takes the signal gets it, and
 * procwide moves to another. */
#include "call.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define PW_FIRST_SIGNAL 35

static int lowest_signal(void)
{
	return SIGRTMIN > PW_FIRST_SIGNAL ? SIGRTMIN : PW_FIRST_SIGNAL;
}

static bool is_ours(int sig)
{
	struct pw_ksigaction cur;
	if (pw_is_err(pw_rt_sigaction(sig, NULL, &cur)))
		return false;
	return cur.handler == (void *)procwide__handler;
}

static void make_secret(void)
{
	if (procwide__shared.secret)
		return;
	uint64_t r = 0;
	/* getrandom can fail only on a kernel without it (< 3.17) or a
	 * seccomp filter; the address of a stack variable and the pid are a
	 * weak fallback, and the secret only tells procwide's deliveries from
	 * the application's, it guards nothing. */
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint64_t)(uintptr_t)&r * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	r &= (1ULL << (64 - PW_INDEX_BITS)) - 1;
	procwide__shared.secret = r ? r : 1;
}

static int install(int sig)
{
	struct sigaction prev, act;
	memset(&act, 0, sizeof act);
	act.sa_sigaction = procwide__handler;
	/* SA_ONSTACK: Go and other runtimes require it of every handler on
	 * threads with small stacks.  SA_RESTART: an interrupted system call
	 * restarts where the kernel allows it.  The mask blocks everything
	 * while a thread is parked, the C library's own signals too (32-34,
	 * which sigfillset leaves out, so they are set by hand): musl's
	 * synccall handler waits, inside the thread it interrupts, until its
	 * caller is done, and its caller (every signal blocked) may be a
	 * thread procwide holds through ptrace -- a parked thread caught in
	 * that handler would never finish the call.  glibc's set*id caller
	 * waits with signals open, so it parks in turn and is answered after
	 * the call; a pthread_cancel cannot unwind a parked thread either. */
	act.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&act.sa_mask);
	uint64_t libc_sigs = 7ULL << 31; /* 32, 33, 34 */
	uint64_t word;
	memcpy(&word, &act.sa_mask, sizeof word);
	word |= libc_sigs;
	memcpy(&act.sa_mask, &word, sizeof word);
	for (int tries = 0; tries < 8; tries++) {
		if (sigaction(sig, NULL, &prev) != 0)
			return -errno;
		void *prev_h = (prev.sa_flags & SA_SIGINFO) ? (void *)prev.sa_sigaction
							    : (void *)prev.sa_handler;
		if (prev_h == (void *)procwide__handler) {
			/* Already ours (procwide used it before): its record of
			 * the application's disposition stands. */
			procwide__shared.signo = sig;
			return sig;
		}
		/* Publish what to chain to before the handler can run. */
		struct pw_prev *rec = &procwide__shared.prev[sig];
		rec->handler = prev_h;
		rec->flags = (unsigned long)prev.sa_flags;
		memcpy(&rec->mask, &prev.sa_mask, sizeof rec->mask);
		struct sigaction seen;
		if (sigaction(sig, &act, &seen) != 0)
			return -errno;
		void *seen_h = (seen.sa_flags & SA_SIGINFO) ? (void *)seen.sa_sigaction
							    : (void *)seen.sa_handler;
		if (seen_h == prev_h && seen.sa_flags == prev.sa_flags) {
			procwide__shared.signo = sig;
			return sig;
		}
		/* Another thread changed it in between: put theirs back. */
		sigaction(sig, &seen, NULL);
	}
	return -EAGAIN;
}

int procwide__signal_ensure(int requested)
{
	make_secret();
	if (requested) {
		if (requested < lowest_signal() || requested > SIGRTMAX)
			return -EINVAL;
		if (procwide__shared.signo == requested && is_ours(requested))
			return requested;
		return install(requested);
	}
	if (procwide__shared.signo && is_ours(procwide__shared.signo))
		return procwide__shared.signo;
	int taken = procwide__shared.signo;
	for (int pass = 0; pass < 2; pass++) {
		for (int sig = SIGRTMAX; sig >= lowest_signal(); sig--) {
			struct pw_ksigaction cur;
			if (sig == taken || pw_is_err(pw_rt_sigaction(sig, NULL, &cur)))
				continue;
			/* First pass: a signal nobody handles.  Second: any not
			 * ignored, chaining to its handler. */
			if (pass == 0 ? cur.handler == (void *)SIG_DFL
				      : cur.handler != (void *)SIG_IGN)
				return install(sig);
		}
	}
	return -EAGAIN;
}
