/* x86_64 register-level pieces of the ptrace injection (src/inject*.c).
 *
 * The helper stops a thread, points it at procwide__inject_gadget (a
 * `syscall` instruction in this library's text, so mapped in every thread)
 * with the system call number in rax, its arguments in rdi, rsi, rdx, r10,
 * r8, r9, and orig_rax = -1, and resumes it with PTRACE_SYSCALL: it stops at
 * the call's entry and exit, where rax holds the result.  No trap or signal
 * is involved (an int3 would make the kernel force SIGTRAP, which resets a
 * blocked SIGTRAP's disposition for the whole process and unblocks it).
 *
 * A thread stopped while waiting in a system call is on that call's exit
 * path with rax = a restart code (-ERESTARTSYS, ...) or -EINTR and orig_rax
 * = its number.  The helper puts these registers back as they were: a
 * thread let go by PTRACE_DETACH has TIF_SIGPENDING set (ptrace's
 * __ptrace_unlink kicks it with signal_wake_up), so on its way out it goes
 * through arch_do_signal_or_restart, which settles the call exactly as
 * after any stop: a restart (rip rewound onto the call, or restart_syscall
 * with the number of the ABI the call was made with: restart_block
 * remembers it, and the injected call does not touch it), or, when a signal
 * queued meanwhile has a handler, -EINTR as handle_signal decides, in the
 * kernel's own order of delivery and with the dispositions of that moment.
 * -EINTR at such a stop comes from the stop itself; for the waits that
 * return it after any stop having done nothing (epoll_wait, semop,
 * sigtimedwait...) it is turned into -ERESTARTNOHAND, which the kernel
 * restarts unless a handler runs; any other call keeps its EINTR, as after
 * SIGSTOP and SIGCONT.
 *
 * An aarch64 port needs the same things in src/arch/aarch64/: the register
 * set (struct user_pt_regs through PTRACE_GETREGSET/NT_PRSTATUS, since
 * aarch64 has no PTRACE_GETREGS), a gadget `svc #0`, the number in x8 and
 * arguments in x0-x5, the "not in a system call" marker for the injected
 * call, which there is NT_ARM_SYSTEM_CALL set to -1; the entry
 * instruction (`svc #0` alone: PW_ARCH_ENTRY_LEN 4, every call
 * PW_ENTRY_SYSCALL); and
 * the refusal of a 32-bit (AArch32) thread, told by PSR_MODE32_BIT in
 * pstate, as a 32-bit x86 thread is told by its code segment here. */
#ifndef PW_ARCH_INJECT_H
#define PW_ARCH_INJECT_H

#include <stdint.h>

/* The kernel's struct user_regs_struct for x86_64 (PTRACE_GETREGS). */
struct pw_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax;
	unsigned long rip, cs, eflags, rsp, ss;
	unsigned long fs_base, gs_base, ds, es, fs, gs;
};

#define PW_PTRACE_GETREGS 12
#define PW_PTRACE_SETREGS 13

/* `syscall` (and a trailing int3 that is never reached), defined in
 * src/inject_gadget.c. */
extern const char procwide__inject_gadget[] __attribute__((visibility("hidden")));

/* How a thread stopped in a system call entered the kernel, from the two
 * bytes before its rip (the helper reads them with PTRACE_PEEKTEXT): the
 * 64-bit `syscall` (0f 05), or `int $0x80` (cd 80), which takes i386
 * numbers, also from a 64-bit task.  Both are two bytes long. */
enum pw_arch_entry { PW_ENTRY_SYSCALL, PW_ENTRY_INT80, PW_ENTRY_UNKNOWN };

static inline enum pw_arch_entry pw_arch_entry_of(unsigned two_bytes)
{
	return two_bytes == 0x050f ? PW_ENTRY_SYSCALL
	       : two_bytes == 0x80cd ? PW_ENTRY_INT80
				     : PW_ENTRY_UNKNOWN;
}

/* The same, from a word read where the thread resumes: the one that ends
 * there (its last two bytes, little-endian), or, when the code does not
 * reach that far back, the one that starts PW_ARCH_ENTRY_LEN bytes before
 * (its first two). */
#define PW_ARCH_ENTRY_LEN 2

static inline enum pw_arch_entry pw_arch_entry_ending(unsigned long word)
{
	return pw_arch_entry_of((unsigned)(word >> 48));
}

static inline enum pw_arch_entry pw_arch_entry_starting(unsigned long word)
{
	return pw_arch_entry_of((unsigned)(word & 0xffff));
}

/* Where the thread resumes, and whether it was stopped in a system call
 * (else in user code). */
static inline unsigned long pw_arch_pc(const struct pw_regs *r)
{
	return r->rip;
}

static inline void pw_arch_set_pc(struct pw_regs *r, unsigned long pc)
{
	r->rip = pc;
}

static inline int pw_arch_in_syscall(const struct pw_regs *r)
{
	return (long)r->orig_rax >= 0;
}

/* A 64-bit task runs with the kernel's __USER_CS; a 32-bit task (or a
 * 64-bit one switched to 32-bit code, as Wine's WoW64 does) cannot run the
 * library's 64-bit gadget, and is refused. */
static inline int pw_arch_is_64bit(const struct pw_regs *r)
{
	return r->cs == 0x33;
}

/* SIGKILL and SIGSTOP: never in a mask. */
#define PW_SIG_UNBLOCKABLE ((1ULL << (9 - 1)) | (1ULL << (19 - 1)))

#define PW_EINTR 4
#define PW_ERESTARTSYS 512
#define PW_ERESTARTNOINTR 513
#define PW_ERESTARTNOHAND 514
#define PW_ERESTART_RESTARTBLOCK 516

/* The code a thread stopped in a system call left in rax (-errno), or 0
 * when it was not stopped in one. */
static inline long pw_arch_syscall_error(const struct pw_regs *r)
{
	return pw_arch_in_syscall(r) ? -(long)r->rax : 0;
}

/* A copy of a register set, word by word through a volatile pointer: a
 * structure assignment of this size becomes a call to the C library's
 * memcpy with clang (an ASan build's interceptor), which the helper must
 * not make. */
static inline void pw_regs_copy(struct pw_regs *dst, const struct pw_regs *src)
{
	const volatile unsigned long *s = (const volatile unsigned long *)src;
	unsigned long *d = (unsigned long *)dst;
	for (unsigned i = 0; i < sizeof *src / sizeof *s; i++)
		d[i] = s[i];
}

static inline void pw_arch_prepare_call(struct pw_regs *r, long nr, const long args[6])
{
	r->rip = (unsigned long)(uintptr_t)procwide__inject_gadget;
	r->rax = (unsigned long)nr;
	r->orig_rax = (unsigned long)-1L;
	r->rdi = (unsigned long)args[0];
	r->rsi = (unsigned long)args[1];
	r->rdx = (unsigned long)args[2];
	r->r10 = (unsigned long)args[3];
	r->r8 = (unsigned long)args[4];
	r->r9 = (unsigned long)args[5];
}

/* An io_uring worker (iou-wrk-*, iou-sqp-*) is a thread of the process
 * that never returns to user space: the kernel makes it with its user
 * instruction and stack pointers set to 0 (copy_thread, "a user space
 * thread, but it doesn't return to ret_after_fork()"), and a system call
 * set up in its registers would never run.  aarch64: pc and sp are 0. */
static inline int pw_arch_is_kernel_worker(const struct pw_regs *r)
{
	return r->rip == 0 && r->rsp == 0;
}

static inline long pw_arch_result(const struct pw_regs *r)
{
	return (long)r->rax;
}

/* The x86_64 system calls that return -EINTR after a ptrace stop rather
 * than a restart code, and have done nothing when they do (signal(7):
 * "interfaces ... never restarted after being stopped"): epoll_wait,
 * epoll_pwait, epoll_pwait2, semop, semtimedop, rt_sigtimedwait,
 * io_getevents, io_pgetevents. */
static inline int pw_arch_eintr_is_restartable(long nr)
{
	switch (nr) {
	case 232: case 281: case 441: /* epoll_wait, epoll_pwait, epoll_pwait2 */
	case 65: case 220:	      /* semop, semtimedop */
	case 128:		      /* rt_sigtimedwait */
	case 208: case 333:	      /* io_getevents, io_pgetevents */
		return 1;
	default:
		return 0;
	}
}

/* Whether the registers to put back depend on how the thread entered its
 * call (pw_arch_resume_regs): only for the -EINTR of a wait that restarts
 * after a stop.  Only waits known to return EINTR after a stop with nothing
 * done: a close() on some file systems or a connect() has already acted
 * when it returns EINTR, and must not be redone.  The helper reads the
 * entry instruction only then, not for every thread. */
static inline int pw_arch_resume_needs_entry(const struct pw_regs *saved)
{
	return pw_arch_syscall_error(saved) == PW_EINTR &&
	       pw_arch_eintr_is_restartable((long)saved->orig_rax);
}

/* The registers to put back: the saved ones (see above), with the -EINTR
 * of such a wait turned into -ERESTARTNOHAND; only for a call made with
 * `syscall`, since the list above holds x86_64 numbers (one made with
 * int $0x80 keeps its EINTR). */
static inline void pw_arch_resume_regs(struct pw_regs *resume, const struct pw_regs *saved,
				       enum pw_arch_entry entry)
{
	pw_regs_copy(resume, saved);
	if (entry == PW_ENTRY_SYSCALL && pw_arch_resume_needs_entry(saved))
		resume->rax = (unsigned long)-PW_ERESTARTNOHAND;
}

#define PW_ARCH_GADGET_ASM                                                     \
	".pushsection .text\n"                                                 \
	".globl procwide__inject_gadget\n"                                     \
	".hidden procwide__inject_gadget\n"                                    \
	".type procwide__inject_gadget, @function\n"                           \
	"procwide__inject_gadget:\n"                                           \
	"	syscall\n"                                                     \
	"	int3\n"                                                        \
	".size procwide__inject_gadget, . - procwide__inject_gadget\n"         \
	".popsection\n"


/* ---- The return path: one stop instead of three ------------------------
 *
 * Most threads need no stop after their call.  The helper stops one once and
 * writes, in the thread's slot of procwide's frames area (src/inject.c),
 * what the kernel writes when it delivers a signal: a struct rt_sigframe
 * holding the registers to resume with, the signal mask and the FPU/AVX
 * state (read with PTRACE_GETREGSET, NT_X86_XSTATE).  It points the thread
 * at procwide__inject_stub, with the stack pointer on that frame, and
 * exits; the kernel lets the thread go.  The thread makes the call, stores
 * the result, wakes the caller and returns with rt_sigreturn, which puts
 * back every register, the mask and the extended state at once, as after
 * a signal handler.  Two stops fewer than the stub above, and the call runs
 * after the helper has gone.
 *
 * What the kernel does on the way back decides who may take it:
 * - rt_sigreturn sets orig_rax to -1, so the kernel's restart of an
 *   interrupted call is done here, as the kernel does it when no handler
 *   runs (arch_do_signal_or_restart): rip back onto the instruction, the
 *   number back in rax.  A signal its mask lets through that arrived
 *   meanwhile is then taken on the way back, before the restarted call:
 *   what the kernel does too if it has no handler, or one with SA_RESTART
 *   and the call restarts after handlers.  Where the kernel's choice
 *   depends on handlers, a thread whose mask lets through a signal the
 *   application could re-handle meanwhile, one without SA_RESTART, or one
 *   with a handler while it was stopped in -ERESTARTNOHAND, keeps the
 *   stops (src/inject_helper.c, src/inject.c read_dispositions).
 * - rt_sigreturn also ends a pending restart_syscall (restart_block.fn
 *   becomes do_no_restart_syscall: EINTR), so a thread in nanosleep, poll
 *   with a timeout or a timed futex wait (-ERESTART_RESTARTBLOCK) keeps
 *   the stops.
 * - The same for a thread stopped in user code on its way into a restart
 *   the kernel has just set up (rax = restart_syscall's number, rip on
 *   the instruction): it keeps the stops.
 * - With a shadow stack (CET) rt_sigreturn pops a token the kernel pushes
 *   only for a real signal: such a thread keeps the stops.
 * - The stub writes to, and rt_sigreturn reads, memory of protection key
 *   0: a thread whose PKRU forbids it keeps the stops.
 * - Only extended state of a known, fixed size is carried (x87, SSE, AVX,
 *   AVX-512, PKRU); with any other feature enabled, the stops.
 * - The frame's uc_stack holds flags rt_sigreturn's restore_altstack
 *   rejects (do_sigaltstack: EINVAL, which it ignores): the thread's
 *   sigaltstack is left as it is.
 * - A call that may install a seccomp filter keeps the stops: the filter
 *   would judge the futex and rt_sigreturn the stub makes after it.
 *
 * aarch64: the frame is struct rt_sigframe there (ucontext with the FP/SIMD
 * context records, fpsimd_context read with NT_PRFPREG, an end record; SVE
 * state makes the thread keep the stops), the stub ends with `mov x8, #139;
 * svc #0`, and the restart is pc -= 4 with x0 = orig_x0. */

/* The kernel's x86_64 struct sigcontext, struct ucontext and struct
 * rt_sigframe (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h). */
struct pw_ksigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate;
	uint64_t reserved1[8];
};

struct pw_kucontext {
	uint64_t flags, link;
	uint64_t ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	struct pw_ksigcontext mc;
	uint64_t sigmask;
};

struct pw_ksigframe {
	uint64_t pretcode; /* the handler's return address: rsp points past it */
	struct pw_kucontext uc;
	uint8_t info[128]; /* siginfo: not read, but checked to be mapped */
};

_Static_assert(sizeof(struct pw_ksigcontext) == 256, "struct sigcontext");
_Static_assert(sizeof(struct pw_kucontext) == 304, "struct ucontext");

#define PW_UC_FP_XSTATE 0x1
#define PW_UC_SIGCONTEXT_SS 0x2
#define PW_UC_STRICT_RESTORE_SS 0x4
#define PW_SS_INVALID 4 /* neither 0, SS_ONSTACK nor SS_DISABLE */

/* A thread's slot in the frames area.  Offsets are used by the stub. */
struct pw_ret_slot {
	long result;		/* 0: the call's result, stored by the stub */
	long expected;		/* 8: the caller's result */
	uint32_t done;		/* 16: 1 once result is stored */
	uint32_t kill_on_mismatch; /* 20 */
	int32_t tid;		/* 24 */
	int32_t caller;		/* 28 */
	/* The stack of procwide__die_mismatch, should the stub call it. */
	char stack[4096 - 32];
	struct pw_ksigframe frame; /* 4096: rsp = &frame.uc */
	char pad[512 - sizeof(struct pw_ksigframe)];
	/* 4608: the extended state, 64-byte aligned as XRSTOR needs, and
	 * FP_XSTATE_MAGIC2 after it. */
	char fpstate[8192 - 4608];
};

_Static_assert(sizeof(struct pw_ret_slot) == 8192, "slot size");
_Static_assert(__builtin_offsetof(struct pw_ret_slot, frame) == 4096, "frame offset");
_Static_assert(__builtin_offsetof(struct pw_ret_slot, fpstate) == 4608, "fpstate offset");

/* The frames area begins with this header and the caller's list of the
 * slots it awaits, on pages of their own; the slots follow. */
struct pw_ret_hdr {
	uint32_t count;	 /* 0: threads that have stored their result */
	uint32_t target; /* 4: the count at which the stub wakes the caller */
	uint32_t nawaited;
	uint32_t awaited[];
};

static inline size_t pw_ret_head_size(uint32_t cap)
{
	return (sizeof(struct pw_ret_hdr) + 4 * (size_t)cap + 4095) & ~(size_t)4095;
}

static inline struct pw_ret_slot *pw_ret_slot_at(struct pw_ret_hdr *h, uint32_t cap, uint32_t i)
{
	return (struct pw_ret_slot *)(void *)((char *)h + pw_ret_head_size(cap) +
					      (size_t)i * sizeof(struct pw_ret_slot));
}

extern const char procwide__inject_stub[] __attribute__((visibility("hidden")));
extern const char procwide__inject_stub_tail[] __attribute__((visibility("hidden")));
extern const char procwide__inject_stub_end[] __attribute__((visibility("hidden")));

/* Whether pc is in the stub, and past its call (the tail). */
static inline int pw_arch_in_stub(unsigned long pc)
{
	return pc >= (unsigned long)(uintptr_t)procwide__inject_stub &&
	       pc < (unsigned long)(uintptr_t)procwide__inject_stub_end;
}

static inline int pw_arch_in_stub_tail(unsigned long pc)
{
	return pc >= (unsigned long)(uintptr_t)procwide__inject_stub_tail &&
	       pc < (unsigned long)(uintptr_t)procwide__inject_stub_end;
}

/* Calls that may install a seccomp filter: seccomp(2), prctl(PR_SET_SECCOMP). */
static inline int pw_arch_call_may_filter(long nr, const long args[6])
{
	return nr == 317 || (nr == 157 && args[0] == 22);
}

#define PW_NT_X86_XSTATE 0x202
#define PW_XSTATE_SW_OFF 464 /* fxregs_state.sw_reserved */

/* Turns what PTRACE_GETREGSET NT_X86_XSTATE wrote at fp (len bytes, the
 * standard XSAVE layout) into a signal frame's extended state: the
 * software-reserved bytes a frame carries (struct _fpx_sw_bytes; the
 * regset has the enabled-features mask, XCR0, in their first word) and
 * FP_XSTATE_MAGIC2 after the state.  -1 if it cannot: dynamic features
 * (AMX tiles, whose size a frame of this task may not hold), or no room. */
static inline void pw_arch_cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM), PKRU. */
#define PW_XFEATURES_KNOWN 0x2e7ULL
#define PW_XFEATURE_PKRU 9

static inline int pw_arch_seal_xstate(char *fp, size_t len, size_t room)
{
	uint64_t xcr0 = *(const volatile uint64_t *)(const void *)(fp + PW_XSTATE_SW_OFF);
	if (len < 576 || len + 4 > room || (xcr0 & ~PW_XFEATURES_KNOWN) || (xcr0 & 3) != 3)
		return -1;
	if (xcr0 & (1ULL << PW_XFEATURE_PKRU)) {
		/* The thread's PKRU, at its offset in the standard layout
		 * (CPUID 0xd, sub-leaf 9).  Only if XSTATE_BV says it is
		 * there: depending on the kernel, the regset fills an absent
		 * one with the live value or with zeros, and XRSTOR would set
		 * an absent one to 0, opening every key; the default value
		 * (0x55555554) is never absent. */
		uint64_t bv = *(const volatile uint64_t *)(const void *)(fp + 512);
		unsigned r[4];
		pw_arch_cpuid(0xd, PW_XFEATURE_PKRU, r);
		if (!(bv & (1ULL << PW_XFEATURE_PKRU)) || r[1] + 4 > len ||
		    (*(const volatile uint32_t *)(const void *)(fp + r[1]) & 3) != 0)
			return -1; /* unknown, or access or write to key 0 disabled */
	}
	volatile uint32_t *sw = (volatile uint32_t *)(void *)(fp + PW_XSTATE_SW_OFF);
	sw[0] = 0x46505853U;	     /* FP_XSTATE_MAGIC1 */
	sw[1] = (uint32_t)len + 4;   /* extended_size */
	sw[2] = (uint32_t)xcr0;	     /* xfeatures */
	sw[3] = (uint32_t)(xcr0 >> 32);
	sw[4] = (uint32_t)len;	     /* xstate_size */
	for (unsigned i = 5; i < 12; i++)
		sw[i] = 0;
	*(volatile uint32_t *)(void *)(fp + len) = 0x46505845U; /* FP_XSTATE_MAGIC2 */
	return 0;
}

/* Whether a thread stopped at regs may be on its way into a
 * restart_syscall the kernel has just set up: rax holds its number (219,
 * x32's, or i386's 0) and rip a system call instruction.  Stopped in user
 * code, or still on its way out of the interrupted call (orig_rax then
 * still its number: the kernel set up the restart on a first pass through
 * its signal work and stopped on a second).  The helper then reads the
 * word at rip (pw_arch_restart_at). */
static inline int pw_arch_restart_maybe(const struct pw_regs *r)
{
	return (r->rax & ~0x40000000UL) == 219 || r->rax == 0;
}

static inline int pw_arch_restart_at(const struct pw_regs *r, unsigned long word_at_pc)
{
	enum pw_arch_entry e = pw_arch_entry_starting(word_at_pc);
	return (e == PW_ENTRY_SYSCALL && (r->rax & ~0x40000000UL) == 219) ||
	       (e == PW_ENTRY_INT80 && r->rax == 0);
}

/* Whether this CPU has shadow stacks (CET_SS, CPUID 7.0 ECX bit 7): if
 * not, no thread can have one, and none is asked. */
static inline int pw_arch_cpu_has_shstk(void)
{
	unsigned r[4];
	pw_arch_cpuid(0, 0, r);
	if (r[0] < 7)
		return 0;
	pw_arch_cpuid(7, 0, r);
	return (r[2] >> 7) & 1;
}

#define PW_PTRACE_ARCH_PRCTL 30
#define PW_ARCH_SHSTK_STATUS 0x5005

/* Whether the thread was stopped in a call the kernel restarts only if no
 * handler runs (-ERESTARTNOHAND: select, pause, sigsuspend, the epoll_wait
 * family once its EINTR is turned into it). */
static inline int pw_arch_restarts_unless_handled(const struct pw_regs *resume)
{
	return pw_arch_syscall_error(resume) == PW_ERESTARTNOHAND;
}

/* Whether the kernel's choice between restarting the thread's call and
 * failing it with EINTR depends on the handlers of the signals that come:
 * -ERESTARTSYS (SA_RESTART) or -ERESTARTNOHAND (any handler); not
 * -ERESTARTNOINTR, always restarted. */
static inline int pw_arch_restart_depends_on_handlers(const struct pw_regs *resume)
{
	long e = pw_arch_syscall_error(resume);
	return e == PW_ERESTARTSYS || e == PW_ERESTARTNOHAND;
}

/* Fills the frame to return to `resume` with signal mask `mask` and the
 * extended state at fp, with the kernel's restart applied (see above).
 * -1 if the thread must keep the stops (a restart_syscall pending). */
static inline int pw_arch_fill_frame(struct pw_ksigframe *f, const struct pw_regs *resume,
				     uint64_t mask, const char *fp)
{
	unsigned long rax = resume->rax, rip = resume->rip;
	long e = pw_arch_syscall_error(resume);
	if (e == PW_ERESTART_RESTARTBLOCK)
		return -1;
	if (e == PW_ERESTARTSYS || e == PW_ERESTARTNOINTR || e == PW_ERESTARTNOHAND) {
		rax = resume->orig_rax;
		rip -= 2; /* `syscall` and `int $0x80` are both two bytes */
	}
	volatile struct pw_kucontext *uc = &f->uc;
	uc->flags = PW_UC_FP_XSTATE | PW_UC_SIGCONTEXT_SS | PW_UC_STRICT_RESTORE_SS;
	uc->link = 0;
	uc->ss_sp = 0;
	uc->ss_flags = PW_SS_INVALID;
	uc->ss_size = 0;
	volatile struct pw_ksigcontext *mc = &uc->mc;
	mc->r8 = resume->r8, mc->r9 = resume->r9, mc->r10 = resume->r10, mc->r11 = resume->r11;
	mc->r12 = resume->r12, mc->r13 = resume->r13, mc->r14 = resume->r14;
	mc->r15 = resume->r15, mc->rdi = resume->rdi, mc->rsi = resume->rsi;
	mc->rbp = resume->rbp, mc->rbx = resume->rbx, mc->rdx = resume->rdx;
	mc->rax = rax, mc->rcx = resume->rcx, mc->rsp = resume->rsp, mc->rip = rip;
	mc->eflags = resume->eflags;
	mc->cs = (uint16_t)resume->cs, mc->gs = 0, mc->fs = 0, mc->ss = (uint16_t)resume->ss;
	mc->err = 0, mc->trapno = 0, mc->oldmask = 0, mc->cr2 = 0;
	mc->fpstate = (uint64_t)(uintptr_t)fp;
	uc->sigmask = mask;
	return 0;
}

/* Points a stopped thread at the stub, its slot in r12, the area's header
 * in r13, its stack on the frame. */
static inline void pw_arch_prepare_return(struct pw_regs *r, long nr, const long args[6],
					  struct pw_ret_slot *slot, struct pw_ret_hdr *hdr)
{
	pw_arch_prepare_call(r, nr, args);
	r->rip = (unsigned long)(uintptr_t)procwide__inject_stub;
	r->r12 = (unsigned long)(uintptr_t)slot;
	r->r13 = (unsigned long)(uintptr_t)hdr;
	r->rsp = (unsigned long)(uintptr_t)&slot->frame.uc;
}

/* The stub.  r12: the slot, r13: the header, rsp: the frame's ucontext.
 * After the call: the result stored; procwide__die_mismatch if it differs
 * from the caller's and the call asks so (on the slot's own stack);
 * `done`; the count raised, and the caller woken (FUTEX_WAKE_PRIVATE) if
 * it reaches the target; rt_sigreturn.  procwide__test_tail_sleep (tests
 * only) makes it sleep in its tail first. */
#define PW_ARCH_STUB_ASM                                                       \
	".pushsection .text\n"                                                 \
	".globl procwide__inject_stub\n"                                       \
	".hidden procwide__inject_stub\n"                                      \
	".globl procwide__inject_stub_tail\n"                                  \
	".hidden procwide__inject_stub_tail\n"                                 \
	".globl procwide__inject_stub_end\n"                                   \
	".hidden procwide__inject_stub_end\n"                                  \
	".type procwide__inject_stub, @function\n"                             \
	"procwide__inject_stub:\n"                                             \
	"	syscall\n"                                                     \
	"procwide__inject_stub_tail:\n"                                        \
	"	mov %rax, 0(%r12)\n"                                           \
	"	cmpl $0, 20(%r12)\n"                                           \
	"	je 1f\n"                                                       \
	"	cmp 8(%r12), %rax\n"                                           \
	"	je 1f\n"                                                       \
	"	mov 24(%r12), %edi\n"                                          \
	"	mov %rax, %rsi\n"                                              \
	"	mov 28(%r12), %edx\n"                                          \
	"	mov 8(%r12), %rcx\n"                                           \
	"	and $-16, %rsp\n"                                              \
	"	call procwide__die_mismatch\n"                                 \
	"	ud2\n"                                                         \
	"1:	movl $1, 16(%r12)\n"                                           \
	"	mov $1, %eax\n"                                                \
	"	lock xadd %eax, 0(%r13)\n"                                     \
	"	inc %eax\n"                                                    \
	"	cmp 4(%r13), %eax\n"                                           \
	"	jne 2f\n"                                                      \
	"	mov %r13, %rdi\n"                                              \
	"	mov $129, %esi\n"      /* FUTEX_WAKE_PRIVATE */                \
	"	mov $1, %edx\n"                                                \
	"	mov $202, %eax\n"      /* SYS_futex */                         \
	"	syscall\n"                                                     \
	"2:	cmpb $0, procwide__test_tail_sleep(%rip)\n"                    \
	"	je 3f\n"                                                       \
	"	lea procwide__test_tail_ts(%rip), %rdi\n"                      \
	"	xor %esi, %esi\n"                                              \
	"	mov $35, %eax\n"       /* SYS_nanosleep */                     \
	"	syscall\n"                                                     \
	"3:	mov $15, %eax\n"       /* SYS_rt_sigreturn */                  \
	"	syscall\n"                                                     \
	"	ud2\n"                                                         \
	"procwide__inject_stub_end:\n"                                         \
	".size procwide__inject_stub, . - procwide__inject_stub\n"             \
	".popsection\n"

/* Starting the helper on a stack of its own: a process that shares this
 * one's memory (CLONE_VM), or a copy of it (src/inject.c).
 *
 * procwide__arch_clone_on_stack(flags, stack_top, fn, arg, ctid) makes
 * clone(flags, stack_top, NULL, ctid, 0) and runs fn(arg) in the child, which must not return (if it
 * does, the child exits).  It returns the child's pid, or -errno, in the
 * parent.  This cannot be C: the child runs on the new stack
 * from the first instruction after `syscall`, and a C frame of the parent
 * (return address, saved registers) is not there.  fn and arg are put on
 * the new stack before the call, so the child needs no register the
 * kernel does not preserve (it keeps all but rax, rcx and r11).  The parent
 * passes no tls or ptid: the child never reads %fs (built without a
 * stack protector, it uses raw system calls only); ctid is for
 * CLONE_CHILD_CLEARTID, or NULL.
 *
 * aarch64: the same with `svc #0`, the number 220 in x8, flags in x0, the
 * stack in x1, fn and arg kept in x9/x10 after storing them on the new
 * stack, which must be 16-byte aligned. */
__attribute__((visibility("hidden"))) long procwide__arch_clone_on_stack(unsigned long flags,
								   void *stack_top,
								   void (*fn)(void *),
								   void *arg, int *ctid);

#define PW_ARCH_CLONE_ASM                                                      \
	".pushsection .text\n"                                                 \
	".globl procwide__arch_clone_on_stack\n"                                     \
	".hidden procwide__arch_clone_on_stack\n"                                    \
	".type procwide__arch_clone_on_stack, @function\n"                           \
	"procwide__arch_clone_on_stack:\n"                                           \
	"	and $-16, %rsi\n"                                              \
	"	sub $16, %rsi\n"                                               \
	"	mov %rdx, 0(%rsi)\n"   /* fn */                                \
	"	mov %rcx, 8(%rsi)\n"   /* arg */                               \
	"	xor %edx, %edx\n"      /* ptid */                              \
	"	mov %r8, %r10\n"       /* ctid */                              \
	"	xor %r8d, %r8d\n"      /* tls */                               \
	"	mov $56, %eax\n"       /* SYS_clone */                         \
	"	syscall\n"                                                     \
	"	test %rax, %rax\n"                                             \
	"	jnz 1f\n"                                                      \
	"	xor %ebp, %ebp\n"      /* the child: outermost frame */        \
	"	pop %rax\n"                                                    \
	"	pop %rdi\n"                                                    \
	"	call *%rax\n"                                                  \
	"	mov $231, %eax\n"      /* SYS_exit_group */                    \
	"	mov $1, %edi\n"                                                \
	"	syscall\n"                                                     \
	"	hlt\n"                                                         \
	"1:	ret\n"                                                         \
	".size procwide__arch_clone_on_stack, . - procwide__arch_clone_on_stack\n"         \
	".popsection\n"

#endif
