/* SPDX-License-Identifier: MIT */
#include "cli_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char cli_usage[] =
	"usage: procwide audit [--json] [--raw] [PID|self]\n"
	"       procwide --help\n"
	"       procwide --version\n"
	"\n"
	"audit   show the security state of every thread of a process (default:\n"
	"        procwide itself) and the fields where its threads differ\n"
	"        --json  one JSON object (format: procwide(1))\n"
	"        --raw   capability sets in hex instead of names\n"
	"\n"
	"Exit status: 0 uniform, 1 divergent, 2 error.\n";

/* A process ID: decimal digits, no sign, no blanks, no leading zero,
 * 1..2^31-1 (the kernel's PID_MAX_LIMIT is far lower). */
static bool parse_pid(const char *s, pid_t *pid)
{
	long v = 0;

	if (s[0] < '1' || s[0] > '9')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > 0x7fffffff)
			return false;
	}
	*pid = (pid_t)v;
	return true;
}

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (errsz)
		vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_audit(int argc, char *const argv[], struct cli_args *out,
		       char *err, size_t errsz)
{
	bool have_target = false, only_operands = false;

	out->cmd = CLI_AUDIT;
	out->pid = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!only_operands && a[0] == '-' && a[1] != '\0') {
			if (is(a, "--json"))
				out->json = true;
			else if (is(a, "--raw"))
				out->raw = true;
			else if (is(a, "--help") || is(a, "-h"))
				out->cmd = CLI_HELP;
			else if (is(a, "--"))
				only_operands = true;
			else
				return fail(err, errsz, "unknown option '%s'", a);
			continue;
		}
		if (have_target)
			return fail(err, errsz, "too many arguments: '%s'", a);
		have_target = true;
		if (is(a, "self"))
			out->pid = 0;
		else if (!parse_pid(a, &out->pid))
			return fail(err, errsz,
				    "invalid process ID '%s' (a positive number, or self)", a);
	}
	return 0;
}

int cli_parse(int argc, char *const argv[], struct cli_args *out, char *err,
	      size_t errsz)
{
	const char *cmd;

	memset(out, 0, sizeof *out);
	if (errsz)
		err[0] = '\0';
	if (argc < 2)
		return fail(err, errsz, "%s", "missing command");
	cmd = argv[1];
	if (is(cmd, "--help") || is(cmd, "-h") || is(cmd, "--version") || is(cmd, "-V")) {
		if (argc > 2)
			return fail(err, errsz, "unexpected argument '%s'", argv[2]);
		out->cmd = is(cmd, "--help") || is(cmd, "-h") ? CLI_HELP : CLI_VERSION;
		return 0;
	}
	if (is(cmd, "audit"))
		return parse_audit(argc, argv, out, err, errsz);
	if (cmd[0] == '-')
		return fail(err, errsz, "unknown option '%s'", cmd);
	return fail(err, errsz, "unknown command '%s'", cmd);
}
