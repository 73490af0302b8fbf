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

#define PW_EINTR 4
#define PW_ERESTARTNOHAND 514

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
	return pw_arch_in_syscall(saved) && (long)saved->rax == -PW_EINTR &&
	       pw_arch_eintr_is_restartable((long)saved->orig_rax);
}

/* The registers to put back: the saved ones (see above), with the -EINTR
 * of such a wait turned into -ERESTARTNOHAND; only for a call made with
 * `syscall`, since the list above holds x86_64 numbers (one made with
 * int $0x80 keeps its EINTR). */
static inline struct pw_regs pw_arch_resume_regs(const struct pw_regs *saved,
						 enum pw_arch_entry entry)
{
	struct pw_regs r = *saved;
	if (pw_arch_resume_needs_entry(&r) && entry == PW_ENTRY_SYSCALL)
		r.rax = (unsigned long)-PW_ERESTARTNOHAND;
	return r;
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


/* Starting the helper on a stack of its own: a process that shares this
 * one's memory (CLONE_VM), or a copy of it (src/inject.c).
 *
 * procwide__arch_clone_on_stack(flags, stack_top, fn, arg) makes clone(flags,
 * stack_top) and runs fn(arg) in the child, which must not return (if it
 * does, the child exits).  It returns the child's pid, or -errno, in the
 * parent.  This cannot be C: the child runs on the new stack
 * from the first instruction after `syscall`, and a C frame of the parent
 * (return address, saved registers) is not there.  fn and arg are put on
 * the new stack before the call, so the child needs no register the
 * kernel does not preserve (it keeps all but rax, rcx and r11).  The parent
 * passes no tls, ptid or ctid: the child never reads %fs (built without a
 * stack protector, it uses raw system calls only).
 *
 * aarch64: the same with `svc #0`, the number 220 in x8, flags in x0, the
 * stack in x1, fn and arg kept in x9/x10 after storing them on the new
 * stack, which must be 16-byte aligned. */
__attribute__((visibility("hidden"))) long procwide__arch_clone_on_stack(unsigned long flags,
								   void *stack_top,
								   void (*fn)(void *),
								   void *arg);

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
	"	xor %r10d, %r10d\n"    /* ctid */                              \
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
