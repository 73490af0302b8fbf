/* SPDX-License-Identifier: MIT */
/* A Landlock ruleset builder for C: handled rights, path and TCP port
 * rules, scopes.  Best effort by default: every right, scope, rule or flag
 * the running kernel's ABI lacks (ABI 1 to 9) is dropped and each drop is
 * recorded for the caller; PROCWIDE_LL_STRICT refuses instead.  The ABI is
 * the kernel's own (the path-selection test hook never applies here: it
 * must not be able to weaken a ruleset). */
#include "security.h"
#include "sized.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct procwide_landlock {
	int fd;		/* -1: nothing to enforce (best effort) */
	int abi;	/* the kernel's, or <= 0 */
	bool strict;
	uint64_t want_fs, want_net;	/* as asked: rules outside are EINVAL */
	uint64_t fs, net, scoped;	/* as the kernel got them */
	size_t nrules;
	size_t ndg, capdg;
	struct procwide_landlock_downgrade *dg;
};

#define PWS_LL_FS_KNOWN ((1ULL << 17) - 1)
#define PWS_LL_NET_KNOWN 3ULL
#define PWS_LL_SCOPE_KNOWN 3ULL
#define PWS_LL_LOG_FLAGS 7U

/* Filesystem rights each ABI knows. */
static uint64_t fs_for_abi(int abi)
{
	if (abi >= 9)
		return (1ULL << 17) - 1;
	if (abi >= 5)
		return (1ULL << 16) - 1;
	if (abi >= 3)
		return (1ULL << 15) - 1;
	if (abi == 2)
		return (1ULL << 14) - 1;
	if (abi == 1)
		return (1ULL << 13) - 1;
	return 0;
}

/* The lowest ABI that knows every one of these filesystem rights. */
static int abi_for_fs(uint64_t bits)
{
	for (int abi = 1; abi <= 9; abi++)
		if (!(bits & ~fs_for_abi(abi)))
			return abi;
	return 10;
}

static int add_downgrade(struct procwide_landlock *ll, int kind, int required, uint64_t dropped,
			 uint64_t subject)
{
	if (ll->ndg == ll->capdg) {
		size_t cap = ll->capdg ? 2 * ll->capdg : 8;
		struct procwide_landlock_downgrade *more = realloc(ll->dg, cap * sizeof *more);
		if (!more)
			return -ENOMEM;
		ll->dg = more;
		ll->capdg = cap;
	}
	ll->dg[ll->ndg++] = (struct procwide_landlock_downgrade){
		.kind = kind, .abi = ll->abi, .required_abi = required,
		.dropped = dropped, .subject = subject};
	return 0;
}

void procwide_landlock_close(struct procwide_landlock *ll)
{
	if (!ll)
		return;
	if (ll->fd >= 0)
		close(ll->fd);
	free(ll->dg);
	free(ll);
}

#define ATTR_HAS(a, field) ((a)->size >= offsetof(struct procwide_landlock_attr, field) + sizeof((a)->field))

int procwide_landlock_open(const struct procwide_landlock_attr *attr, struct procwide_landlock **out)
{
	if (!attr || !out)
		return -EFAULT;
	if (!ATTR_HAS(attr, handled_access_fs))
		return -EINVAL;
	if (!procwide__tail_is_zero(attr, attr->size, sizeof *attr))
		return -EINVAL;
	uint64_t fs = attr->handled_access_fs;
	uint64_t net = ATTR_HAS(attr, handled_access_net) ? attr->handled_access_net : 0;
	uint64_t scoped = ATTR_HAS(attr, scoped) ? attr->scoped : 0;
	unsigned int flags = ATTR_HAS(attr, flags) ? attr->flags : 0;
	if ((fs & ~PWS_LL_FS_KNOWN) || (net & ~PWS_LL_NET_KNOWN) ||
	    (scoped & ~PWS_LL_SCOPE_KNOWN) || (flags & ~PROCWIDE_LL_STRICT))
		return -EINVAL;
	if (!fs && !net && !scoped)
		return -ENOMSG; /* as the kernel says for an empty ruleset */
	struct procwide_landlock *ll = calloc(1, sizeof *ll);
	if (!ll)
		return -ENOMEM;
	ll->fd = -1;
	ll->strict = flags & PROCWIDE_LL_STRICT;
	ll->abi = procwide__landlock_abi_probe();
	ll->want_fs = fs;
	ll->want_net = net;
	int abi = ll->abi > 0 ? ll->abi : 0;
	uint64_t drop_fs = fs & ~fs_for_abi(abi);
	uint64_t drop_net = abi >= 4 ? 0 : net;
	uint64_t drop_scoped = abi >= 6 ? 0 : scoped;
	int err = 0;
	if (abi == 0) {
		if (ll->strict)
			err = ll->abi < 0 ? ll->abi : -EOPNOTSUPP;
		else
			err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_LANDLOCK, 1, fs, 0);
		if (err) {
			procwide_landlock_close(ll);
			return err;
		}
		*out = ll;
		return 0;
	}
	if (ll->strict && (drop_fs || drop_net || drop_scoped)) {
		procwide_landlock_close(ll);
		return -EOPNOTSUPP;
	}
	if (drop_fs)
		err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_HANDLED_FS, abi_for_fs(drop_fs), drop_fs, 0);
	if (!err && drop_net)
		err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_HANDLED_NET, 4, drop_net, 0);
	if (!err && drop_scoped)
		err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_SCOPED, 6, drop_scoped, 0);
	if (err) {
		procwide_landlock_close(ll);
		return err;
	}
	ll->fs = fs & ~drop_fs;
	ll->net = net & ~drop_net;
	ll->scoped = scoped & ~drop_scoped;
	if (ll->fs || ll->net || ll->scoped) {
		struct pws_ll_ruleset_attr ka = {ll->fs, ll->net, ll->scoped};
		/* A kernel below ABI 4 or 6 accepts the larger struct as long
		 * as the fields it does not know are zero, which they are. */
		long fd = syscall(SYS_landlock_create_ruleset, &ka, sizeof ka, 0);
		if (fd < 0) {
			err = -errno;
			procwide_landlock_close(ll);
			return err;
		}
		ll->fd = (int)fd;
	}
	*out = ll;
	return 0;
}

int procwide_landlock_allow_path(struct procwide_landlock *ll, const char *path, uint64_t access)
{
	if (!ll || !path)
		return -EFAULT;
	if (!access)
		return -ENOMSG; /* the kernel's answer for an empty rule */
	if (access & ~ll->want_fs)
		return -EINVAL; /* a right the ruleset does not handle */
	size_t index = ll->nrules++;
	uint64_t dropped = access & ~ll->fs;
	if (dropped) {
		int err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_PATH_RULE,
					ll->abi > 0 ? abi_for_fs(dropped) : 1, dropped, index);
		if (err)
			return err;
	}
	uint64_t eff = access & ll->fs;
	if (!eff || ll->fd < 0)
		return 0;
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	struct pws_ll_path_beneath_attr pa = {.allowed_access = eff, .parent_fd = pfd};
	long r = syscall(SYS_landlock_add_rule, ll->fd, PWS_LL_RULE_PATH_BENEATH, &pa, 0);
	int err = r < 0 ? -errno : 0;
	close(pfd);
	return err;
}

int procwide_landlock_allow_port(struct procwide_landlock *ll, uint64_t port, uint64_t access)
{
	if (!ll)
		return -EFAULT;
	if (!access)
		return -ENOMSG;
	if (access & ~ll->want_net)
		return -EINVAL;
	ll->nrules++;
	if (!ll->net || ll->fd < 0)
		return add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_PORT_RULE, 4, access, port);
	struct pws_ll_net_port_attr na = {.allowed_access = access, .port = port};
	long r = syscall(SYS_landlock_add_rule, ll->fd, PWS_LL_RULE_NET_PORT, &na, 0);
	return r < 0 ? -errno : 0;
}

int procwide_landlock_fd(const struct procwide_landlock *ll)
{
	return ll ? ll->fd : -1;
}

size_t procwide_landlock_ndowngrades(const struct procwide_landlock *ll)
{
	return ll ? ll->ndg : 0;
}

const struct procwide_landlock_downgrade *procwide_landlock_downgrade(const struct procwide_landlock *ll,
								      size_t i)
{
	return ll && i < ll->ndg ? &ll->dg[i] : NULL;
}

int procwide_landlock_enforce(struct procwide_landlock *ll, unsigned int flags,
			      const struct procwide_sec_opts *opts, struct procwide_sec_report *report)
{
	if (!ll)
		return -EFAULT;
	unsigned int log = flags & PWS_LL_LOG_FLAGS;
	if (log && ll->abi < 7) {
		if (ll->strict)
			return -EOPNOTSUPP;
		int err = add_downgrade(ll, PROCWIDE_LL_DOWNGRADE_RESTRICT_FLAGS, 7, log, 0);
		if (err)
			return err;
		flags &= ~log;
	}
	if (ll->fd < 0) {
		/* Best effort and nothing the kernel can enforce: every
		 * downgrade is on record; nothing changes. */
		struct pws_ctx ctx;
		int err = procwide__sec_begin(&ctx, "procwide_landlock_enforce", opts, 0, report);
		if (!err)
			procwide__sec_msg(&ctx, "nothing enforced: see the downgrades");
		return procwide__sec_end(&ctx, err);
	}
	return procwide_landlock_restrict_ex(ll->fd, flags, opts, report);
}
