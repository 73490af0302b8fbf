/* x86_64 system call entry, for code that must not touch errno or TLS.
 *
 * The kernel takes the number in rax and arguments in rdi, rsi, rdx, r10,
 * r8, r9; `syscall` clobbers rcx (return rip) and r11 (rflags) and returns
 * -errno in rax on failure.  Nothing here reads %fs, so it is safe in a raw
 * clone() thread that shares or lacks TLS.
 *
 * Porting to aarch64 means one file like this one under src/arch/aarch64/:
 * number in x8, arguments in x0-x5, `svc #0`, result in x0.  (The ptrace
 * helper of a later issue also needs the register set, the syscall/trap
 * instruction pair and the restart registers from the same file.) */
#ifndef PW_ARCH_SYSCALL_H
#define PW_ARCH_SYSCALL_H

static inline long pw_arch_syscall6(long nr, long a1, long a2, long a3,
				    long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* A spin-wait hint (aarch64: "yield"). */
static inline void pw_arch_cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

#endif
