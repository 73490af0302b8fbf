/* SPDX-License-Identifier: MIT */
/*
 * build/procwide: the argument parser as a unit (every accepted and rejected
 * form), then the program itself run against child processes built for the
 * test, with the JSON read back by Python's json module.
 */
#include "harness.h"
#include "procwide.h"

/* The parser is a pure function in the tool's own source: test that very
 * file (the Makefile builds tests from tests/test_*.c alone). */
#include "../tools/cli_args.c"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAP_SYS_ADMIN_ 21

/* ---- the parser ---------------------------------------------------------- */

struct accept_case {
	const char *argv[6];
	enum cli_command cmd;
	pid_t pid;
	bool json, raw;
};

static const struct accept_case accepted[] = {
	{ { "procwide", "--help" }, CLI_HELP, 0, false, false },
	{ { "procwide", "-h" }, CLI_HELP, 0, false, false },
	{ { "procwide", "--version" }, CLI_VERSION, 0, false, false },
	{ { "procwide", "-V" }, CLI_VERSION, 0, false, false },
	{ { "procwide", "audit" }, CLI_AUDIT, 0, false, false },
	{ { "procwide", "audit", "self" }, CLI_AUDIT, 0, false, false },
	{ { "procwide", "audit", "1" }, CLI_AUDIT, 1, false, false },
	{ { "procwide", "audit", "1234" }, CLI_AUDIT, 1234, false, false },
	{ { "procwide", "audit", "2147483647" }, CLI_AUDIT, 2147483647, false, false },
	{ { "procwide", "audit", "--json", "42" }, CLI_AUDIT, 42, true, false },
	{ { "procwide", "audit", "42", "--json" }, CLI_AUDIT, 42, true, false },
	{ { "procwide", "audit", "--raw", "self" }, CLI_AUDIT, 0, false, true },
	{ { "procwide", "audit", "--raw", "--json" }, CLI_AUDIT, 0, true, true },
	{ { "procwide", "audit", "--json", "--json" }, CLI_AUDIT, 0, true, false },
	{ { "procwide", "audit", "--", "7" }, CLI_AUDIT, 7, false, false },
	{ { "procwide", "audit", "--json", "--", "self" }, CLI_AUDIT, 0, true, false },
	{ { "procwide", "audit", "--help" }, CLI_HELP, 0, false, false },
	{ { "procwide", "audit", "7", "-h" }, CLI_HELP, 7, false, false },
};

struct reject_case {
	const char *argv[6];
	const char *msg;
};

static const struct reject_case rejected[] = {
	{ { "procwide" }, "missing command" },
	{ { "procwide", "" }, "unknown command ''" },
	{ { "procwide", "audits" }, "unknown command 'audits'" },
	{ { "procwide", "AUDIT" }, "unknown command 'AUDIT'" },
	{ { "procwide", "self" }, "unknown command 'self'" },
	{ { "procwide", "--json", "audit" }, "unknown option '--json'" },
	{ { "procwide", "-x" }, "unknown option '-x'" },
	{ { "procwide", "--help", "audit" }, "unexpected argument 'audit'" },
	{ { "procwide", "--version", "x" }, "unexpected argument 'x'" },
	{ { "procwide", "audit", "--jsn" }, "unknown option '--jsn'" },
	{ { "procwide", "audit", "--json=1" }, "unknown option '--json=1'" },
	{ { "procwide", "audit", "-j" }, "unknown option '-j'" },
	{ { "procwide", "audit", "-1" }, "unknown option '-1'" },
	{ { "procwide", "audit", "0" },
	  "invalid process ID '0' (a positive number, or self)" },
	{ { "procwide", "audit", "007" },
	  "invalid process ID '007' (a positive number, or self)" },
	{ { "procwide", "audit", "+5" },
	  "invalid process ID '+5' (a positive number, or self)" },
	{ { "procwide", "audit", " 5" },
	  "invalid process ID ' 5' (a positive number, or self)" },
	{ { "procwide", "audit", "5 " },
	  "invalid process ID '5 ' (a positive number, or self)" },
	{ { "procwide", "audit", "12abc" },
	  "invalid process ID '12abc' (a positive number, or self)" },
	{ { "procwide", "audit", "0x10" },
	  "invalid process ID '0x10' (a positive number, or self)" },
	{ { "procwide", "audit", "" },
	  "invalid process ID '' (a positive number, or self)" },
	{ { "procwide", "audit", "-" },
	  "invalid process ID '-' (a positive number, or self)" },
	{ { "procwide", "audit", "2147483648" },
	  "invalid process ID '2147483648' (a positive number, or self)" },
	{ { "procwide", "audit", "99999999999999999999" },
	  "invalid process ID '99999999999999999999' (a positive number, or self)" },
	{ { "procwide", "audit", "SELF" },
	  "invalid process ID 'SELF' (a positive number, or self)" },
	{ { "procwide", "audit", "1", "2" }, "too many arguments: '2'" },
	{ { "procwide", "audit", "self", "self" }, "too many arguments: 'self'" },
	{ { "procwide", "audit", "--", "--json" },
	  "invalid process ID '--json' (a positive number, or self)" },
};

static int argc_of(const char *const *argv)
{
	int n = 0;
	while (n < 6 && argv[n])
		n++;
	return n;
}

static void parse_accepts(void)
{
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		const struct accept_case *c = &accepted[i];
		struct cli_args a;
		char err[128] = "x";

		PW_CHECK(cli_parse(argc_of(c->argv), (char *const *)c->argv, &a, err,
				   sizeof err) == 0, "case %zu: %s", i, err);
		PW_CHECK(err[0] == '\0', "case %zu: message '%s'", i, err);
		PW_CHECK(a.cmd == c->cmd, "case %zu: cmd %d", i, a.cmd);
		if (c->cmd == CLI_AUDIT) {
			PW_CHECK(a.pid == c->pid, "case %zu: pid %d", i, (int)a.pid);
			PW_CHECK(a.json == c->json && a.raw == c->raw, "case %zu: flags", i);
		}
	}
}

static void parse_rejects(void)
{
	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
		const struct reject_case *c = &rejected[i];
		struct cli_args a;
		char err[128] = "";

		PW_CHECK(cli_parse(argc_of(c->argv), (char *const *)c->argv, &a, err,
				   sizeof err) == -1, "case %zu accepted", i);
		PW_CHECK(strcmp(err, c->msg) == 0, "case %zu: '%s', want '%s'", i,
			 err, c->msg);
	}
}

/* A message is cut to the buffer, never overrun; errsz 0 writes nothing. */
static void parse_small_buffer(void)
{
	const char *argv[] = { "procwide", "audit", "12abc", NULL };
	struct cli_args a;
	char err[8];

	memset(err, 'z', sizeof err);
	PW_EQ_LONG(cli_parse(3, (char *const *)argv, &a, err, 6), -1);
	PW_CHECK(memcmp(err, "inval\0zz", 8) == 0, "'%.8s'", err);
	memset(err, 'z', sizeof err);
	PW_EQ_LONG(cli_parse(3, (char *const *)argv, &a, err, 0), -1);
	PW_CHECK(err[0] == 'z', "errsz 0 wrote");
}

/* ---- running build/<variant>/procwide ---------------------------------------- */

static void cli_path(char *out, size_t outsz)
{
	char exe[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;

	PW_CHECK(n > 0, "readlink /proc/self/exe");
	exe[n] = '\0';
	/* build/<variant>/tests/test_cli -> build/<variant>/procwide */
	slash = strrchr(exe, '/');
	PW_CHECK(slash, "%s", exe);
	*slash = '\0';
	slash = strrchr(exe, '/');
	PW_CHECK(slash, "%s", exe);
	PW_CHECK((size_t)(slash - exe) + sizeof "/procwide" <= outsz, "%s", exe);
	memcpy(slash, "/procwide", sizeof "/procwide");
	memcpy(out, exe, strlen(exe) + 1);
	if (access(out, X_OK) != 0)
		pw_fail(__FILE__, __LINE__, "access", "%s: %s (build it: make tools)",
			out, strerror(errno));
}

struct run {
	int status; /* exit status, or 128 + signal */
	char out[65536];
	char err[4096];
};

/* Run path (searched in PATH when it has no slash) with argv with stdout, stderr
 * captured; stdin is /dev/null.  no_color: set NO_COLOR=1, else unset. */
static void run_prog(const char *path, const char *const argv[], bool no_color,
		     int stdout_fd, struct run *r)
{
	int o[2], e[2];
	size_t no = 0, ne = 0;
	pid_t pid;
	int st;

	PW_EQ_LONG(pipe2(o, O_CLOEXEC), 0);
	PW_EQ_LONG(pipe2(e, O_CLOEXEC), 0);
	pid = fork();
	PW_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(stdout_fd >= 0 ? stdout_fd : o[1], 1);
		dup2(e[1], 2);
		if (no_color)
			setenv("NO_COLOR", "1", 1);
		else
			unsetenv("NO_COLOR");
		execvp(path, (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	{
		struct pollfd p[2] = { { o[0], POLLIN, 0 }, { e[0], POLLIN, 0 } };
		while (p[0].fd >= 0 || p[1].fd >= 0) {
			PW_CHECK(poll(p, 2, 20000) > 0, "poll: %s", strerror(errno));
			for (int i = 0; i < 2; i++) {
				char *buf = i ? r->err : r->out;
				size_t *len = i ? &ne : &no;
				size_t cap = (i ? sizeof r->err : sizeof r->out) - 1;
				ssize_t n;
				if (p[i].fd < 0 || !p[i].revents)
					continue;
				PW_CHECK(*len < cap, "output too long");
				n = read(p[i].fd, buf + *len, cap - *len);
				if (n > 0) {
					*len += (size_t)n;
				} else {
					close(p[i].fd);
					p[i].fd = -1;
				}
			}
		}
	}
	r->out[no] = '\0';
	r->err[ne] = '\0';
	PW_EQ_LONG(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void run_cli(const char *const args[], struct run *r)
{
	char path[PATH_MAX];
	const char *argv[8] = { "procwide" };
	int i = 0;

	cli_path(path, sizeof path);
	for (; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	run_prog(path, argv, true, -1, r);
}

/* ---- target processes ---------------------------------------------------------- */

enum target_kind { T_UNIFORM, T_NNP, T_NAME };

/* A name with every kind of byte JSON must escape, and UTF-8 (é) and a
 * byte that is not UTF-8 (0xff): 9 bytes, below the 15 of TASK_COMM_LEN. */
static const char odd_name[] = "q\"\\\n\t\x01\xff\xc3\xa9";

struct target {
	pid_t pid;
	pid_t tids[4]; /* main, idle, idle, odd */
	int ctl;       /* closing it ends the target */
};

static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER;
static int t_ready;
static pid_t t_tids[3];
static enum target_kind t_kind;

static void *target_thread(void *arg)
{
	int k = (int)(intptr_t)arg;

	if (k == 2 && t_kind == T_NNP && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		_exit(3);
	if (k == 2 && t_kind == T_NAME && prctl(PR_SET_NAME, odd_name, 0, 0, 0))
		_exit(3);
	pthread_mutex_lock(&t_mu);
	t_tids[k] = pw_gettid();
	t_ready++;
	pthread_cond_broadcast(&t_cv);
	pthread_mutex_unlock(&t_mu);
	for (;;)
		pause();
	return NULL;
}

/* Every descriptor but keep: the harness's own pipes must not stay open in
 * a process that outlives a failed check. */
static void close_all_but(int keep1, int keep2)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

static void target_start(struct target *t, enum target_kind kind)
{
	int rep[2], ctl[2];
	char c;

	PW_EQ_LONG(pipe(rep), 0);
	PW_EQ_LONG(pipe(ctl), 0);
	t->pid = fork();
	PW_CHECK(t->pid >= 0, "fork");
	if (t->pid == 0) {
		pthread_t th;
		pid_t tids[4];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close_all_but(rep[1], ctl[0]);
		t_kind = kind;
		for (intptr_t k = 0; k < 3; k++)
			if (pthread_create(&th, NULL, target_thread, (void *)k))
				_exit(4);
		pthread_mutex_lock(&t_mu);
		while (t_ready < 3)
			pthread_cond_wait(&t_cv, &t_mu);
		pthread_mutex_unlock(&t_mu);
		tids[0] = getpid();
		memcpy(tids + 1, t_tids, sizeof t_tids);
		if (write(rep[1], tids, sizeof tids) != sizeof tids)
			_exit(5);
		/* Until the test closes ctl, or dies. */
		while (read(ctl[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(rep[1]);
	close(ctl[0]);
	PW_EQ_LONG(read(rep[0], t->tids, sizeof t->tids), sizeof t->tids);
	close(rep[0]);
	t->ctl = ctl[1];
}

static void target_stop(struct target *t)
{
	int st;
	close(t->ctl);
	PW_EQ_LONG(waitpid(t->pid, &st, 0), t->pid);
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "target status %#x", st);
}

/* ---- Python's reading of the JSON ------------------------------------------------- */

/* Writes json to a file, checks that `python3 -m json.tool` accepts it,
 * then runs `script` (reads the file named by sys.argv[1]) and returns
 * its output in r->out. */
static void python_json(const char *json, const char *script, struct run *r)
{
	char file[] = "/tmp/procwide-test-XXXXXX";
	int fd = mkstemp(file);
	size_t len = strlen(json);

	PW_CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	PW_CHECK(write(fd, json, len) == (ssize_t)len, "write");
	close(fd);
	{
		const char *argv[] = { "python3", "-m", "json.tool", file, NULL };
		run_prog("python3", argv, true, -1, r);
		if (r->status == 127)
			pw_skip("python3 is not installed");
		PW_CHECK(r->status == 0, "json.tool: %s\n%s", r->err, json);
	}
	{
		const char *argv[] = { "python3", "-c", script, file, NULL };
		run_prog("python3", argv, true, -1, r);
	}
	unlink(file);
	PW_CHECK(r->status == 0, "python: %s", r->err);
}

/* ---- cases ------------------------------------------------------------------------ */

static void help_and_version(void)
{
	struct run r;
	char want[64];

	run_cli((const char *[]){ "--help", NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	PW_CHECK(strcmp(r.out, cli_usage) == 0, "help: '%s'", r.out);
	PW_CHECK(r.err[0] == '\0', "stderr: '%s'", r.err);

	run_cli((const char *[]){ "--version", NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	snprintf(want, sizeof want, "procwide %d.%d\n", PROCWIDE_VERSION_MAJOR,
		 PROCWIDE_VERSION_MINOR);
	PW_CHECK(strcmp(r.out, want) == 0, "version: '%s'", r.out);
	PW_CHECK(r.err[0] == '\0', "stderr: '%s'", r.err);
}

static void usage_errors_exit_2(void)
{
	static const struct { const char *args[3]; const char *line; } c[] = {
		{ { NULL }, "procwide: missing command\n" },
		{ { "frob", NULL }, "procwide: unknown command 'frob'\n" },
		{ { "audit", "abc", NULL },
		  "procwide: invalid process ID 'abc' (a positive number, or self)\n" },
		{ { "audit", "--xml", NULL }, "procwide: unknown option '--xml'\n" },
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct run r;
		size_t l = strlen(c[i].line);

		run_cli(c[i].args, &r);
		PW_EQ_LONG(r.status, 2);
		PW_CHECK(r.out[0] == '\0', "stdout: '%s'", r.out);
		PW_CHECK(strncmp(r.err, c[i].line, l) == 0, "stderr: '%s'", r.err);
		PW_CHECK(strcmp(r.err + l, cli_usage) == 0, "usage: '%s'", r.err + l);
	}
}

static void no_such_process_exit_2(void)
{
	pid_t child = fork();
	char pid[16], want[64];
	struct run r;

	PW_CHECK(child >= 0, "fork");
	if (child == 0)
		_exit(0);
	PW_EQ_LONG(waitpid(child, NULL, 0), child);
	snprintf(pid, sizeof pid, "%d", (int)child);
	snprintf(want, sizeof want, "procwide: no such process %d\n", (int)child);
	run_cli((const char *[]){ "audit", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 2);
	PW_CHECK(strcmp(r.err, want) == 0, "stderr: '%s'", r.err);
	PW_CHECK(r.out[0] == '\0', "stdout: '%s'", r.out);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The table row of a thread. */
static const char *row_of(const char *out, pid_t tid)
{
	char head[24];
	const char *p = out;
	snprintf(head, sizeof head, "%d ", (int)tid);
	for (; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, head, strlen(head)) == 0)
			return p;
	pw_fail(__FILE__, __LINE__, "row_of", "no row for %d in:\n%s", (int)tid, out);
}

static void table_uniform_exit_0(void)
{
	struct target t;
	char pid[16];
	struct run r;

	target_start(&t, T_UNIFORM);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	PW_CHECK(r.err[0] == '\0', "stderr: '%s'", r.err);
	PW_EQ_LONG(count_lines(r.out), 1 + 4 + 1);
	PW_CHECK(strncmp(r.out, "TID ", 4) == 0, "header: %s", r.out);
	PW_CHECK(strstr(r.out, "\nuniform: 4 threads agree\n"), "%s", r.out);
	for (int i = 0; i < 4; i++)
		(void)row_of(r.out, t.tids[i]);
	PW_CHECK(!strchr(r.out, '*') && !strchr(r.out, '\033'), "marks: %s", r.out);
	target_stop(&t);
}

static void table_divergent_exit_1(void)
{
	struct target t;
	char pid[16], want[128];
	const char *row;
	struct run r;

	target_start(&t, T_NNP);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 1);
	PW_CHECK(r.err[0] == '\0', "stderr: '%s'", r.err);
	PW_EQ_LONG(count_lines(r.out), 1 + 4 + 1);
	snprintf(want, sizeof want,
		 "\ndivergent: no_new_privs: 3 threads have 0; tid %d has 1\n",
		 (int)t.tids[3]);
	PW_CHECK(strstr(r.out, want), "want '%s' in:\n%s", want + 1, r.out);
	/* Only the odd thread's NNP cell is marked: "1*" after its name. */
	row = row_of(r.out, t.tids[3]);
	PW_CHECK(strstr(row, " 1* ") && strstr(row, " 1* ") < strchr(row, '\n'), "row: %s", row);
	{
		int marks = 0;
		for (const char *p = r.out; *p; p++)
			marks += *p == '*';
		PW_EQ_LONG(marks, 1);
	}
	PW_CHECK(!strchr(r.out, '\033'), "colour in a pipe");
	target_stop(&t);
}

static void json_uniform(void)
{
	struct target t;
	char pid[16], want[512];
	struct run r, py;

	target_start(&t, T_UNIFORM);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", "--json", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	python_json(r.out,
		    "import json, re, sys\n"
		    "d = json.load(open(sys.argv[1]))\n"
		    "ts = d['threads']\n"
		    "caps = ['cap_eff', 'cap_prm', 'cap_inh', 'cap_bnd', 'cap_amb']\n"
		    "print(d['pid'], d['uniform'], sorted(t['tid'] for t in ts),"
		    " d['divergent'])\n"
		    "print(all(re.fullmatch('[0-9a-f]{16}', t[c]) for t in ts for c in caps),"
		    " all(len(t['uid']) == 4 and len(t['gid']) == 4 for t in ts),"
		    " set(type(t['no_new_privs']) for t in ts) == {bool},"
		    " [t['seccomp'] for t in ts], [t['seccomp_filters'] for t in ts],"
		    " sorted(d) == ['divergent', 'pid', 'threads', 'uniform'],"
		    " sorted(ts[0]['speculation']) == ['indirect_branch', 'store_bypass'])\n",
		    &py);
	snprintf(want, sizeof want,
		 "%d True [%d, %d, %d, %d] []\n"
		 "True True True [0, 0, 0, 0] [0, 0, 0, 0] True True\n",
		 (int)t.pid, (int)t.tids[0], (int)t.tids[1], (int)t.tids[2],
		 (int)t.tids[3]);
	PW_CHECK(strcmp(py.out, want) == 0, "python: '%s', want '%s'", py.out, want);
	target_stop(&t);
}

static void json_divergent(void)
{
	struct target t;
	char pid[16], want[512];
	struct run r, py;

	target_start(&t, T_NNP);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", "--json", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 1);
	python_json(r.out,
		    "import json, sys\n"
		    "d = json.load(open(sys.argv[1]))\n"
		    "print(d['pid'], d['uniform'],"
		    " [(t['tid'], t['no_new_privs']) for t in d['threads']])\n"
		    "print(json.dumps(d['divergent']))\n",
		    &py);
	snprintf(want, sizeof want,
		 "%d False [(%d, False), (%d, False), (%d, False), (%d, True)]\n"
		 "[{\"field\": \"no_new_privs\", \"values\": ["
		 "{\"value\": false, \"tids\": [%d, %d, %d]}, "
		 "{\"value\": true, \"tids\": [%d]}]}]\n",
		 (int)t.pid, (int)t.tids[0], (int)t.tids[1], (int)t.tids[2],
		 (int)t.tids[3], (int)t.tids[0], (int)t.tids[1], (int)t.tids[2],
		 (int)t.tids[3]);
	PW_CHECK(strcmp(py.out, want) == 0, "python: '%s', want '%s'", py.out, want);
	target_stop(&t);
}

/* A thread name is bytes from another process: valid JSON, and a table
 * that cannot drive the terminal. */
static void name_escaping(void)
{
	struct target t;
	char pid[16];
	const char *row;
	struct run r, py;

	target_start(&t, T_NAME);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", "--json", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	python_json(r.out,
		    "import json, sys\n"
		    "d = json.load(open(sys.argv[1]))\n"
		    "print(ascii(d['threads'][3]['name']))\n",
		    &py);
	/* 0xff is not UTF-8: it reads as U+00FF; "é" stays U+00E9. */
	PW_CHECK(strcmp(py.out, "'q\"\\\\\\n\\t\\x01\\xff\\xe9'\n") == 0, "name %s", py.out);

	run_cli((const char *[]){ "audit", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	row = row_of(r.out, t.tids[3]);
	{
		static const char want[] = "q\"\\x5c\\x0a\\x09\\x01\\xff\\xc3\\xa9 ";
		const char *name = strchr(row, ' ');
		name += strspn(name, " ");
		PW_CHECK(strncmp(name, want, sizeof want - 1) == 0, "row: %s", row);
	}
	for (const char *p = r.out; *p; p++)
		PW_CHECK((*p >= 0x20 && *p < 0x7f) || *p == '\n', "byte %#x", (unsigned char)*p);
	target_stop(&t);
}

/* --raw: the capability sets exactly as /proc has them. */
static void raw_caps(void)
{
	struct target t;
	char pid[16], bnd[32], want[40];
	struct run r;

	target_start(&t, T_UNIFORM);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);
	run_cli((const char *[]){ "audit", "--raw", pid, NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	{
		char path[64], line[256];
		FILE *f;
		snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)t.pid,
			 (int)t.tids[1]);
		f = fopen(path, "re");
		PW_CHECK(f, "%s", path);
		bnd[0] = '\0';
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "CapBnd: %31s", bnd) == 1)
				break;
		fclose(f);
	}
	PW_EQ_LONG(strlen(bnd), 16);
	snprintf(want, sizeof want, " %s ", bnd);
	for (int i = 0; i < 4; i++) {
		const char *row = row_of(r.out, t.tids[i]);
		const char *hit = strstr(row, want);
		PW_CHECK(hit && hit < strchr(row, '\n'), "no %s in %s", bnd, row);
	}
	target_stop(&t);
}

/* Colour only on a terminal, and never with NO_COLOR. */
static void colour_on_terminal_only(void)
{
	char path[PATH_MAX], pid[16];
	struct target t;
	struct run r;
	int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
	const char *argv[4] = { "procwide", "audit", pid, NULL };

	if (master < 0 || grantpt(master) || unlockpt(master))
		pw_skip("no pseudo-terminal: %s", strerror(errno));
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	PW_CHECK(slave >= 0, "open pty: %s", strerror(errno));
	cli_path(path, sizeof path);
	target_start(&t, T_NNP);
	snprintf(pid, sizeof pid, "%d", (int)t.pid);

	for (int no_color = 0; no_color < 2; no_color++) {
		char buf[65536];
		size_t len = 0;
		ssize_t n;
		struct pollfd p = { master, POLLIN, 0 };

		run_prog(path, argv, no_color, slave, &r);
		PW_EQ_LONG(r.status, 1);
		while (poll(&p, 1, 200) > 0 && len < sizeof buf - 1 &&
		       (n = read(master, buf + len, sizeof buf - 1 - len)) > 0)
			len += (size_t)n;
		buf[len] = '\0';
		PW_CHECK(strstr(buf, "divergent: no_new_privs"), "output: %s", buf);
		if (no_color) {
			PW_CHECK(!strchr(buf, '\033') && strstr(buf, " 1* "), "%s", buf);
		} else {
			PW_CHECK(strstr(buf, "\033[1;31m1\033[0m"), "no colour: %s", buf);
			PW_CHECK(!strstr(buf, " 1* "), "marker with colour: %s", buf);
		}
	}
	close(slave);
	close(master);
	target_stop(&t);
}

/* As root: a private /proc with hidepid=noaccess, uid 65534, pid 1. */
static void permission_denied_hint(void)
{
	char path[PATH_MAX];
	struct run r;

	if (geteuid() != 0 || !pw_have_cap(CAP_SYS_ADMIN_))
		pw_skip("needs root with CAP_SYS_ADMIN to mount a private /proc");
	cli_path(path, sizeof path);
	if (unshare(CLONE_NEWNS) != 0)
		pw_skip("unshare(CLONE_NEWNS): %s", strerror(errno));
	PW_EQ_LONG(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "hidepid=noaccess") != 0)
		pw_skip("mount proc hidepid=noaccess: %s", strerror(errno));
	PW_EQ_LONG(setgroups(0, NULL), 0);
	PW_EQ_LONG(setresgid(65534, 65534, 65534), 0);
	PW_EQ_LONG(setresuid(65534, 65534, 65534), 0);
	if (access(path, X_OK) != 0)
		pw_skip("%s is not executable by uid 65534 (copy the build to a "
			"world-readable directory)", path);
	run_cli((const char *[]){ "audit", "1", NULL }, &r);
	PW_EQ_LONG(r.status, 2);
	PW_CHECK(strcmp(r.err, "procwide: permission denied reading /proc/1/task "
			"(Hint: run as the same user as the process, or as root)\n") == 0,
		 "stderr: '%s'", r.err);
	PW_CHECK(r.out[0] == '\0', "stdout: '%s'", r.out);
}

/* The CLI on itself: one thread, uniform. */
static void audit_self(void)
{
	struct run r;

	run_cli((const char *[]){ "audit", NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	PW_EQ_LONG(count_lines(r.out), 3);
	PW_CHECK(strstr(r.out, "\nuniform: 1 thread\n"), "%s", r.out);
	run_cli((const char *[]){ "audit", "self", NULL }, &r);
	PW_EQ_LONG(r.status, 0);
	PW_CHECK(strstr(r.out, "\nuniform: 1 thread\n"), "%s", r.out);
}

static const struct pw_case cases[] = {
	PW_CASE(parse_accepts),
	PW_CASE(parse_rejects),
	PW_CASE(parse_small_buffer),
	PW_CASE(help_and_version),
	PW_CASE(usage_errors_exit_2),
	PW_CASE(no_such_process_exit_2),
	PW_CASE(table_uniform_exit_0),
	PW_CASE(table_divergent_exit_1),
	PW_CASE(json_uniform),
	PW_CASE(json_divergent),
	PW_CASE(name_escaping),
	PW_CASE(raw_caps),
	PW_CASE(colour_on_terminal_only),
	PW_CASE(permission_denied_hint),
	PW_CASE(audit_self),
};

int main(int argc, char **argv)
{
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
