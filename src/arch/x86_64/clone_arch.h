/* x86_64: start a process that shares this one's memory (the ptrace
 * helper, src/inject.c) on a stack of its own.
 *
 * procwide__arch_clone_vm(flags, stack_top, fn, arg) makes clone(flags,
 * stack_top) and runs fn(arg) in the child, which must not return (if it
 * does, the child exits).  It returns the child's pid, or -errno, in the
 * parent.  This cannot be C: with CLONE_VM the child runs on the new stack
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
#ifndef PW_ARCH_CLONE_H
#define PW_ARCH_CLONE_H

__attribute__((visibility("hidden"))) long procwide__arch_clone_vm(unsigned long flags,
								   void *stack_top,
								   void (*fn)(void *),
								   void *arg);

#define PW_ARCH_CLONE_ASM                                                      \
	".pushsection .text\n"                                                 \
	".globl procwide__arch_clone_vm\n"                                     \
	".hidden procwide__arch_clone_vm\n"                                    \
	".type procwide__arch_clone_vm, @function\n"                           \
	"procwide__arch_clone_vm:\n"                                           \
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
	".size procwide__arch_clone_vm, . - procwide__arch_clone_vm\n"         \
	".popsection\n"

#endif
