/* SPDX-License-Identifier: MIT */
/*
 * The libpsx ABI that procwide's libpsx.so.2 exports: the functions that
 * libcap's <sys/psx_syscall.h> declares, plus __wrap_pthread_create, which
 * programs linked with -Wl,--wrap=pthread_create import instead of
 * pthread_create.
 *
 * When libcap's header is installed it is the one used, so that the compiler
 * checks the definitions in psx.c against the header real programs are built
 * with; the declarations below only keep the build independent of
 * libcap-dev.  They are written from the header's documented contract.
 */
#ifndef PW_PSX_ABI_H
#define PW_PSX_ABI_H

#include <pthread.h>

#if defined(__has_include)
#if __has_include(<sys/psx_syscall.h>)
#include <sys/psx_syscall.h>
#define PW_PSX_SYSTEM_HEADER 1
#endif
#endif

#ifndef PW_PSX_SYSTEM_HEADER
/* The levels of psx_set_sensitivity(); values are ABI. */
typedef enum {
	PSX_IGNORE = 0,
	PSX_WARNING = 1,
	PSX_ERROR = 2,
} psx_sensitivity_t;

/* Variadic form behind the header's psx_syscall() macro: 1 to 6 arguments,
 * then the count markers 6, 5, ..., 0, so the seventh variadic argument is
 * always the number of real ones. */
long int __psx_syscall(long int syscall_nr, ...);
long int psx_syscall3(long int syscall_nr, long int arg1, long int arg2,
		      long int arg3);
long int psx_syscall6(long int syscall_nr, long int arg1, long int arg2,
		      long int arg3, long int arg4, long int arg5,
		      long int arg6);
void psx_load_syscalls(long int (**syscall_fn)(long int, long int, long int,
					       long int),
		       long int (**syscall6_fn)(long int, long int, long int,
						long int, long int, long int,
						long int));
int psx_set_sensitivity(psx_sensitivity_t level);
#endif

/* Not in the header: the linker redirects a program's pthread_create calls
 * here when it is linked with -Wl,--wrap=pthread_create. */
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			  void *(*start_routine)(void *), void *arg);

#endif
