/* Structs that carry their own size, so that they can grow without
 * breaking the ABI (the libbpf OPTS pattern), shared by every public call
 * that takes options or fills a report. */
#ifndef PW_SIZED_H
#define PW_SIZED_H

#include <stdbool.h>
#include <stddef.h>

#include "raw.h"

/* Does a struct of `size` bytes (from the caller's header) have `field`? */
#define PW_HAS_FIELD(s, field)                                                 \
	((s)->size >= offsetof(__typeof__(*(s)), field) + sizeof((s)->field))

/* A struct from a newer header may be larger than ours: accept it only if
 * every byte we do not know is zero (a request we would ignore is refused,
 * never silently dropped).  One from an older header may be smaller:
 * fields past its end take their defaults. */
PW_HIDDEN bool procwide__tail_is_zero(const void *p, size_t size, size_t known);

/* Copies a fully built struct into the caller's, as far as its size goes,
 * and zeroes whatever the caller's has past ours. */
PW_HIDDEN void procwide__copy_sized(void *dst, size_t dst_size, const void *full,
				    size_t full_size);

#endif
