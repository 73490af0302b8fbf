/* Instructions the ptrace machinery needs in the library's text: what an
 * injected thread runs, `syscall; int3` or the stub of the return path
 * (src/arch/x86_64/inject_arch.h), and the start of the helper process
 * (the same file). */
#include "raw.h"
#include "arch/x86_64/inject_arch.h"
#include "inject.h"

#include <time.h>

/* Tests only (PROCWIDE_TEST_TAIL_SLEEP=1, read at load): the stub sleeps
 * 300 ms after storing its result, so that the next call finds the thread
 * in the stub's tail. */
bool procwide__test_tail_sleep;
const struct timespec procwide__test_tail_ts = {0, 300000000L};

__asm__(PW_ARCH_GADGET_ASM);
__asm__(PW_ARCH_STUB_ASM);
__asm__(PW_ARCH_CLONE_ASM);
