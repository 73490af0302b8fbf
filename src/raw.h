/* Raw system calls that return -errno and never touch errno or TLS, and the
 * kernel constants procwide needs, guarded so that the build depends neither
 * on the age of the kernel headers nor on the C library (musl ships none of
 * <linux/...>). */
#ifndef PW_RAW_H
#define PW_RAW_H

#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

#if defined(__x86_64__)
#include "arch/x86_64/syscall_arch.h"
#else
#error "procwide: no src/arch/ port for this architecture yet (see src/arch/x86_64/syscall_arch.h)"
#endif

#define PW_HIDDEN __attribute__((visibility("hidden")))

#ifndef FUTEX_WAIT_PRIVATE
#define FUTEX_WAIT_PRIVATE 128
#endif
#ifndef FUTEX_WAKE_PRIVATE
#define FUTEX_WAKE_PRIVATE 129
#endif
#ifndef SI_QUEUE
#define SI_QUEUE (-1)
#endif

/* True for a raw result that is an error (-4095..-1), as the kernel ABI
 * defines it. */
static inline int pw_is_err(long r)
{
	return (unsigned long)r > -4096UL;
}

static inline long pw_sys6(long nr, long a1, long a2, long a3, long a4,
			   long a5, long a6)
{
	return pw_arch_syscall6(nr, a1, a2, a3, a4, a5, a6);
}

static inline long pw_sys3(long nr, long a1, long a2, long a3)
{
	return pw_arch_syscall6(nr, a1, a2, a3, 0, 0, 0);
}

static inline pid_t pw_gettid(void)
{
	return (pid_t)pw_sys3(SYS_gettid, 0, 0, 0);
}

static inline pid_t pw_getpid(void)
{
	return (pid_t)pw_sys3(SYS_getpid, 0, 0, 0);
}

static inline long pw_tgkill(pid_t tgid, pid_t tid, int sig)
{
	return pw_sys3(SYS_tgkill, tgid, tid, sig);
}

static inline long pw_futex_wait(const void *addr, uint32_t val,
				 const struct timespec *rel)
{
	return pw_sys6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, (long)val,
		       (long)rel, 0, 0);
}

static inline long pw_futex_wake(const void *addr, int n)
{
	return pw_sys6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
}

static inline long pw_write(int fd, const void *buf, unsigned long len)
{
	return pw_sys3(SYS_write, fd, (long)buf, (long)len);
}

/* The kernel's struct sigaction for rt_sigaction (not the C library's,
 * whose layout and mask size differ). */
struct pw_ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static inline long pw_rt_sigaction(int sig, const struct pw_ksigaction *act,
				   struct pw_ksigaction *old)
{
	return pw_sys6(SYS_rt_sigaction, sig, (long)act, (long)old, 8, 0, 0);
}

static inline long pw_rt_sigprocmask(int how, const uint64_t *set, uint64_t *old)
{
	return pw_sys6(SYS_rt_sigprocmask, how, (long)set, (long)old, 8, 0, 0);
}

#endif
