/* SPDX-License-Identifier: MIT */
/* Internal to the process-wide security calls (src/security_*.c,
 * src/landlock_ruleset.c).  Nothing here is exported: every symbol is static
 * or hidden with the procwide__ prefix.
 *
 * The uapi constants are our own, behind #ifndef guards: musl-gcc has no
 * <linux/...> headers, and the build must not depend on the age of the
 * host's kernel headers. */
#ifndef PW_SECURITY_H
#define PW_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "procwide.h"

#define PWS_HIDDEN __attribute__((visibility("hidden")))

/* ---- system call numbers (x86_64) that old libc headers lack ------------- */
#ifndef SYS_seccomp
#define SYS_seccomp 317
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

/* ---- seccomp -------------------------------------------------------------- */
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC (1UL << 0)
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif

/* ---- prctl ---------------------------------------------------------------- */
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif
#ifndef PR_GET_NO_NEW_PRIVS
#define PR_GET_NO_NEW_PRIVS 39
#endif
#ifndef PR_CAPBSET_DROP
#define PR_CAPBSET_DROP 24
#endif
#ifndef PR_GET_SECUREBITS
#define PR_GET_SECUREBITS 27
#endif
#ifndef PR_SET_SECUREBITS
#define PR_SET_SECUREBITS 28
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif

/* ---- capabilities ---------------------------------------------------------- */
#define PWS_CAPABILITY_VERSION_3 0x20080522u
struct pws_cap_header {
	uint32_t version;
	int pid;
};
struct pws_cap_data {
	uint32_t effective, permitted, inheritable;
};

/* ---- Landlock ------------------------------------------------------------- */
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#define PWS_LL_RULE_PATH_BENEATH 1
#define PWS_LL_RULE_NET_PORT 2
/* Landlock ABI 8 (Linux 7.0): apply the domain to every thread. */
#define PWS_LL_RESTRICT_SELF_TSYNC (1U << 3)

struct pws_ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
struct pws_ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
struct pws_ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

/* The kernel's ABI version: > 0, or -errno (Landlock absent or disabled).
 * Probed once with a call that cannot take effect, then cached. */
PWS_HIDDEN int procwide__landlock_abi_probe(void);

/* ---- options and reports (the size-field pattern of procwide_opts) ------- */
struct pws_ctx {
	unsigned int flags;	  /* PROCWIDE_SEC_* */
	unsigned int deadline_ms; /* 0: the engine's default */
	struct procwide_sec_report *report; /* NULL or checked */
	/* what is written into the report at the end */
	int path;
	int verified;
	size_t nthreads;
	pid_t tid;
	char message[256];
};

/* Reads opts and report (either may be NULL) into ctx; 0 or -EINVAL, with
 * the reason in the report when it is usable. */
PWS_HIDDEN int procwide__sec_begin(struct pws_ctx *ctx, const char *fn,
				   const struct procwide_sec_opts *opts,
				   unsigned int known_flags,
				   struct procwide_sec_report *report);
/* Copies ctx into the caller's report as far as its size allows and
 * returns err. */
PWS_HIDDEN int procwide__sec_end(struct pws_ctx *ctx, int err);
/* A message into ctx->message (printf-style). */
__attribute__((format(printf, 2, 3))) PWS_HIDDEN void
procwide__sec_msg(struct pws_ctx *ctx, const char *fmt, ...);

/* Runs one system call in every thread through procwide_run() (the engine
 * path): a thread whose result differs from the caller's kills the process.
 * Fills ctx->path, ctx->nthreads and, on error, ctx->message and ctx->tid.
 * Returns 0 or -errno (the caller's own error: nothing changed). */
PWS_HIDDEN int procwide__sec_engine(struct pws_ctx *ctx, long nr, long a1, long a2,
				    long a3, long a4, long a5);

/* The calling thread's no_new_privs, 0 or 1. */
PWS_HIDDEN int procwide__sec_have_nnp(void);

/* ---- verification (security_verify.c) ------------------------------------ */
/* Per-thread /proc status descriptors opened BEFORE a change, so that the
 * check still reads them after a Landlock domain forbids opening /proc
 * (Landlock checks at open(2), not at read(2)). */
struct pws_verify_thread {
	pid_t tid;
	int fd; /* -1: not kept, opened again at check time */
	/* state before the change, parsed when the snapshot was taken */
	int seccomp_filters;
	bool have_before;
};
struct pws_verify {
	int taskfd;
	pid_t caller;
	size_t n, cap;
	struct pws_verify_thread *t;
};

/* What a check sees for one thread; `before` is NULL for a thread that was
 * not there when the snapshot was taken. */
typedef int (*pws_check_fn)(const struct procwide_audit_thread *t,
			    const struct procwide_audit_thread *caller,
			    const struct pws_verify_thread *before, const void *arg,
			    char *why, size_t whysz);

/* Opens /proc/self/task and reads every listed thread's status once (the
 * state before).  keep: also keep (up to a bound) the status files open, for
 * a change after which opening them may be denied (seccomp; anything after
 * a Landlock step).  0 or -errno. */
PWS_HIDDEN int procwide__verify_open(struct pws_verify *v, bool keep);
/* Reads every thread's status now and calls check for each (the caller's
 * own record first).  0 when all match; -ENOTRECOVERABLE naming the first
 * thread that does not (ctx->tid, ctx->message), and also when /proc can
 * no longer be read: the change is made, so "cannot verify" is never a
 * success nor a "nothing changed".  Sets ctx->verified and ctx->nthreads on
 * success. */
PWS_HIDDEN int procwide__verify_check(struct pws_verify *v, struct pws_ctx *ctx,
				      pws_check_fn check, const void *arg);
PWS_HIDDEN void procwide__verify_close(struct pws_verify *v);

/* Checks shared by several calls. */
PWS_HIDDEN int procwide__check_nnp(const struct procwide_audit_thread *t,
				   const struct procwide_audit_thread *caller,
				   const struct pws_verify_thread *before, const void *arg,
				   char *why, size_t whysz);

/* Makes sure every thread has no_new_privs when the caller has it, as the
 * kernel's TSYNC flags do (a thread without it, and without CAP_SYS_ADMIN,
 * could not install a filter or a Landlock domain).  0 or -errno. */
PWS_HIDDEN int procwide__sec_copy_nnp(struct pws_ctx *ctx);

/* seccomp with a verifier the caller opened (before a Landlock step):
 * 0, a listener descriptor, or -errno; fills ctx. */
PWS_HIDDEN int procwide__seccomp_apply(struct pws_ctx *ctx, const struct sock_fprog *prog,
				       unsigned int flags, struct pws_verify *v);

#endif
