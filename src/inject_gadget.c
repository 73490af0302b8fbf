/* Instructions the ptrace machinery needs in the library's text: what an
 * injected thread runs, `syscall; int3` (src/arch/x86_64/inject_arch.h),
 * and the start of the helper process (the same file). */
#include "raw.h"
#include "arch/x86_64/inject_arch.h"

__asm__(PW_ARCH_GADGET_ASM);
__asm__(PW_ARCH_CLONE_ASM);
