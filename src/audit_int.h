/* SPDX-License-Identifier: MIT */
/* Internal to the audit (src/audit.c, src/audit_parse.c): nothing here is
 * exported; the version map keeps only procwide_* and these are hidden. */
#ifndef PW_AUDIT_INT_H
#define PW_AUDIT_INT_H

#include "procwide.h"

#define PWA_HIDDEN __attribute__((visibility("hidden")))

/*
 * Parse the text of /proc/PID/task/TID/status (NUL-terminated) into t: the
 * compared fields, t->present, and a malloc'ed t->groups.  *tgid receives
 * the Tgid line.  Returns 0, -EIO when a line the audit needs is missing or
 * malformed (the kernel's format is then not the one this code knows), or
 * -ENOMEM.  On error t->groups is NULL.
 */
PWA_HIDDEN int pwa_parse_status(const char *text,
				struct procwide_audit_thread *t, pid_t *tgid);

/* The state letter of a /proc/.../stat line: the character after the last
 * ") " (the name in parentheses may itself contain ") ").  0 or -EIO. */
PWA_HIDDEN int pwa_parse_stat_state(const char *text, char *state);

#endif
