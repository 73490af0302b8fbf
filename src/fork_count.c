/* The kernel's count of the tasks created on the machine since boot, threads
 * included: "processes" in /proc/stat, the kernel's total_forks, which
 * copy_process raises in the tasklist_lock section that makes a new task
 * visible in its thread group.  src/direct.c skips its listing of
 * /proc/self/task when this count has not moved since an earlier proof.
 *
 * A count that lies would let a thread escape, so only the kernel's own
 * count is used:
 *  - the file is opened when the library loads, from a /proc that is procfs,
 *    with RESOLVE_NO_XDEV: nothing mounted over it is entered (lxcfs mounts
 *    a FUSE file there in containers, and a bind mount of another procfs
 *    file could show any text);
 *  - a count is used only once it has moved since the library loaded: a
 *    kernel that does not keep it (gVisor prints "processes 0") or a file
 *    that never changes is never used; and never again once it has gone
 *    down (an emulator that shows the number of live tasks instead).
 * openat2 is called once, at load: a seccomp filter that kills on it would
 * have to be installed before the library is loaded.
 * The whole file is read at once, into a buffer sized when the library
 * loads: each read of a seq_file at an offset makes the text again, so a
 * line read in two pieces could join two different counts. */
#include "internal.h"
#include "owned_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* openat2 (Linux 5.6), with constants of our own: musl has no
 * <linux/openat2.h>.  437 in every architecture's table. */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct pw_open_how {
	uint64_t flags, mode, resolve;
};
#define PW_RESOLVE_NO_XDEV 0x01
#define PW_RESOLVE_NO_SYMLINKS 0x04
#define PW_PROC_SUPER_MAGIC 0x9fa0

/* /proc/stat grows with the CPUs (two lines each) and the interrupts (a
 * count each): a larger one is not read. */
#define PW_STAT_MAX (1u << 20)

static struct owned_fd stat_file = PW_OWNED_FD_NONE;
static char *text;
static size_t text_size;
static uint64_t at_load, last_seen;
static bool always_worth;

/* For good: a count that cannot be read whole, or that went down. */
static void give_up(void)
{
	if (still_ours(&stat_file))
		close(stat_file.fd);
	stat_file.fd = -1;
}

static int parse(const char *s, uint64_t *count)
{
	/* Never the first line (the cpu lines are). */
	const char *p = strstr(s, "\nprocesses ");
	if (!p)
		return -ENOENT;
	p += sizeof "\nprocesses " - 1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p || *end != '\n' || errno)
		return -ENOENT;
	*count = v;
	return 0;
}

static int read_count(uint64_t *count)
{
	ssize_t n = pread(stat_file.fd, text, text_size - 1, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n == text_size - 1)
		return -E2BIG; /* perhaps cut: not trusted */
	text[n] = '\0';
	return parse(text, count);
}

static int open_stat(void)
{
	int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0)
		return -errno;
	struct statfs fs;
	struct stat st;
	struct pw_open_how how = {.flags = O_RDONLY | O_CLOEXEC,
				  .resolve = PW_RESOLVE_NO_XDEV | PW_RESOLVE_NO_SYMLINKS};
	long fd = -1;
	/* The root of a procfs mount (inode 1), not a directory of one
	 * bind-mounted on /proc. */
	if (fstatfs(proc, &fs) == 0 && fs.f_type == PW_PROC_SUPER_MAGIC &&
	    fstat(proc, &st) == 0 && st.st_ino == 1)
		fd = syscall(SYS_openat2, proc, "stat", &how, sizeof how);
	else
		errno = ENOTSUP;
	close(proc);
	if (fd >= 0 && (fstatfs((int)fd, &fs) != 0 || fs.f_type != PW_PROC_SUPER_MAGIC)) {
		close((int)fd);
		fd = -1;
		errno = ENOTSUP;
	}
	return own(&stat_file, (int)fd);
}

__attribute__((constructor)) static void pw_fork_count_init(void)
{
	/* Test hook (ignored in set-id programs): read the count whatever it
	 * costs, so that tests do not depend on the machine's size. */
	const char *o = secure_getenv("PROCWIDE_TEST_FORK_COUNT_ALWAYS");
	always_worth = o && strcmp(o, "1") == 0;
	if (open_stat() != 0)
		return;
	for (size_t size = 65536; size <= PW_STAT_MAX; size *= 2) {
		char *t = realloc(text, size);
		if (!t)
			break;
		text = t;
		text_size = size;
		int e = read_count(&at_load);
		if (e == -E2BIG)
			continue;
		if (e == 0) {
			/* Room for the file to grow (CPUs brought online); a
			 * file that outgrows it is given up. */
			size_t want = 2 * strlen(text) + 4096;
			if (want < text_size && (t = realloc(text, want)) != NULL) {
				text = t;
				text_size = want;
			}
			last_seen = at_load;
			return;
		}
		break;
	}
	give_up();
}

int procwide__forks_read(uint64_t *count)
{
	/* Never opened again: after load a Landlock domain may forbid it,
	 * and the application's closing it says it wants no such file. */
	if (!still_ours(&stat_file))
		return -ENOTSUP;
	uint64_t c;
	int e = read_count(&c);
	if (e == -E2BIG || (e == 0 && c < last_seen)) {
		give_up();
		return -ENOTSUP;
	}
	if (e)
		return e;
	last_seen = c;
	if (c <= at_load)
		return -EAGAIN; /* not seen moving yet */
	*count = c;
	return 0;
}

bool procwide__forks_always_worth(void)
{
	return always_worth;
}
