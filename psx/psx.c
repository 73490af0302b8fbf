/* SPDX-License-Identifier: MIT */
/*
 * libpsx.so.2 on procwide's engine: a drop-in for libcap's libpsx (the ABI
 * of Debian 12's libpsx 2.66), so that programs and libcap get procwide's
 * guarantees without being rebuilt.  Written from the contract documented in
 * <sys/psx_syscall.h> and libpsx(3); see man/procwide-psx.7.
 *
 * What changes underneath, and why it is safe for libpsx's callers:
 *  - Threads are found from /proc by procwide, not from a list that
 *    __wrap_pthread_create fills: threads made before the library was
 *    loaded, by code not linked with --wrap, or by raw clone() are covered.
 *  - Every other thread is stopped before the call runs in the caller.  A
 *    thread that blocks the signal is reached through procwide's ptrace
 *    helper, where libpsx 2.66 waits for it forever after changing the
 *    caller; if even ptrace cannot reach it, the call fails with nothing
 *    changed anywhere (-1, and procwide's errno).
 *  - The caller still runs first and a failure there is returned at once
 *    with errno set, as libpsx(3) documents.
 *
 * Sensitivity, as <sys/psx_syscall.h> documents it (procwide-psx(7)):
 * PSX_IGNORE is "best effort - no enforcement": a differing result in
 * another thread is ignored and the caller's result returned, as libpsx
 * does.  PSX_WARNING writes one line to stderr naming the differing threads
 * and returns the caller's result.  PSX_ERROR ends the process: procwide's
 * PROCWIDE_MISMATCH_KILL writes one line naming the thread and both results
 * and sends SIGKILL before the differing thread returns to application code.
 * libpsx documents a SIGSYS there; SIGKILL is used because a SIGSYS can be
 * caught (libpsx 2.66's own SIGSYS handler catches it and the process goes
 * on, measured here), and PSX_ERROR's promise is that the process ends.
 * Programs that want procwide's fail-closed guarantee through this library
 * set PSX_ERROR.  Whatever the level, a thread that cannot be reached at all
 * makes the call fail with nothing changed (-1, errno) where libpsx 2.66
 * waits for it forever; at PSX_WARNING and PSX_ERROR the reason goes to
 * stderr.
 */
#include "psx_abi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "procwide.h"

#define PSX_EXPORT __attribute__((visibility("default")))

static _Atomic int sensitivity = PSX_IGNORE;

/* The one path to the engine: libpsx's -1/errno convention on top of
 * procwide_run()'s -errno one. */
static long run_everywhere(long nr, long a1, long a2, long a3, long a4,
			   long a5, long a6)
{
	struct procwide_call call = {
		.nr = nr,
		.args = {a1, a2, a3, a4, a5, a6},
	};
	int level = atomic_load_explicit(&sensitivity, memory_order_relaxed);
	struct procwide_opts opts = {
		.size = sizeof opts,
		.mismatch = level == PSX_ERROR ? PROCWIDE_MISMATCH_KILL
					       : PROCWIDE_MISMATCH_REPORT,
	};
	struct procwide_report report = {.size = sizeof report};

	int rc = procwide_run(&call, &opts, &report);
	long result = report.result;
	int outcome = report.outcome;
	if (outcome == PROCWIDE_OUTCOME_MISMATCH && level == PSX_WARNING)
		fprintf(stderr, "libpsx (procwide): system call %ld: %s\n", nr,
			report.message);
	procwide_report_release(&report);
	/* A differing result below PSX_ERROR is libpsx's "best effort": the
	 * call ran everywhere and the caller's result stands. */
	if (rc == 0 || outcome == PROCWIDE_OUTCOME_MISMATCH)
		return result;

	/* The caller's own failure is the result libpsx callers expect and
	 * handle; anything else is procwide refusing or giving up before any
	 * thread changed, which libpsx never did, so say why when the
	 * application asked to be told about trouble. */
	if (outcome != PROCWIDE_OUTCOME_CALLER_FAILED && level != PSX_IGNORE)
		fprintf(stderr, "libpsx (procwide): system call %ld not run: %s\n",
			nr, procwide_last_error());
	errno = -rc;
	return -1;
}

PSX_EXPORT long int psx_syscall6(long int syscall_nr, long int arg1,
				 long int arg2, long int arg3, long int arg4,
				 long int arg5, long int arg6)
{
	return run_everywhere(syscall_nr, arg1, arg2, arg3, arg4, arg5, arg6);
}

PSX_EXPORT long int psx_syscall3(long int syscall_nr, long int arg1,
				 long int arg2, long int arg3)
{
	return run_everywhere(syscall_nr, arg1, arg2, arg3, 0, 0, 0);
}

/*
 * The header's psx_syscall(nr, a1, ..., ak) macro calls
 * __psx_syscall(nr, a1, ..., ak, 6, 5, 4, 3, 2, 1, 0): whatever k (1..6),
 * the seventh variadic argument is k, and at least seven are always passed,
 * so reading exactly seven is safe.  The markers after the real arguments
 * must not reach the kernel (prctl rejects non-zero unused arguments, for
 * one): arguments past k are passed as 0.
 */
PSX_EXPORT long int __psx_syscall(long int syscall_nr, ...)
{
	long v[7];
	va_list ap;

	va_start(ap, syscall_nr);
	for (int i = 0; i < 7; i++)
		v[i] = va_arg(ap, long);
	va_end(ap);

	long count = v[6];
	if (count < 0 || count > 6) {
		errno = EINVAL;
		return -1;
	}
	for (long i = count; i < 6; i++)
		v[i] = 0;
	return run_everywhere(syscall_nr, v[0], v[1], v[2], v[3], v[4], v[5]);
}

/*
 * The header's contract: hand the caller pointers to this library's two
 * system call functions.  libcap 2.66 defines a weak psx_load_syscalls of
 * its own and calls it from its constructor with the addresses of its
 * "multithread" function pointers; when this definition is the one the
 * dynamic linker binds (libpsx ahead of libcap in the lookup order, or
 * rebound by psx/libcap_bind.c), libcap sends capset/prctl/set*id through
 * psx_syscall3/6.  This may run before
 * this library's own initialisation (constructor order between the two is
 * not fixed), so it only stores addresses.
 */
PSX_EXPORT void psx_load_syscalls(
	long int (**syscall_fn)(long int, long int, long int, long int),
	long int (**syscall6_fn)(long int, long int, long int, long int,
				 long int, long int, long int))
{
	if (syscall_fn)
		*syscall_fn = psx_syscall3;
	if (syscall6_fn)
		*syscall6_fn = psx_syscall6;
}

/* The same definition under a hidden name, for psx/libcap_bind.c. */
extern __typeof__(psx_load_syscalls) procwide__psx_load_syscalls_self
	__attribute__((alias("psx_load_syscalls"), visibility("hidden")));

/* Returns 0, or -1 for a level the header does not define (libpsx(3)). */
PSX_EXPORT int psx_set_sensitivity(psx_sensitivity_t level)
{
	int l = (int)level;
	if (l != PSX_IGNORE && l != PSX_WARNING && l != PSX_ERROR)
		return -1;
	atomic_store_explicit(&sensitivity, l, memory_order_relaxed);
	return 0;
}

/*
 * Programs linked with -Wl,--wrap=pthread_create call this instead of
 * pthread_create.  procwide finds threads from /proc, so there is nothing to
 * register: just create the thread.  This library is never linked with
 * --wrap itself, so pthread_create here is the C library's.
 */
PSX_EXPORT int __wrap_pthread_create(pthread_t *thread,
				     const pthread_attr_t *attr,
				     void *(*start_routine)(void *), void *arg)
{
	return pthread_create(thread, attr, start_routine, arg);
}
