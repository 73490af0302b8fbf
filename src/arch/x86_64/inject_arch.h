/* x86_64 register-level pieces of the ptrace injection (src/inject*.c).
 *
 * The helper stops a thread, points it at procwide__inject_gadget (a
 * `syscall` followed by an `int3` in this library's text, so mapped in every
 * thread), with the system call number in rax and its arguments in rdi, rsi,
 * rdx, r10, r8, r9, and orig_rax = -1.  orig_rax = -1 matters: a thread
 * stopped inside a blocking system call is on that call's exit path with
 * rax = -ERESTARTSYS (or another restart code) and orig_rax = its number,
 * and on resuming the kernel would "restart" whatever orig_rax names; with
 * -1 it runs the gadget instead.  The int3 stops the thread again with
 * SIGTRAP, rax holds the result, and the saved registers are put back
 * exactly, so that on detach the kernel restarts the interrupted call as it
 * would after any signal.
 *
 * An aarch64 port needs the same four things in src/arch/aarch64/: the
 * register set (struct user_pt_regs through PTRACE_GETREGSET/NT_PRSTATUS,
 * since aarch64 has no PTRACE_GETREGS), a gadget `svc #0; brk #0`, the
 * number in x8 and arguments in x0-x5, and the "no restart" marker, which
 * there is NT_ARM_SYSTEM_CALL set to -1 rather than a register. */
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

/* `syscall; int3`, defined in src/inject_gadget.c. */
extern const char procwide__inject_gadget[] __attribute__((visibility("hidden")));

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

static inline long pw_arch_result(const struct pw_regs *r)
{
	return (long)r->rax;
}

/* Did the thread stop at the gadget's trap (rip just past the int3)? */
static inline int pw_arch_at_gadget_trap(const struct pw_regs *r)
{
	return r->rip == (unsigned long)(uintptr_t)procwide__inject_gadget + 3;
}

/*
 * A stop forced while the thread waits in a system call makes the call
 * return.  Most waits then return a restart code that the kernel turns into
 * a transparent restart after the stop; a few (epoll_wait, semop,
 * sigtimedwait) return -EINTR, which the application would see, as it does
 * after SIGSTOP/SIGCONT.  When no signal is involved (the caller checks),
 * -EINTR at the stop can only come from the stop itself, and EINTR means the
 * call did nothing: rewind the thread onto its `syscall` instruction (2
 * bytes) with the number back in rax, so that it simply calls again.
 */
static inline void pw_arch_restart_if_eintr(struct pw_regs *r)
{
	if ((long)r->rax == -4 /* EINTR */ && (long)r->orig_rax >= 0) {
		r->rax = r->orig_rax;
		r->rip -= 2;
	}
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

#endif
