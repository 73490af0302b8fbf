/* SPDX-License-Identifier: MIT */
/* "Verify after": read every thread's /proc status once the change is made
 * and compare it with what was asked.  The status files are opened before
 * the change: a Landlock domain may forbid opening anything under /proc
 * afterwards, but Landlock checks at open(2), and reading a descriptor
 * opened earlier still works (a seq_file regenerates its text on a read at
 * offset 0). */
#include "security.h"
#include "audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct pws_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* The thread IDs listed now, into a malloc'ed array; count or -errno.  The
 * list is re-read until the kernel's count (st_nlink - 2) agrees: readdir
 * can skip a live thread while others exit. */
static long pws_list(int taskfd, pid_t **out)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		size_t n = 0, cap = 64;
		pid_t *tids = malloc(cap * sizeof *tids);
		if (!tids)
			return -ENOMEM;
		if (lseek(taskfd, 0, SEEK_SET) < 0) {
			free(tids);
			return -errno;
		}
		_Alignas(8) char buf[4096];
		for (;;) {
			long got = syscall(SYS_getdents64, taskfd, buf, sizeof buf);
			if (got < 0) {
				free(tids);
				return -errno;
			}
			if (got == 0)
				break;
			for (long off = 0; off < got;) {
				struct pws_dirent64 *d = (struct pws_dirent64 *)(void *)(buf + off);
				off += d->d_reclen;
				char *end;
				long tid = strtol(d->d_name, &end, 10);
				if (*end || tid <= 0)
					continue;
				if (n == cap) {
					pid_t *more = realloc(tids, 2 * cap * sizeof *tids);
					if (!more) {
						free(tids);
						return -ENOMEM;
					}
					tids = more;
					cap *= 2;
				}
				tids[n++] = (pid_t)tid;
			}
		}
		struct stat st;
		if (fstat(taskfd, &st) < 0) {
			free(tids);
			return -errno;
		}
		if (st.st_nlink >= 2 && (size_t)(st.st_nlink - 2) == n) {
			*out = tids;
			return (long)n;
		}
		free(tids);
	}
	return -EAGAIN;
}

/* The whole text behind fd, read from offset 0, NUL-terminated. */
static int pws_read_fd(int fd, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 == cap) {
			char *more = realloc(buf, cap * 2);
			if (!more) {
				free(buf);
				return -ENOMEM;
			}
			buf = more;
			cap *= 2;
		}
		ssize_t got = pread(fd, buf + len, cap - 1 - len, (off_t)len);
		if (got < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

static int pws_open_status(int taskfd, pid_t tid)
{
	char path[32];
	snprintf(path, sizeof path, "%d/status", (int)tid);
	int fd = openat(taskfd, path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Parses one thread: 1 if it is gone or a zombie (it runs no code: skip),
 * 0 when parsed into t, or -errno. */
static int pws_parse(int fd, struct procwide_audit_thread *t)
{
	char *text = NULL;
	int err = pws_read_fd(fd, &text);
	if (err)
		return err == -ESRCH ? 1 : err;
	if (!text[0]) {
		free(text);
		return 1;
	}
	const char *st = strstr(text, "\nState:");
	if (st) {
		st += 7;
		while (*st == ' ' || *st == '\t')
			st++;
		if (*st == 'Z' || *st == 'X') {
			free(text);
			return 1;
		}
	}
	memset(t, 0, sizeof *t);
	t->size = sizeof *t;
	pid_t tgid;
	err = pwa_parse_status(text, t, &tgid);
	free(text);
	return err;
}

void procwide__verify_close(struct pws_verify *v)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->t[i].fd >= 0)
			close(v->t[i].fd);
	free(v->t);
	if (v->taskfd >= 0)
		close(v->taskfd);
	memset(v, 0, sizeof *v);
	v->taskfd = -1;
}

/* Status files kept open at most: half of RLIMIT_NOFILE, so that one
 * descriptor per thread cannot exhaust the table (the soft limit is often
 * 1024).  Threads past this are read again by opening their file at check
 * time; where a Landlock domain forbids that, the check fails (closed). */
static size_t pws_keep_max(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 512;
	return (size_t)rl.rlim_cur / 2;
}

int procwide__verify_open(struct pws_verify *v, bool keep)
{
	memset(v, 0, sizeof *v);
	v->caller = (pid_t)syscall(SYS_gettid);
	v->taskfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->taskfd < 0)
		return -errno;
	pid_t *tids;
	long n = pws_list(v->taskfd, &tids);
	if (n < 0) {
		int e = (int)n;
		procwide__verify_close(v);
		return e;
	}
	v->t = calloc((size_t)n ? (size_t)n : 1, sizeof *v->t);
	if (!v->t) {
		free(tids);
		procwide__verify_close(v);
		return -ENOMEM;
	}
	v->cap = (size_t)n;
	size_t kept = 0, keep_max = keep ? pws_keep_max() : 0;
	for (long i = 0; i < n; i++) {
		struct pws_verify_thread *vt = &v->t[v->n];
		int fd = pws_open_status(v->taskfd, tids[i]);
		if (fd == -ENOENT || fd == -ESRCH)
			continue; /* exited meanwhile */
		if (fd < 0) {
			free(tids);
			procwide__verify_close(v);
			return fd;
		}
		vt->tid = tids[i];
		struct procwide_audit_thread t;
		if (pws_parse(fd, &t) == 0) {
			vt->seccomp_filters = t.seccomp_filters;
			vt->have_before = true;
			free((void *)t.groups);
		}
		/* The caller's own file is always kept: it is read first. */
		if (keep && (kept < keep_max || tids[i] == v->caller)) {
			vt->fd = fd;
			kept++;
		} else {
			close(fd);
			vt->fd = -1;
		}
		v->n++;
	}
	free(tids);
	return 0;
}

static struct pws_verify_thread *pws_find(struct pws_verify *v, pid_t tid)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->t[i].tid == tid)
			return &v->t[i];
	return NULL;
}

/* Reads thread tid now into t: 0, 1 (gone or zombie), or -errno. */
static int pws_read_thread(struct pws_verify *v, pid_t tid, struct procwide_audit_thread *t)
{
	struct pws_verify_thread *vt = pws_find(v, tid);
	if (vt && vt->fd >= 0)
		return pws_parse(vt->fd, t);
	/* A thread whose file was not kept, or one created since the
	 * snapshot (it inherited its creator's state, but it must still be
	 * read): if /proc can no longer be opened it cannot be verified,
	 * which is an error. */
	int fd = pws_open_status(v->taskfd, tid);
	if (fd == -ENOENT || fd == -ESRCH)
		return 1;
	if (fd < 0)
		return fd;
	int err = pws_parse(fd, t);
	close(fd);
	return err;
}

int procwide__verify_check(struct pws_verify *v, struct pws_ctx *ctx, pws_check_fn check,
			   const void *arg)
{
	struct procwide_audit_thread caller, t;
	char why[160] = "";
	int err = pws_read_thread(v, v->caller, &caller);
	if (err) {
		/* The change is made: whatever stops the check is an error of
		 * the "cannot say it worked" kind, never "nothing changed". */
		procwide__sec_msg(ctx, "verify: cannot read the calling thread's status: %s",
				  err > 0 ? "gone" : strerror(-err));
		return -ENOTRECOVERABLE;
	}
	err = check(&caller, &caller, pws_find(v, v->caller), arg, why, sizeof why);
	if (err) {
		ctx->tid = v->caller;
		procwide__sec_msg(ctx, "verify: calling thread %d: %s", (int)v->caller, why);
		free((void *)caller.groups);
		return -ENOTRECOVERABLE;
	}
	pid_t *tids;
	long n = pws_list(v->taskfd, &tids);
	if (n < 0) {
		free((void *)caller.groups);
		procwide__sec_msg(ctx, "verify: cannot list the threads: %s", strerror((int)-n));
		return -ENOTRECOVERABLE;
	}
	size_t checked = 1;
	for (long i = 0; i < n && !err; i++) {
		if (tids[i] == v->caller)
			continue;
		int r = pws_read_thread(v, tids[i], &t);
		if (r == 1)
			continue;
		if (r < 0) {
			ctx->tid = tids[i];
			procwide__sec_msg(ctx, "verify: cannot read thread %d: %s", (int)tids[i],
					  strerror(-r));
			err = -ENOTRECOVERABLE;
			break;
		}
		if (check(&t, &caller, pws_find(v, tids[i]), arg, why, sizeof why)) {
			ctx->tid = tids[i];
			procwide__sec_msg(ctx, "verify: thread %d: %s", (int)tids[i], why);
			err = -ENOTRECOVERABLE;
		}
		free((void *)t.groups);
		checked++;
	}
	free(tids);
	free((void *)caller.groups);
	if (!err) {
		ctx->verified = 1;
		ctx->nthreads = checked;
	}
	return err;
}

int procwide__check_nnp(const struct procwide_audit_thread *t,
			const struct procwide_audit_thread *caller,
			const struct pws_verify_thread *before, const void *arg, char *why,
			size_t whysz)
{
	(void)caller, (void)before, (void)arg;
	if (!(t->present & (1u << PROCWIDE_AUDIT_NO_NEW_PRIVS))) {
		snprintf(why, whysz, "NoNewPrivs is not shown by this kernel");
		return 1;
	}
	if (t->no_new_privs != 1) {
		snprintf(why, whysz, "NoNewPrivs is %d, not 1", t->no_new_privs);
		return 1;
	}
	return 0;
}
