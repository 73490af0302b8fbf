/* The instructions an injected thread runs: `syscall; int3` (see
 * src/arch/x86_64/inject_arch.h). */
#include "raw.h"
#include "arch/x86_64/inject_arch.h"

__asm__(PW_ARCH_GADGET_ASM);
