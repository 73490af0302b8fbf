/* The ptrace helper process.
 *
 * It is a process that shares the calling process's memory (clone with
 * CLONE_VM) or, for a policy's session, a copy of it (see src/inject.c),
 * started while other threads may be parked holding C library locks (the
 * allocator's, stdio's), so it uses raw system calls only, and only the
 * memory the caller mapped for it: its stack and struct pw_helper.  It is
 * single-purpose and short-lived: it dies with the calling thread
 * (PR_SET_PDEATHSIG), keeps only its socket, cannot gain privileges
 * (no_new_privs), exits at once on any error, and exits when the call
 * ends.  Built like src/handler.c, without stack protector or sanitizers
 * (the build checks it calls nothing outside the library), and it never
 * reads %fs: the thread pointer it has is the calling thread's. */
#include "inject.h"
#include "arch/x86_64/inject_arch.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>

#define PW_PTRACE_PEEKTEXT 1 /* raw: the word is stored at `data` */
#define PW_PTRACE_PEEKDATA 2 /* raw: the word is stored at `data` */
#define PW_PTRACE_CONT 7
#define PW_PTRACE_DETACH 17
#define PW_PTRACE_SYSCALL 24
#define PW_PTRACE_SEIZE 0x4206
#define PW_PTRACE_INTERRUPT 0x4207
#define PW_PTRACE_GETSIGMASK 0x420a
#define PW_PTRACE_SETSIGMASK 0x420b
#define PW_PTRACE_GETREGSET 0x4204
#define PW_PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#define PW_PTRACE_O_TRACESYSGOOD 1
#define PW_PTRACE_EVENT_STOP 128
#define PW_WALL 0x40000000

struct held {
	pid_t tid;
	int seized;
	int masked;	       /* mask replaced: put h->mask back on detach */
	int have_regs;	       /* saved/resume are valid: put resume back */
	int err;	       /* run_all: 0, or how this thread failed */
	int returns;	       /* run_all: takes the return path */
	uint64_t mask;	       /* the thread's signal mask */
	struct pw_regs saved;  /* registers at the stop */
	struct pw_regs resume; /* what to put back (saved, restart applied) */
};

static long ptrace4(long req, pid_t tid, long addr, long data)
{
	return pw_sys6(SYS_ptrace, req, tid, addr, data, 0, 0);
}

static void die_now(void)
{
	for (;;)
		pw_sys3(SYS_exit_group, 1, 0, 0);
}

/* Everything the helper keeps, in the memory the caller mapped for it (no
 * static variable: a helper that shares the memory shares them with the
 * caller). */
struct pw_helper {
	int sock;
	pid_t parent;
	uint32_t cap;	/* entries in t[] */
	int shared;	/* started with CLONE_VM */
	/* The frames area of the return path (src/inject.c), cap slots
	 * after its header; NULL: not taken (a copy, or no memory). */
	struct pw_ret_hdr *frames;
	uint32_t frames_cap;
	int shstk;	/* the CPU has shadow stacks: ask each thread */
	/* Replies are sent in batches of up to PW_INJECT_BATCH per message:
	 * one wake-up of the caller per batch, not per thread. */
	uint32_t nout;
	struct pw_inject_rep out[PW_INJECT_BATCH];
	struct held t[];
};

size_t procwide__inject_helper_size(uint32_t cap)
{
	return sizeof(struct pw_helper) + (size_t)cap * sizeof(struct held);
}

void *procwide__inject_helper_init(void *mem, int sock, pid_t parent, uint32_t cap, int shared,
				   void *frames, uint32_t frames_cap)
{
	struct pw_helper *H = mem;
	H->sock = sock;
	H->parent = parent;
	H->cap = cap;
	H->shared = shared;
	H->frames = frames; /* NULL for a copy (src/inject.c) */
	H->frames_cap = frames_cap;
	H->shstk = pw_arch_cpu_has_shstk();
	H->nout = 0;
	return H;
}

static void flush(struct pw_helper *H)
{
	long len = (long)(H->nout * sizeof H->out[0]);
	if (H->nout && pw_write(H->sock, H->out, (size_t)len) != len)
		die_now(); /* the caller is gone or confused: stop here */
	H->nout = 0;
}

static void send_rep(struct pw_helper *H, struct pw_inject_rep r)
{
	H->out[H->nout++] = r;
	if (H->nout == PW_INJECT_BATCH || r.last)
		flush(H);
}

static void reply_tid(struct pw_helper *H, int err, uint32_t idx, long result, int last, int stage,
		      pid_t tid)
{
	send_rep(H, (struct pw_inject_rep){err, idx, result, last, stage, tid, 0});
}

static void reply(struct pw_helper *H, int err, uint32_t idx, long result, int last, int stage)
{
	reply_tid(H, err, idx, result, last, stage, 0);
}

/* h takes the return path: its result comes through the frames area. */
static void reply_deferred(struct pw_helper *H, uint32_t idx)
{
	send_rep(H, (struct pw_inject_rep){0, idx, 0, 0, PW_STAGE_NONE, 0, 1});
}

/* Waits for the next stop of h->tid that the helper asked for: the stop
 * PTRACE_INTERRUPT causes (event_stop), or a system call stop.  A signal
 * that reaches the thread before procwide holds it is delivered as usual
 * (as if it came just before); once held, the thread blocks every signal,
 * so nothing is taken from its queue.  Returns the status, or -ESRCH if the
 * thread has gone. */
static long wait_stop(struct held *h, int event_stop)
{
	for (;;) {
		int st = 0;
		long r = pw_sys6(SYS_wait4, h->tid, (long)&st, PW_WALL, 0, 0, 0);
		if (r == -EINTR)
			continue;
		if (pw_is_err(r))
			return r;
		if ((st & 0x7f) != 0x7f) /* exited or killed */
			return -ESRCH;
		int sig = (st >> 8) & 0xff;
		int event = (st >> 16) & 0xff;
		if (event_stop ? event == PW_PTRACE_EVENT_STOP : sig == (SIGTRAP | 0x80))
			return st;
		/* A signal-delivery stop: let the signal through. */
		long deliver = event == 0 ? sig : 0;
		if (pw_is_err(ptrace4(event_stop ? PW_PTRACE_CONT : PW_PTRACE_SYSCALL, h->tid, 0,
				      deliver)))
			return -ESRCH;
	}
}

/* Asks the kernel to stop h->tid; seize_finish() waits for the stop. */
static int seize_start(struct held *h, pid_t pid, int *stage)
{
	*stage = PW_STAGE_SEIZE;
	h->seized = 0;
	h->masked = 0;
	h->have_regs = 0;
	h->returns = 0;
	/* Checked again once it is stopped; this first check keeps a tid
	 * reused by another process from being interrupted at all.  Only
	 * ESRCH means gone: a check refused (a Landlock domain scoping
	 * signals, an LSM) proves nothing, and the thread is not touched. */
	long alive = pw_tgkill(pid, h->tid, 0);
	if (alive == -ESRCH)
		return -ESRCH;
	if (pw_is_err(alive)) {
		*stage = PW_STAGE_TGID;
		return (int)alive;
	}
	/* TRACESYSGOOD also keeps a release by exit from sending SIGTRAP
	 * (see let_go). */
	long r = ptrace4(PW_PTRACE_SEIZE, h->tid, 0, PW_PTRACE_O_TRACESYSGOOD);
	if (pw_is_err(r))
		return (int)r;
	h->seized = 1;
	*stage = PW_STAGE_STOP;
	r = ptrace4(PW_PTRACE_INTERRUPT, h->tid, 0, 0);
	return pw_is_err(r) ? (int)r : 0;
}

/* How h, stopped in a system call, entered the kernel: the instruction
 * before its pc, read in the word that ends there (or the one that starts
 * there, should the code begin less than a word before the pc). */
static enum pw_arch_entry entry_of(const struct held *h)
{
	unsigned long w, pc = pw_arch_pc(&h->saved);
	if (!pw_is_err(ptrace4(PW_PTRACE_PEEKTEXT, h->tid, (long)(pc - sizeof w), (long)&w)))
		return pw_arch_entry_ending(w);
	if (!pw_is_err(ptrace4(PW_PTRACE_PEEKTEXT, h->tid, (long)(pc - PW_ARCH_ENTRY_LEN), (long)&w)))
		return pw_arch_entry_starting(w);
	return PW_ENTRY_UNKNOWN;
}

/* A thread stopped in user code inside a restartable sequence (rseq(2))
 * must resume at the sequence's abort handler, as the kernel makes it do
 * after any preemption or signal there: resumed at the gadget, the kernel
 * sees it outside the sequence and clears rseq_cs, and put back in the
 * middle of it the thread would commit as if it had not been stopped.  The
 * abort handler is taken only if it carries the registered signature in
 * the 4 bytes before it, as the kernel checks. */
static void rseq_abort(struct held *h)
{
	struct {
		uint64_t abi_pointer;
		uint32_t abi_size, signature, flags, pad;
	} conf = {0};
	if (pw_is_err(ptrace4(PW_PTRACE_GET_RSEQ_CONFIGURATION, h->tid, sizeof conf, (long)&conf)) ||
	    !conf.abi_pointer)
		return; /* before Linux 5.13, or no rseq area */
	uint64_t cs = 0, start = 0, len = 0, abort_ip = 0, sig = 0;
	/* struct rseq: rseq_cs at 8; struct rseq_cs: start_ip at 8,
	 * post_commit_offset at 16, abort_ip at 24. */
	if (pw_is_err(ptrace4(PW_PTRACE_PEEKDATA, h->tid, (long)(conf.abi_pointer + 8), (long)&cs)) ||
	    !cs || pw_is_err(ptrace4(PW_PTRACE_PEEKDATA, h->tid, (long)(cs + 8), (long)&start)) ||
	    pw_is_err(ptrace4(PW_PTRACE_PEEKDATA, h->tid, (long)(cs + 16), (long)&len)) ||
	    pw_is_err(ptrace4(PW_PTRACE_PEEKDATA, h->tid, (long)(cs + 24), (long)&abort_ip)))
		return;
	if (pw_arch_pc(&h->saved) - start >= len)
		return; /* not inside it */
	if (pw_is_err(ptrace4(PW_PTRACE_PEEKDATA, h->tid, (long)(abort_ip - 4), (long)&sig)) ||
	    (uint32_t)sig != conf.signature)
		return;
	pw_arch_set_pc(&h->resume, abort_ip);
}

/* A thread found in the return path's stub has run the call of an
 * earlier procwide call and not yet returned from it (rt_sigreturn): let
 * it finish, from one system call stop to the next (it blocks every
 * signal there), until it is back in its own code, held at the exit stop
 * of its rt_sigreturn with what the frame put back.  Its earlier call is
 * over (the caller waited for its result), so a thread still before the
 * tail, in that call, is refused. */
static int step_out_of_stub(struct held *h)
{
	unsigned long pc = pw_arch_pc(&h->saved);
	if (!pw_arch_in_stub_tail(pc) ||
	    (pc == (unsigned long)(uintptr_t)procwide__inject_stub_tail &&
	     pw_arch_in_syscall(&h->saved)))
		return -EBUSY; /* before or in the call */
	for (int k = 0; k < 8; k++) {
		long r = ptrace4(PW_PTRACE_SYSCALL, h->tid, 0, 0);
		if (!pw_is_err(r))
			r = wait_stop(h, 0);
		if (!pw_is_err(r))
			r = ptrace4(PW_PTRACE_GETREGS, h->tid, 0, (long)&h->saved);
		if (pw_is_err(r))
			return (int)r;
		if (!pw_arch_in_stub(pw_arch_pc(&h->saved)))
			return 0;
	}
	return -EBUSY;
}

static int seize_finish(struct held *h, pid_t pid, int *stage)
{
	*stage = PW_STAGE_STOP;
	long r = wait_stop(h, 1);
	if (pw_is_err(r))
		return (int)r;
	/* Never trust a tid: now that it is stopped and cannot exit and be
	 * reused, check that it belongs to the calling process (the kernel
	 * checks the thread group for tgkill). */
	*stage = PW_STAGE_TGID;
	r = pw_tgkill(pid, h->tid, 0);
	if (pw_is_err(r))
		return (int)r; /* ESRCH: gone; another error: a refusal */
	*stage = PW_STAGE_REGS;
	r = ptrace4(PW_PTRACE_GETREGS, h->tid, 0, (long)&h->saved);
	if (!pw_is_err(r) && pw_arch_in_stub(pw_arch_pc(&h->saved)))
		r = step_out_of_stub(h);
	if (!pw_is_err(r))
		r = ptrace4(PW_PTRACE_GETSIGMASK, h->tid, 8, (long)&h->mask);
	if (pw_is_err(r))
		return (int)r;
	if (pw_arch_is_kernel_worker(&h->saved))
		return PW_INJ_KERNEL_WORKER; /* detached as it was */
	if (!pw_arch_is_64bit(&h->saved)) {
		*stage = PW_STAGE_ARCH;
		return -EINVAL;
	}
	pw_arch_resume_regs(&h->resume, &h->saved,
			    pw_arch_resume_needs_entry(&h->saved) ? entry_of(h) : PW_ENTRY_UNKNOWN);
	if (!pw_arch_in_syscall(&h->saved))
		rseq_abort(h);
	h->have_regs = 1;
	return 0;
}

static void detach(struct held *h)
{
	if (h->have_regs)
		ptrace4(PW_PTRACE_SETREGS, h->tid, 0, (long)&h->resume);
	if (h->masked)
		ptrace4(PW_PTRACE_SETSIGMASK, h->tid, 8, (long)&h->mask);
	ptrace4(PW_PTRACE_DETACH, h->tid, 0, 0);
	h->seized = 0;
}

/* Whether h can take the return path (src/arch/x86_64/inject_arch.h) for
 * this call; if so, writes its frame and points it at the stub, which it
 * runs once the helper has gone.  A signal its mask lets through may come
 * while it is held; the frame restarts its call as the kernel does when no
 * handler runs, and the signal is then taken on the way back.  That is
 * what the kernel does too if the signal has no handler, or one with
 * SA_RESTART and the call restarts after handlers (not -ERESTARTNOHAND);
 * otherwise the kernel ends the call with EINTR, and the thread keeps the
 * stops, where the kernel decides as it lets it go. */
static bool send_on_return_path(struct pw_helper *H, uint32_t i, const struct pw_inject_req *q)
{
	struct held *h = &H->t[i];
	uint64_t open = ~(h->mask | PW_SIG_UNBLOCKABLE);
	/* Only a call the frame restarts can differ: stopped in user code,
	 * or in a call that has returned, a signal taken on the way back is
	 * taken as the kernel takes it. */
	if (pw_arch_restart_depends_on_handlers(&h->resume) &&
	    ((open & ~q->restartable) ||
	     ((open & q->handled) && pw_arch_restarts_unless_handled(&h->resume))))
		return false;
	struct pw_ret_slot *slot = pw_ret_slot_at(H->frames, H->frames_cap, i);
	if (H->shstk) {
		/* The thread's features; EINVAL: a kernel without shadow
		 * stacks.  Asked of each thread: one may have turned its own
		 * off. */
		unsigned long features = 1;
		long r = ptrace4(PW_PTRACE_ARCH_PRCTL, h->tid, (long)&features, PW_ARCH_SHSTK_STATUS);
		if (r != -EINVAL && (pw_is_err(r) || (features & 1)))
			return false;
	}
	if (pw_arch_restart_maybe(&h->resume)) {
		unsigned long w;
		if (pw_is_err(ptrace4(PW_PTRACE_PEEKTEXT, h->tid, (long)pw_arch_pc(&h->resume),
				      (long)&w)) ||
		    pw_arch_restart_at(&h->resume, w))
			return false; /* it keeps the stops */
	}
	struct {
		void *base;
		unsigned long len;
	} iov = {slot->fpstate, (sizeof slot->fpstate - 4) & ~7UL}; /* whole words, MAGIC2 after */
	const unsigned long asked = iov.len;
	/* A length as long as asked may be a state cut short. */
	if (pw_is_err(ptrace4(PW_PTRACE_GETREGSET, h->tid, PW_NT_X86_XSTATE, (long)&iov)) ||
	    iov.len >= asked || pw_arch_seal_xstate(slot->fpstate, iov.len, sizeof slot->fpstate) != 0 ||
	    pw_arch_fill_frame(&slot->frame, &h->resume, h->mask, slot->fpstate) != 0)
		return false;
	volatile struct pw_ret_slot *vs = slot;
	vs->expected = q->expected;
	vs->kill_on_mismatch = q->kill_on_mismatch ? 1 : 0;
	vs->tid = h->tid;
	vs->caller = q->caller;
	vs->done = 0;
	struct pw_regs regs;
	pw_regs_copy(&regs, &h->saved);
	pw_arch_prepare_return(&regs, q->nr, q->args, slot, H->frames);
	return !pw_is_err(ptrace4(PW_PTRACE_SETREGS, h->tid, 0, (long)&regs));
}

/* Runs the call in every held thread.  Threads that can take the return
 * path are sent on it, and run the call once the helper has exited; the
 * others are started towards the call's entry stop at once, and their
 * stops are then taken in order: the stops overlap on every CPU instead of
 * costing a round trip each. */
static void run_all(struct pw_helper *H, const struct pw_inject_req *q)
{
	struct held *t = H->t;
	uint32_t returning = 0;
	/* The same for every thread: the caller asked for it (not on the
	 * direct path), there is a frames area (a helper that shares the
	 * memory; it holds H->cap slots or more), and the call installs no
	 * seccomp filter that would judge the stub's futex and rt_sigreturn. */
	bool may_return = q->may_return && H->frames && H->frames_cap >= H->cap &&
			  !pw_arch_call_may_filter(q->nr, q->args);
	for (uint32_t i = 0; i < H->cap; i++) {
		if (!t[i].seized)
			continue;
		t[i].err = 0;
		/* Every signal blocked while it runs the call, so that none is
		 * taken from its queue on the way (they stay pending with their
		 * siginfo); the mask is put back at the exit stop, or by the
		 * frame.  Only here: a helper that dies while merely holding
		 * threads leaves their masks as they were.  Set even for a
		 * thread that blocks everything already (SIGKILL and SIGSTOP
		 * are never in a mask): in ppoll, pselect6, epoll_pwait,
		 * io_uring_enter or sigsuspend the mask it runs under is the
		 * call's temporary one, and PTRACE_GETSIGMASK gave the one the
		 * call puts back (TIF_RESTORE_SIGMASK).  Setting it drops the
		 * temporary mask; the call, restarted, sets it again. */
		uint64_t all = ~0ULL;
		if (pw_is_err(ptrace4(PW_PTRACE_SETSIGMASK, t[i].tid, 8, (long)&all))) {
			t[i].err = -ESRCH;
			continue;
		}
		t[i].masked = (t[i].mask | PW_SIG_UNBLOCKABLE) != all;
		t[i].returns = may_return && send_on_return_path(H, i, q);
		if (t[i].returns) {
			/* The registers it is let go with are the stub's; its
			 * frame puts back the rest, the mask too. */
			t[i].have_regs = 0;
			t[i].masked = 0;
			returning++;
			continue;
		}
		struct pw_regs regs;
		pw_regs_copy(&regs, &t[i].saved);
		pw_arch_prepare_call(&regs, q->nr, q->args);
		if (pw_is_err(ptrace4(PW_PTRACE_SETREGS, t[i].tid, 0, (long)&regs)) ||
		    pw_is_err(ptrace4(PW_PTRACE_SYSCALL, t[i].tid, 0, 0)))
			t[i].err = -ESRCH;
	}
	if (returning) {
		/* Nothing runs the stub before the helper exits. */
		volatile struct pw_ret_hdr *hdr = H->frames;
		hdr->count = 0;
		hdr->target = returning;
	}
	for (uint32_t i = 0; i < H->cap; i++) /* entry stops */
		if (t[i].seized && !t[i].returns && !t[i].err &&
		    (pw_is_err(wait_stop(&t[i], 0)) ||
		     pw_is_err(ptrace4(PW_PTRACE_SYSCALL, t[i].tid, 0, 0))))
			t[i].err = -ESRCH;
	for (uint32_t i = 0; i < H->cap; i++) { /* exit stops */
		if (!t[i].seized)
			continue;
		if (t[i].returns) {
			reply_deferred(H, i);
			continue;
		}
		struct pw_regs after;
		if (!t[i].err && pw_is_err(wait_stop(&t[i], 0)))
			t[i].err = -ESRCH;
		if (!t[i].err && pw_is_err(ptrace4(PW_PTRACE_GETREGS, t[i].tid, 0, (long)&after)))
			t[i].err = -EIO;
		/* Put everything back at once: should this process die now,
		 * the thread resumes exactly where it was. */
		if (!t[i].err && pw_is_err(ptrace4(PW_PTRACE_SETREGS, t[i].tid, 0, (long)&t[i].resume)))
			t[i].err = -EIO;
		if (!t[i].err)
			t[i].have_regs = 0; /* put back already: detach needs not */
		if (t[i].masked &&
		    !pw_is_err(ptrace4(PW_PTRACE_SETSIGMASK, t[i].tid, 8, (long)&t[i].mask)))
			t[i].masked = 0;
		else if (t[i].masked && !t[i].err)
			t[i].err = -EIO; /* the caller ends the process */
		reply(H, t[i].err, i, t[i].err ? 0 : pw_arch_result(&after), 0,
		      t[i].err ? PW_STAGE_RUN : PW_STAGE_NONE);
	}
	reply(H, 0, 0, 0, 1, PW_STAGE_NONE);
}

/* Lets the held threads go: every one (`all`, a helper that stays), or
 * only those whose registers or mask are not back yet, before the helper
 * exits.  The kernel lets every other thread go as this process exits
 * (exit_ptrace), in one pass under tasklist_lock and after the helper has
 * left the address space (exit_mm comes first): no thread that ran the
 * call goes on while a helper that shares the memory still runs, and a
 * PTRACE_DETACH each, every one waking a thread that preempts the helper,
 * cost 9 us a thread here.  What a detach adds is its data, the signal to
 * deliver (0).  Released by its tracer's exit, a thread at a system call
 * stop takes the code of the stop as that signal (ptrace_report_syscall
 * sends it): with PTRACE_O_TRACESYSGOOD that is SIGTRAP | 0x80, no valid
 * signal, dropped (send_sig_info); an interrupt stop's code is not used. */
static void let_go(struct pw_helper *H, bool all)
{
	for (uint32_t i = 0; i < H->cap; i++)
		if (H->t[i].seized && (all || H->t[i].have_regs || H->t[i].masked))
			detach(&H->t[i]);
}

void procwide__inject_helper_main(void *arg)
{
	struct pw_helper *H = arg;
	/* The caller started this process with every signal blocked (an
	 * application handler, copied here, must not run on this stack with
	 * the calling thread's TLS); keep them so: a terminal's ^C or ^Z to
	 * the process group is not for the helper. */
	uint64_t all = ~0ULL;
	pw_rt_sigprocmask(2 /* SIG_SETMASK */, &all, NULL);
	/* Die with the calling thread; if it died before this line, now. */
	pw_sys6(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
	if (pw_sys3(SYS_getppid, 0, 0, 0) != H->parent)
		die_now();
	pw_sys6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
	/* A copy (a policy's session) outlives calls while threads that
	 * already have the policy's first steps run their own code: not
	 * dumpable, they cannot trace it, read or write its memory
	 * (ptrace, /proc/pid/mem, process_vm_writev) without CAP_SYS_PTRACE.
	 * It still traces them: the flag is about who may trace it.  Not for
	 * a helper that shares the memory, whose address space, and so
	 * whose dumpable flag, is the process's own. */
	if (!H->shared && pw_is_err(pw_sys6(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0)))
		die_now();
	/* Keep nothing but the socket (close_range: Linux 5.9).  The
	 * descriptor table is this process's own copy (no CLONE_FILES). */
	if (H->sock != 0) {
		if (pw_is_err(pw_sys3(SYS_dup2, H->sock, 0, 0)))
			die_now();
		H->sock = 0;
	}
	if (pw_is_err(pw_sys3(436 /* close_range */, 1, ~0U, 0))) {
		/* Before Linux 5.9: one by one, up to the descriptor limit. */
		struct {
			unsigned long cur, max;
		} lim = {1024, 1024};
		pw_sys3(SYS_getrlimit, 7 /* RLIMIT_NOFILE */, (long)&lim, 0);
		unsigned long top = lim.cur < (1UL << 20) ? lim.cur : (1UL << 20);
		for (unsigned long fd = 1; fd < top; fd++)
			pw_sys3(SYS_close, (long)fd, 0, 0);
	}
	struct held *t = H->t;
	const pid_t parent = H->parent;

	for (;;) {
		/* A message holds one request, or up to PW_INJECT_BATCH seize
		 * requests: ask for all their stops, then collect them, so that
		 * the threads stop together. */
		struct pw_inject_req batch[PW_INJECT_BATCH];
		long n = pw_sys3(SYS_read, H->sock, (long)batch, sizeof batch);
		if (n == -EINTR)
			continue;
		if (n <= 0 || n % (long)sizeof batch[0]) { /* EOF: the call is over */
			let_go(H, false);
			die_now();
		}
		uint32_t nb = (uint32_t)(n / (long)sizeof batch[0]);
		struct pw_inject_req q = batch[0];
		for (uint32_t k = 1; k < nb; k++)
			if (batch[k].op != PW_INJ_SEIZE || q.op != PW_INJ_SEIZE)
				die_now();
		if (q.op == PW_INJ_SEIZE) {
			int err[PW_INJECT_BATCH], stage[PW_INJECT_BATCH];
			for (uint32_t k = 0; k < nb; k++) {
				if (batch[k].idx >= H->cap || batch[k].pid != parent)
					die_now();
				struct held *h = &t[batch[k].idx];
				h->tid = batch[k].tid;
				err[k] = seize_start(h, parent, &stage[k]);
			}
			for (uint32_t k = 0; k < nb; k++) {
				struct held *h = &t[batch[k].idx];
				if (!err[k])
					err[k] = seize_finish(h, parent, &stage[k]);
				if (err[k] && h->seized)
					detach(h);
				reply_tid(H, err[k], batch[k].idx, 0, 0, err[k] ? stage[k] : PW_STAGE_NONE,
					  h->tid);
				if (procwide__test_helper_dies && nb > 1) {
					flush(H);
					die_now(); /* the kernel detaches what it holds */
				}
			}
			flush(H);
		} else if (q.op == PW_INJ_RUN_ALL) {
			run_all(H, &q);
		} else if (q.op == PW_INJ_DETACH) {
			let_go(H, true);
			reply(H, 0, 0, 0, 1, PW_STAGE_NONE);
		} else if (q.op == PW_INJ_RELEASE) {
			let_go(H, false);
			reply(H, 0, 0, 0, 1, PW_STAGE_NONE);
			die_now();
		} else {
			die_now();
		}
	}
}
