/* SPDX-License-Identifier: MIT */
/*
 * procwide_audit(): a read-only view of every thread's security state, from
 * /proc/PID/task/TID/{status,comm,stat}, and where the threads disagree.
 *
 * It does not use the engine: it stops nothing and changes nothing, so it
 * can audit any process the caller may read, including its own.
 */
#include "audit_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * readdir() of /proc/PID/task is not a snapshot: it can skip a live thread
 * while other threads exit during the scan (seen in 6-11 % of scans with
 * 300 exiting threads).  st_nlink of the directory is 2 + the number of
 * threads, so a sweep is trusted only when that count is the same before and
 * after it and equals what the sweep listed; the table is the union of all
 * sweeps (a thread seen once and gone by the time it is read is dropped),
 * and at least two sweeps are made.  A process that never holds still for
 * one sweep gets -EAGAIN rather than a table that may miss a thread.
 */
#define MAX_SWEEPS 1000

struct procwide_audit {
	pid_t pid;
	size_t n;
	struct procwide_audit_thread *threads;
	int *cls;			       /* [field * n + i] */
	size_t nvalues[PROCWIDE_AUDIT_NFIELDS];
};

struct tids {
	pid_t *v;
	size_t n, cap;
};

static int tids_push(struct tids *t, pid_t tid)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		pid_t *nv = realloc(t->v, ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	t->v[t->n++] = tid;
	return 0;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* all := all U cur (both sorted); *added counts TIDs new to all. */
static int tids_merge(struct tids *all, const struct tids *cur, size_t *added)
{
	struct tids out = { 0 };
	size_t i = 0, j = 0;
	int err = 0;

	*added = 0;
	while (!err && (i < all->n || j < cur->n)) {
		if (j == cur->n || (i < all->n && all->v[i] < cur->v[j])) {
			err = tids_push(&out, all->v[i++]);
		} else if (i == all->n || cur->v[j] < all->v[i]) {
			err = tids_push(&out, cur->v[j++]);
			++*added;
		} else {
			err = tids_push(&out, all->v[i++]);
			j++;
		}
	}
	if (err) {
		free(out.v);
		return err;
	}
	free(all->v);
	*all = out;
	return 0;
}

/* A name in /proc/PID/task: a TID, all digits. */
static bool parse_tid(const char *s, pid_t *tid)
{
	long v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 0x7fffffff / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v <= 0 || v > 0x7fffffff)
		return false;
	*tid = (pid_t)v;
	return true;
}

/* One readdir() pass over the task directory into cur (sorted). */
static int sweep(DIR *d, struct tids *cur)
{
	cur->n = 0;
	rewinddir(d);
	for (;;) {
		struct dirent *e;
		pid_t tid;
		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno == 0)
				break;
			/* The process died: proc_task_readdir() gives ENOENT. */
			return errno == ENOENT ? -ESRCH : -errno;
		}
		if (!parse_tid(e->d_name, &tid))
			continue;
		if (tids_push(cur, tid))
			return -ENOMEM;
	}
	qsort(cur->v, cur->n, sizeof *cur->v, cmp_tid);
	return 0;
}

/* Every TID of the process whose task directory is open as d. */
static int list_tids(DIR *d, struct tids *all)
{
	struct tids cur = { 0 };
	int err = -EAGAIN;

	for (int i = 0; i < MAX_SWEEPS; i++) {
		struct stat before, after;
		size_t added;

		if (fstat(dirfd(d), &before)) {
			err = -errno;
			break;
		}
		err = sweep(d, &cur);
		if (err)
			break;
		if (fstat(dirfd(d), &after)) {
			err = -errno;
			break;
		}
		err = tids_merge(all, &cur, &added);
		if (err)
			break;
		if (i >= 1 && before.st_nlink == after.st_nlink &&
		    before.st_nlink == (nlink_t)cur.n + 2) {
			err = 0;
			break;
		}
		err = -EAGAIN;
	}
	free(cur.v);
	return err;
}

/* Read a whole /proc file (relative to dirfd) into a NUL-terminated,
 * malloc'ed buffer.  /proc files report size 0: read until EOF. */
static int read_at(int dirfd, const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		free(buf);
		return err;
	}
	for (;;) {
		ssize_t r;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* ENOENT or ESRCH on a thread's files: the thread has exited. */
static bool gone(int err)
{
	return err == -ENOENT || err == -ESRCH;
}

/* Fill t for one TID: 0, 1 when the thread is gone, or -errno. */
static int read_thread(int taskfd, pid_t tid, pid_t pid,
		       struct procwide_audit_thread *t)
{
	char path[48], *text = NULL;
	pid_t tgid = 0;
	size_t len;
	int err;

	memset(t, 0, sizeof *t);
	t->size = sizeof *t;
	t->tid = tid;

	snprintf(path, sizeof path, "%d/status", (int)tid);
	err = read_at(taskfd, path, &text);
	if (err)
		return gone(err) ? 1 : err;
	err = pwa_parse_status(text, t, &tgid);
	free(text);
	if (err)
		return err;
	if (tgid != pid) {
		err = -EIO;
		goto fail;
	}

	snprintf(path, sizeof path, "%d/comm", (int)tid);
	err = read_at(taskfd, path, &text);
	if (err)
		goto fail;
	/* The name may itself hold a newline: drop only the last one. */
	len = strlen(text);
	if (len && text[len - 1] == '\n')
		len--;
	if (len >= sizeof t->name)
		len = sizeof t->name - 1;
	memcpy(t->name, text, len);
	t->name[len] = '\0';
	free(text);

	snprintf(path, sizeof path, "%d/stat", (int)tid);
	err = read_at(taskfd, path, &text);
	if (err)
		goto fail;
	err = pwa_parse_stat_state(text, &t->state);
	free(text);
	if (err)
		goto fail;
	return 0;
fail:
	free((void *)t->groups);
	t->groups = NULL;
	return gone(err) ? 1 : err;
}

static bool same_value(const struct procwide_audit_thread *a,
		       const struct procwide_audit_thread *b, int field)
{
	uint32_t bit = 1u << field;

	if ((a->present & bit) != (b->present & bit))
		return false;
	if (!(a->present & bit))
		return true;
	switch (field) {
	case PROCWIDE_AUDIT_NO_NEW_PRIVS:
		return a->no_new_privs == b->no_new_privs;
	case PROCWIDE_AUDIT_SECCOMP:
		return a->seccomp == b->seccomp;
	case PROCWIDE_AUDIT_SECCOMP_FILTERS:
		return a->seccomp_filters == b->seccomp_filters;
	case PROCWIDE_AUDIT_UID:
		return memcmp(a->uid, b->uid, sizeof a->uid) == 0;
	case PROCWIDE_AUDIT_GID:
		return memcmp(a->gid, b->gid, sizeof a->gid) == 0;
	case PROCWIDE_AUDIT_GROUPS:
		return a->ngroups == b->ngroups &&
		       (a->ngroups == 0 ||
			memcmp(a->groups, b->groups, a->ngroups * sizeof *a->groups) == 0);
	case PROCWIDE_AUDIT_CAP_EFF:
		return a->cap_eff == b->cap_eff;
	case PROCWIDE_AUDIT_CAP_PRM:
		return a->cap_prm == b->cap_prm;
	case PROCWIDE_AUDIT_CAP_INH:
		return a->cap_inh == b->cap_inh;
	case PROCWIDE_AUDIT_CAP_BND:
		return a->cap_bnd == b->cap_bnd;
	case PROCWIDE_AUDIT_CAP_AMB:
		return a->cap_amb == b->cap_amb;
	case PROCWIDE_AUDIT_SPEC_STORE_BYPASS:
		return strcmp(a->spec_store_bypass, b->spec_store_bypass) == 0;
	case PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH:
		return strcmp(a->spec_indirect_branch, b->spec_indirect_branch) == 0;
	}
	return false;
}

/*
 * Partition the threads by value, field by field.  Quadratic only in the
 * number of distinct values, which is 1 or 2 in any process worth auditing.
 */
static int classify(struct procwide_audit *a)
{
	size_t n = a->n;
	size_t *first = malloc(n * sizeof *first); /* first thread of a class */
	size_t *count = malloc(n * sizeof *count);
	int *map = malloc(n * sizeof *map);

	a->cls = malloc(PROCWIDE_AUDIT_NFIELDS * n * sizeof *a->cls);
	if (!first || !count || !map || !a->cls) {
		free(first);
		free(count);
		free(map);
		return -ENOMEM;
	}
	for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++) {
		int *cls = a->cls + (size_t)f * n;
		size_t k = 0, major = 0;

		for (size_t i = 0; i < n; i++) {
			size_t c;
			for (c = 0; c < k; c++)
				if (same_value(&a->threads[first[c]], &a->threads[i], f))
					break;
			if (c == k) {
				first[k] = i;
				count[k++] = 0;
			}
			count[c]++;
			cls[i] = (int)c;
		}
		/* The majority; on a tie the main thread's value, then the
		 * value seen first (classes are in order of first thread). */
		for (size_t c = 1; c < k; c++) {
			if (count[c] > count[major])
				major = c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t c = (size_t)cls[i];
			if (a->threads[i].tid == a->pid && count[c] == count[major])
				major = c;
		}
		/* Renumber: the majority becomes 0, the others keep their
		 * order. */
		for (size_t c = 0, next = 1; c < k; c++)
			map[c] = c == major ? 0 : (int)next++;
		for (size_t i = 0; i < n; i++)
			cls[i] = map[cls[i]];
		a->nvalues[f] = k;
	}
	free(first);
	free(count);
	free(map);
	return 0;
}

/* Open /proc/PID (or /proc/self); map "not there" to ESRCH, or to ENOENT
 * when /proc itself is missing. */
static int open_proc_dir(pid_t pid)
{
	char path[32];
	int fd, err;

	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self");
	else
		snprintf(path, sizeof path, "/proc/%d", (int)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	err = -errno;
	if (err == -ENOENT) {
		struct stat st;
		if (stat("/proc/self/status", &st) != 0)
			return -ENOENT; /* /proc is not mounted */
		return -ESRCH;
	}
	return err;
}

static void free_threads(struct procwide_audit_thread *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)t[i].groups);
	free(t);
}

static int gather(struct procwide_audit *a, int piddir)
{
	struct tids all = { 0 };
	char *text = NULL;
	DIR *d = NULL;
	int taskfd, err;
	struct procwide_audit_thread scratch;

	/* The thread group ID: a TID names its whole process, and self needs
	 * the number as this /proc shows it. */
	err = read_at(piddir, "status", &text);
	if (err)
		return gone(err) ? -ESRCH : err;
	err = pwa_parse_status(text, &scratch, &a->pid);
	free(text);
	if (err)
		return err;
	free((void *)scratch.groups);

	taskfd = openat(piddir, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (taskfd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	d = fdopendir(taskfd);
	if (!d) {
		err = -errno;
		close(taskfd);
		return err;
	}
	err = list_tids(d, &all);
	if (err)
		goto out;
	if (all.n == 0) {
		err = -ESRCH;
		goto out;
	}
	a->threads = calloc(all.n, sizeof *a->threads);
	if (!a->threads) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < all.n; i++) {
		err = read_thread(dirfd(d), all.v[i], a->pid, &a->threads[a->n]);
		if (err < 0)
			goto out;
		if (err == 0)
			a->n++;
	}
	err = a->n ? 0 : -ESRCH; /* every thread exited: the process did */
out:
	free(all.v);
	closedir(d);
	return err;
}

PROCWIDE_API int procwide_audit(pid_t pid, struct procwide_audit **out)
{
	struct procwide_audit *a;
	int piddir, err;

	if (pid < 0 || !out)
		return -EINVAL;
	a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	piddir = open_proc_dir(pid);
	if (piddir < 0) {
		free(a);
		return piddir;
	}
	err = gather(a, piddir);
	close(piddir);
	if (!err)
		err = classify(a);
	if (err) {
		procwide_audit_free(a);
		return err;
	}
	*out = a;
	return 0;
}

PROCWIDE_API void procwide_audit_free(struct procwide_audit *audit)
{
	if (!audit)
		return;
	free_threads(audit->threads, audit->n);
	free(audit->cls);
	free(audit);
}

PROCWIDE_API pid_t procwide_audit_pid(const struct procwide_audit *audit)
{
	return audit ? audit->pid : 0;
}

PROCWIDE_API size_t procwide_audit_nthreads(const struct procwide_audit *audit)
{
	return audit ? audit->n : 0;
}

PROCWIDE_API const struct procwide_audit_thread *
procwide_audit_thread(const struct procwide_audit *audit, size_t i)
{
	if (!audit || i >= audit->n)
		return NULL;
	return &audit->threads[i];
}

static const char *const field_names[PROCWIDE_AUDIT_NFIELDS] = {
	[PROCWIDE_AUDIT_NO_NEW_PRIVS] = "no_new_privs",
	[PROCWIDE_AUDIT_SECCOMP] = "seccomp",
	[PROCWIDE_AUDIT_SECCOMP_FILTERS] = "seccomp_filters",
	[PROCWIDE_AUDIT_UID] = "uid",
	[PROCWIDE_AUDIT_GID] = "gid",
	[PROCWIDE_AUDIT_GROUPS] = "groups",
	[PROCWIDE_AUDIT_CAP_EFF] = "cap_eff",
	[PROCWIDE_AUDIT_CAP_PRM] = "cap_prm",
	[PROCWIDE_AUDIT_CAP_INH] = "cap_inh",
	[PROCWIDE_AUDIT_CAP_BND] = "cap_bnd",
	[PROCWIDE_AUDIT_CAP_AMB] = "cap_amb",
	[PROCWIDE_AUDIT_SPEC_STORE_BYPASS] = "speculation.store_bypass",
	[PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH] = "speculation.indirect_branch",
};

PROCWIDE_API const char *procwide_audit_field_name(int field)
{
	if (field < 0 || field >= PROCWIDE_AUDIT_NFIELDS)
		return NULL;
	return field_names[field];
}

PROCWIDE_API size_t procwide_audit_nvalues(const struct procwide_audit *audit,
					   int field)
{
	if (!audit || field < 0 || field >= PROCWIDE_AUDIT_NFIELDS)
		return 0;
	return audit->nvalues[field];
}

PROCWIDE_API int procwide_audit_value_class(const struct procwide_audit *audit,
					    int field, size_t i)
{
	if (!audit || field < 0 || field >= PROCWIDE_AUDIT_NFIELDS || i >= audit->n)
		return -EINVAL;
	return audit->cls[(size_t)field * audit->n + i];
}

PROCWIDE_API size_t procwide_audit_ndivergent(const struct procwide_audit *audit)
{
	size_t k = 0;
	if (!audit)
		return 0;
	for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++)
		k += audit->nvalues[f] > 1;
	return k;
}
