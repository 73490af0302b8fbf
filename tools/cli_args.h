/* SPDX-License-Identifier: MIT */
/* Command-line parsing for build/procwide, kept pure (no I/O, no globals,
 * no environment) so that tests/test_cli.c can test every form. */
#ifndef PW_CLI_ARGS_H
#define PW_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum cli_command {
	CLI_HELP = 1,	 /* procwide --help, procwide audit --help */
	CLI_VERSION = 2, /* procwide --version */
	CLI_AUDIT = 3,	 /* procwide audit [--json] [--raw] [PID|self] */
};

struct cli_args {
	enum cli_command cmd;
	pid_t pid;  /* CLI_AUDIT: the process, 0 for self */
	bool json;  /* --json */
	bool raw;   /* --raw: capability sets in hex in the table */
};

/*
 * Parse argv[1..argc-1].  Returns 0 with *out filled in, or -1 with a one-line
 * reason (no "procwide: " prefix, no newline) in err[errsz] for a malformed
 * command line; *out is then unspecified.
 */
int cli_parse(int argc, char *const argv[], struct cli_args *out, char *err,
	      size_t errsz);

/* The usage text, ending in a newline. */
extern const char cli_usage[];

#endif
