/* sandbox_server: a multithreaded server that sandboxes itself after
 * start-up, with one procwide_apply_policy() call.
 *
 * A pool of worker threads accepts on a loopback socket.  Once they run,
 * the process applies, to every thread and in the order that works:
 * no_new_privs; when started as root, supplementary groups, gid and uid of
 * nobody and no capabilities left; a Landlock domain (read-only beneath
 * CONTENT_DIR and the process's own /proc entry, no new TCP bind or
 * connect); a seccomp filter that refuses execve and execveat.  Then it shows
 * every thread's state (procwide_audit), and a client forked before the
 * sandbox asks each worker to open files and to exec a program.
 *
 *   build/examples/sandbox_server [CONTENT_DIR]     (default: /usr/share)
 */
#include <procwide.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 4

/* A classic BPF program, spelled out: musl has no <linux/filter.h>. */
struct insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct insn *filter;
};

static struct insn deny_exec[] = {
	{0x20, 0, 0, 4},			/* A = arch */
	{0x15, 1, 0, 0xc000003eu},		/* x86_64? */
	{0x06, 0, 0, 0x80000000u},		/* no: kill the process */
	{0x20, 0, 0, 0},			/* A = syscall number */
	{0x15, 2, 0, SYS_execve},		/* execve: EPERM */
	{0x15, 1, 0, SYS_execveat},		/* execveat: EPERM */
	{0x06, 0, 0, 0x7fff0000u},		/* allow */
	{0x06, 0, 0, 0x00050000u | EPERM},
};

static int listener;

/* One request per connection: "open PATH" or "exec PATH". */
static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char req[256] = "", reply[400];
		ssize_t n = read(c, req, sizeof req - 1);
		if (n > 0)
			req[n] = 0;
		req[strcspn(req, "\n")] = 0;
		int e = 0;
		if (!strncmp(req, "open ", 5)) {
			int fd = open(req + 5, O_RDONLY | O_CLOEXEC);
			e = fd < 0 ? errno : 0;
			if (fd >= 0)
				close(fd);
		} else if (!strncmp(req, "exec ", 5)) {
			char *argv[] = {req + 5, NULL};
			syscall(SYS_execve, req + 5, argv, NULL); /* returns only on failure */
			e = errno;
		}
		snprintf(reply, sizeof reply, "worker %ld: %s -> %s\n", (long)syscall(SYS_gettid), req,
			 e ? strerror(e) : "allowed");
		if (write(c, reply, strlen(reply)) < 0)
			perror("write");
		close(c);
	}
	return NULL;
}

/* The client: forked before the sandbox, so it is not confined itself. */
static void client(int go, uint16_t port, const char *content)
{
	char c;
	if (read(go, &c, 1) != 1)
		_exit(1);
	char allowed[300];
	snprintf(allowed, sizeof allowed, "open %s", content);
	const char *reqs[] = {allowed, "open /etc/passwd", "exec /bin/true", allowed,
			      "open /etc/hostname", "exec /bin/sh"};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
			perror("connect");
			_exit(1);
		}
		if (write(s, reqs[i], strlen(reqs[i])) < 0)
			_exit(1);
		shutdown(s, SHUT_WR);
		char buf[400];
		ssize_t n;
		while ((n = read(s, buf, sizeof buf)) > 0)
			fwrite(buf, 1, (size_t)n, stdout);
		close(s);
	}
	fflush(stdout);
	_exit(0);
}

static void show_threads(void)
{
	struct procwide_audit *a;
	int err = procwide_audit(0, &a);
	if (err) {
		printf("audit: %s\n", strerror(-err));
		return;
	}
	printf("%-8s %-11s %-4s %-8s %-16s %s\n", "tid", "uid", "nnp", "seccomp", "CapEff", "name");
	for (size_t i = 0; i < procwide_audit_nthreads(a); i++) {
		const struct procwide_audit_thread *t = procwide_audit_thread(a, i);
		printf("%-8d %-11u %-4d %d/%-6d %016llx %s\n", (int)t->tid, (unsigned)t->uid[1],
		       t->no_new_privs, t->seccomp, t->seccomp_filters,
		       (unsigned long long)t->cap_eff, t->name);
	}
	printf("fields where threads disagree: %zu\n\n", procwide_audit_ndivergent(a));
	procwide_audit_free(a);
}

int main(int argc, char **argv)
{
	const char *content = argc > 1 ? argv[1] : "/usr/share";

	/* Start-up: the listening socket and the pool. */
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&sa, &len) != 0) {
		perror("listen");
		return 1;
	}
	int go[2];
	if (pipe(go) != 0)
		return 1;
	pid_t child = fork();
	if (child == 0) {
		close(go[1]);
		client(go[0], ntohs(sa.sin_port), content);
	}
	close(go[0]);
	for (int i = 0; i < NWORKERS; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			return 1;
	}
	printf("before the sandbox:\n");
	show_threads();

	/* The sandbox, built while /proc and the content are still open to
	 * us: Landlock (best effort: whatever this kernel lacks is dropped
	 * and listed), then everything in one call. */
	struct procwide_landlock_attr attr = {
		.size = sizeof attr,
		.handled_access_fs = PROCWIDE_LL_FS_EXECUTE | PROCWIDE_LL_FS_WRITE_FILE |
				     PROCWIDE_LL_FS_READ_FILE | PROCWIDE_LL_FS_READ_DIR |
				     PROCWIDE_LL_FS_REMOVE_DIR | PROCWIDE_LL_FS_REMOVE_FILE |
				     PROCWIDE_LL_FS_MAKE_REG | PROCWIDE_LL_FS_MAKE_DIR |
				     PROCWIDE_LL_FS_MAKE_SYM | PROCWIDE_LL_FS_TRUNCATE,
		.handled_access_net = PROCWIDE_LL_NET_BIND_TCP | PROCWIDE_LL_NET_CONNECT_TCP,
	};
	struct procwide_landlock *ll;
	int err = procwide_landlock_open(&attr, &ll);
	if (!err)
		err = procwide_landlock_allow_path(ll, content, PROCWIDE_LL_FS_READ_FILE |
								    PROCWIDE_LL_FS_READ_DIR);
	/* Our own /proc entry only (the audit below reads it). */
	if (!err)
		err = procwide_landlock_allow_path(ll, "/proc/self", PROCWIDE_LL_FS_READ_FILE |
									 PROCWIDE_LL_FS_READ_DIR);
	if (err) {
		fprintf(stderr, "landlock ruleset: %s\n", strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < procwide_landlock_ndowngrades(ll); i++) {
		const struct procwide_landlock_downgrade *d = procwide_landlock_downgrade(ll, i);
		printf("landlock downgrade: kind %d dropped %#llx (needs ABI %d, kernel has %d)\n",
		       d->kind, (unsigned long long)d->dropped, d->required_abi, d->abi);
	}

	struct sock_fprog prog = {sizeof deny_exec / sizeof deny_exec[0], deny_exec};
	static const gid_t no_groups[1];
	struct procwide_policy policy = {
		.size = sizeof policy,
		.apply = PROCWIDE_POLICY_NO_NEW_PRIVS | PROCWIDE_POLICY_AMBIENT_CLEAR |
			 PROCWIDE_POLICY_SECCOMP,
		.landlock_fd = procwide_landlock_fd(ll),
		.seccomp_prog = &prog,
	};
	/* -1: no Landlock in this kernel (best effort; the downgrade is
	 * listed above).  Refuse to go on instead if it must be there. */
	if (policy.landlock_fd >= 0)
		policy.apply |= PROCWIDE_POLICY_LANDLOCK;
	if (geteuid() == 0) {
		/* Root: become nobody, with no capability left. */
		policy.apply |= PROCWIDE_POLICY_GROUPS | PROCWIDE_POLICY_GID |
				PROCWIDE_POLICY_UID | PROCWIDE_POLICY_CAPS;
		policy.ngroups = 0;
		policy.groups = no_groups;
		policy.rgid = policy.egid = policy.sgid = 65534;
		policy.ruid = policy.euid = policy.suid = 65534;
	}
	struct procwide_sec_report rep = {.size = sizeof rep};
	int step;
	err = procwide_apply_policy(&policy, NULL, &rep, &step);
	procwide_landlock_close(ll);
	if (err) {
		fprintf(stderr, "sandbox: step %s failed: %s (%s)\n", procwide_policy_step_name(step),
			strerror(-err), rep.message);
		kill(child, SIGKILL);
		return 1;
	}
	printf("sandboxed: %zu threads verified, last step through the %s\n\n", rep.nthreads,
	       rep.path == PROCWIDE_SEC_PATH_KERNEL ? "kernel's all-threads flag"
						    : "procwide engine");
	printf("after the sandbox:\n");
	show_threads();

	/* Let the client ask the workers. */
	fflush(stdout);
	if (write(go[1], "g", 1) != 1)
		return 1;
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
