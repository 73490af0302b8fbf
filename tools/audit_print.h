/* SPDX-License-Identifier: MIT */
/* Output of `procwide audit`: the table and the JSON form (procwide(1)). */
#ifndef PW_AUDIT_PRINT_H
#define PW_AUDIT_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "procwide.h"

struct print_opts {
	bool raw;     /* capability sets in hex */
	bool color;   /* mark differing cells with ANSI colour, not '*' */
	int cap_last; /* highest capability number this kernel knows */
};

/* Both return 0, or -ENOMEM; write errors are left to ferror(f). */
int audit_print_table(FILE *f, const struct procwide_audit *a,
		      const struct print_opts *o);
int audit_print_json(FILE *f, const struct procwide_audit *a);

#endif
