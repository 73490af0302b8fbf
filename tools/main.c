/* SPDX-License-Identifier: MIT */
/*
 * build/procwide: a thin command line over the library.  Exit status:
 * 0 uniform, 1 divergent, 2 error (bad arguments, no such process, no
 * permission, write error).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_print.h"
#include "cli_args.h"
#include "procwide.h"

enum { EXIT_UNIFORM = 0, EXIT_DIVERGENT = 1, EXIT_ERROR = 2 };

/* The highest capability number the running kernel knows. */
static int cap_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v >= 0 && v < 64 ? v : 40; /* 40: CAP_CHECKPOINT_RESTORE */
}

/* https://no-color.org: set and not empty turns colour off. */
static int want_color(void)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && !(nc && *nc);
}

static int audit_error(pid_t pid, int err)
{
	char who[32];

	if (pid)
		snprintf(who, sizeof who, "%d", (int)pid);
	else
		snprintf(who, sizeof who, "self");
	switch (err) {
	case -ESRCH:
		fprintf(stderr, "procwide: no such process %s\n", who);
		break;
	case -EACCES:
	case -EPERM:
		fprintf(stderr, "procwide: permission denied reading /proc/%s/task "
			"(Hint: run as the same user as the process, or as root)\n", who);
		break;
	case -ENOENT:
		fprintf(stderr, "procwide: /proc is not mounted "
			"(Hint: mount -t proc proc /proc)\n");
		break;
	case -EAGAIN:
		fprintf(stderr, "procwide: the threads of process %s kept changing "
			"while they were read (Hint: try again)\n", who);
		break;
	default:
		fprintf(stderr, "procwide: cannot audit process %s: %s\n", who,
			strerror(-err));
	}
	return EXIT_ERROR;
}

static int run_audit(const struct cli_args *args)
{
	struct procwide_audit *a = NULL;
	struct print_opts o = {
		.raw = args->raw,
		.color = !args->json && want_color(),
		.cap_last = cap_last_cap(),
	};
	int err, status;

	err = procwide_audit(args->pid, &a);
	if (err)
		return audit_error(args->pid, err);
	if (args->json)
		err = audit_print_json(stdout, a);
	else
		err = audit_print_table(stdout, a, &o);
	status = procwide_audit_ndivergent(a) ? EXIT_DIVERGENT : EXIT_UNIFORM;
	procwide_audit_free(a);
	if (err) {
		fprintf(stderr, "procwide: %s\n", strerror(-err));
		return EXIT_ERROR;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct cli_args args;
	char err[256];
	int status;

	if (cli_parse(argc, argv, &args, err, sizeof err) != 0) {
		fprintf(stderr, "procwide: %s\n%s", err, cli_usage);
		return EXIT_ERROR;
	}
	switch (args.cmd) {
	case CLI_HELP:
		fputs(cli_usage, stdout);
		status = EXIT_SUCCESS;
		break;
	case CLI_VERSION:
		printf("procwide %d.%d\n", PROCWIDE_VERSION_MAJOR, PROCWIDE_VERSION_MINOR);
		status = EXIT_SUCCESS;
		break;
	case CLI_AUDIT:
		status = run_audit(&args);
		break;
	default:
		status = EXIT_ERROR;
	}
	/* A result nobody received is not a result: a full disk or a closed
	 * pipe makes the exit status 2. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "procwide: write error: %s\n", strerror(errno));
		return EXIT_ERROR;
	}
	return status;
}
