/* Descriptors procwide opens once and keeps: an application may close every
 * descriptor it does not know and reuse the number, so each is remembered
 * with the identity of what it was opened on, and checked before use. */
#ifndef PW_OWNED_FD_H
#define PW_OWNED_FD_H

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

struct owned_fd {
	int fd;
	dev_t dev;
	ino_t ino;
};

#define PW_OWNED_FD_NONE {-1, 0, 0}

/* Is this still the descriptor procwide opened? */
static inline bool still_ours(const struct owned_fd *o)
{
	struct stat st;
	return o->fd >= 0 && fstat(o->fd, &st) == 0 && st.st_dev == o->dev &&
	       st.st_ino == o->ino;
}

/* Takes fd (an open's result) as o; 0, or -errno with o empty. */
static inline int own(struct owned_fd *o, int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = fd < 0 ? -errno : -EBADF;
		if (fd >= 0)
			close(fd);
		o->fd = -1;
		return e;
	}
	*o = (struct owned_fd){fd, st.st_dev, st.st_ino};
	return 0;
}

#endif
