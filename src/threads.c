/* Thread discovery from the kernel, not from the C library.
 *
 * glibc and musl know only the threads they created; a raw clone() thread
 * is invisible to them.  The kernel lists every thread in /proc/self/task.
 * procwide opens that directory once, early (from a constructor), and reads
 * it with getdents64 through the open descriptor: a Landlock domain enforced
 * later may forbid opening anything under /proc, but it checks access when a
 * file is opened, not when an open directory is read. */
#include "internal.h"
#include "owned_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static struct {
	struct owned_fd dir;
	/* The main thread's stat, opened with the directory: a main thread
	 * that called pthread_exit stays listed as a zombie, and procwide must
	 * recognise it even after /proc can no longer be opened. */
	struct owned_fd leader;
	pid_t pid;
} taskdir = {PW_OWNED_FD_NONE, PW_OWNED_FD_NONE, 0};

static int open_taskdir(pid_t pid)
{
	/* "self" resolves at open time: after a fork the child must reopen,
	 * or it would list its parent's threads. */
	if (still_ours(&taskdir.dir))
		close(taskdir.dir.fd);
	if (still_ours(&taskdir.leader))
		close(taskdir.leader.fd);
	taskdir.leader.fd = -1;
	taskdir.pid = pid;
	int e = own(&taskdir.dir, open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (e)
		return e;
	char path[48];
	snprintf(path, sizeof path, "%d/stat", (int)pid);
	own(&taskdir.leader, openat(taskdir.dir.fd, path, O_RDONLY | O_CLOEXEC));
	return 0;
}

static void probe_proc_flush_order(void);

__attribute__((constructor)) static void pw_threads_init(void)
{
	open_taskdir(getpid());
	probe_proc_flush_order();
}

int procwide__taskdir_ensure(pid_t pid)
{
	if (taskdir.pid == pid && still_ours(&taskdir.dir))
		return 0;
	/* First use in a forked child, or the descriptor was closed (and
	 * perhaps reused) behind our back: never read one we did not open. */
	int e = open_taskdir(pid);
	return e == -EACCES || e == -EPERM ? -EACCES : e;
}

int procwide__taskdir_sweep(int (*fn)(pid_t tid, uint64_t ino, void *ctx), void *ctx)
{
	/* 16 KiB holds about 700 entries: a few system calls even for
	 * thousands of threads, and small enough for any stack. */
	_Alignas(8) char buf[16384];
	if (lseek(taskdir.dir.fd, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		long n = pw_sys3(SYS_getdents64, taskdir.dir.fd, (long)buf, sizeof buf);
		if (pw_is_err(n))
			return (int)n;
		if (n == 0)
			return 0;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(void *)(buf + off);
			off += d->d_reclen;
			const char *p = d->d_name;
			if (*p < '1' || *p > '9')
				continue;
			long tid = 0;
			for (; *p >= '0' && *p <= '9' && tid < (1L << 30); p++)
				tid = tid * 10 + (*p - '0');
			if (*p != '\0')
				continue;
			int e = fn((pid_t)tid, d->d_ino, ctx);
			if (e)
				return e;
		}
	}
}

uint64_t procwide__task_ino(pid_t tid)
{
	char name[16];
	snprintf(name, sizeof name, "%d", (int)tid);
	struct stat st;
	if (fstatat(taskdir.dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* Read once when the library loads, not during a call (getenv racing a
 * setenv in another thread is undefined; at load, other threads run only
 * if the library is loaded with dlopen). */
static bool frees_tid_after_flush;

static void probe_proc_flush_order(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;
	frees_tid_after_flush = uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
				(major > 6 || (major == 6 && minor >= 15));
	const char *o = secure_getenv("PROCWIDE_TEST_PROC_REVALIDATE");
	if (o && strcmp(o, "1") == 0)
		frees_tid_after_flush = false;
}

bool procwide__proc_frees_tid_after_flush(void)
{
	return frees_tid_after_flush;
}

long procwide__taskdir_count(void)
{
	/* proc computes a task directory's link count at each stat: 2 plus
	 * the thread group's current number of threads. */
	struct stat st;
	if (fstat(taskdir.dir.fd, &st) != 0)
		return -errno;
	return (long)st.st_nlink - 2;
}

/* Reads TID/<file> relative to the open task directory.  This open may be
 * refused once a Landlock domain forbids /proc; callers treat that as
 * "unknown" and never rely on it for a decision that would change a thread. */
static ssize_t read_task_file(pid_t tid, const char *file, char *buf, size_t size)
{
	char path[48];
	snprintf(path, sizeof path, "%d/%s", (int)tid, file);
	int fd = openat(taskdir.dir.fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

char procwide__task_state(pid_t tid)
{
	char buf[512];
	ssize_t n = -1;
	if (tid == taskdir.pid && taskdir.leader.fd >= 0) {
		n = pread(taskdir.leader.fd, buf, sizeof buf - 1, 0);
		if (n >= 0)
			buf[n] = '\0';
	}
	if (n < 0 && read_task_file(tid, "stat", buf, sizeof buf) < 0)
		return 0;
	/* The name in parentheses may itself hold ") ": the state follows
	 * the last one. */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

unsigned long procwide__task_flags(pid_t tid)
{
	char buf[512];
	if (read_task_file(tid, "stat", buf, sizeof buf) < 0)
		return 0;
	/* Fields after the name: state, ppid, pgrp, session, tty_nr, tpgid,
	 * flags (the 9th field of the line). */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (int field = 3; field <= 9; field++) { /* the blank before each */
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
	}
	return strtoul(p + 1, NULL, 10);
}

int procwide__task_blocks(pid_t tid, int sig)
{
	char buf[4096];
	if (read_task_file(tid, "status", buf, sizeof buf) < 0)
		return -1;
	char *p = strstr(buf, "\nSigBlk:");
	if (!p)
		return -1;
	unsigned long long mask = strtoull(p + 8, NULL, 16);
	return (int)((mask >> (sig - 1)) & 1);
}

void procwide__task_name(pid_t tid, char *buf, size_t size)
{
	char tmp[64];
	if (read_task_file(tid, "comm", tmp, sizeof tmp) < 0) {
		snprintf(buf, size, "?");
		return;
	}
	tmp[strcspn(tmp, "\n")] = '\0';
	snprintf(buf, size, "%s", tmp);
}

int procwide__task_tracer(pid_t tid)
{
	char buf[4096];
	if (read_task_file(tid, "status", buf, sizeof buf) < 0)
		return -1;
	char *p = strstr(buf, "\nTracerPid:");
	return p ? atoi(p + 11) : -1;
}
