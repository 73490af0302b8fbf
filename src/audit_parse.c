/* SPDX-License-Identifier: MIT */
/*
 * Parsing of /proc/PID/task/TID/status for the audit.  Strict on purpose: a
 * value this code cannot read exactly makes the audit fail with -EIO rather
 * than show a guess, because a wrong "uniform" is worse than no answer.
 */
#include "audit_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A line of status: "Key:\tvalue\n".  Points into the text. */
struct line {
	const char *key;
	size_t keylen;
	const char *val; /* after the colon and the blanks that follow it */
	size_t vallen;	 /* up to, not including, the newline */
};

static bool key_is(const struct line *l, const char *key)
{
	return strlen(key) == l->keylen && memcmp(l->key, key, l->keylen) == 0;
}

/* An unsigned decimal (base 10) or hex (base 16) number of at most `max`,
 * no sign, no blanks; advances *p past it.  false if there is none. */
static bool take_num(const char **p, const char *end, int base,
		     unsigned long long max, unsigned long long *out)
{
	const char *s = *p;
	unsigned long long v = 0;
	size_t n = 0;

	for (; s < end; s++, n++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (max - d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + d;
	}
	if (n == 0)
		return false;
	*p = s;
	*out = v;
	return true;
}

static const char *skip_blanks(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* The whole value is one number. */
static bool one_num(const struct line *l, int base, unsigned long long max,
		    unsigned long long *out)
{
	const char *s = l->val, *end = l->val + l->vallen;
	if (!take_num(&s, end, base, max, out))
		return false;
	return skip_blanks(s, end) == end;
}

static bool one_int(const struct line *l, int *out)
{
	unsigned long long v;
	if (!one_num(l, 10, 0x7fffffff, &v))
		return false;
	*out = (int)v;
	return true;
}

static bool four_ids(const struct line *l, unsigned int out[4])
{
	const char *s = l->val, *end = l->val + l->vallen;
	for (int i = 0; i < 4; i++) {
		unsigned long long v;
		s = skip_blanks(s, end);
		if (!take_num(&s, end, 10, 0xffffffffu, &v))
			return false;
		out[i] = (unsigned int)v;
	}
	return skip_blanks(s, end) == end;
}

static int parse_groups(const struct line *l, struct procwide_audit_thread *t)
{
	const char *s = l->val, *end = l->val + l->vallen;
	size_t n = 0, cap = 0;
	gid_t *g = NULL;

	for (;;) {
		unsigned long long v;
		s = skip_blanks(s, end);
		if (s == end)
			break;
		if (!take_num(&s, end, 10, 0xffffffffu, &v)) {
			free(g);
			return -EIO;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			gid_t *ng = realloc(g, ncap * sizeof *g);
			if (!ng) {
				free(g);
				return -ENOMEM;
			}
			g = ng;
			cap = ncap;
		}
		g[n++] = (gid_t)v;
	}
	t->groups = g;
	t->ngroups = n;
	return 0;
}

static void copy_text(const struct line *l, char *dst, size_t dstsz)
{
	size_t n = l->vallen;
	/* The kernel's texts are short ("thread force mitigated"): cut at the
	 * buffer's end if a future one is longer. */
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, l->val, n);
	dst[n] = '\0';
}

#define BIT(f) (1u << (f))

/* Lines every kernel the audit supports shows (since 2.6): without one of
 * them the text is not a status file of a live task. */
#define REQUIRED_LINES 7 /* Tgid Uid Gid Groups CapInh CapPrm CapEff; +CapBnd */

int pwa_parse_status(const char *text, struct procwide_audit_thread *t,
		     pid_t *tgid)
{
	unsigned int seen = 0; /* bit i: required line i */
	unsigned long long v;
	int err = -EIO;

	t->groups = NULL;
	t->ngroups = 0;
	t->present = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		const char *eol = nl ? nl : p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		struct line l;

		if (!colon) { /* not a "Key: value" line: not one we read */
			p = nl ? nl + 1 : eol;
			continue;
		}
		l.key = p;
		l.keylen = (size_t)(colon - p);
		l.val = skip_blanks(colon + 1, eol);
		l.vallen = (size_t)(eol - l.val);
		/* Trailing blanks: "Groups:\t4 24 \n" ends in one. */
		while (l.vallen && (l.val[l.vallen - 1] == ' ' || l.val[l.vallen - 1] == '\t'))
			l.vallen--;
		p = nl ? nl + 1 : eol;

		if (key_is(&l, "Tgid")) {
			if (!one_num(&l, 10, 0x7fffffff, &v) || v == 0)
				goto bad;
			*tgid = (pid_t)v;
			seen |= 1u << 0;
		} else if (key_is(&l, "Uid")) {
			if (!four_ids(&l, t->uid))
				goto bad;
			seen |= 1u << 1;
			t->present |= BIT(PROCWIDE_AUDIT_UID);
		} else if (key_is(&l, "Gid")) {
			if (!four_ids(&l, t->gid))
				goto bad;
			seen |= 1u << 2;
			t->present |= BIT(PROCWIDE_AUDIT_GID);
		} else if (key_is(&l, "Groups")) {
			if (seen & (1u << 3))
				goto bad;
			err = parse_groups(&l, t);
			if (err)
				goto bad;
			err = -EIO;
			seen |= 1u << 3;
			t->present |= BIT(PROCWIDE_AUDIT_GROUPS);
		} else if (key_is(&l, "CapInh")) {
			if (!one_num(&l, 16, ~0ull, &v))
				goto bad;
			t->cap_inh = v;
			seen |= 1u << 4;
			t->present |= BIT(PROCWIDE_AUDIT_CAP_INH);
		} else if (key_is(&l, "CapPrm")) {
			if (!one_num(&l, 16, ~0ull, &v))
				goto bad;
			t->cap_prm = v;
			seen |= 1u << 5;
			t->present |= BIT(PROCWIDE_AUDIT_CAP_PRM);
		} else if (key_is(&l, "CapEff")) {
			if (!one_num(&l, 16, ~0ull, &v))
				goto bad;
			t->cap_eff = v;
			seen |= 1u << 6;
			t->present |= BIT(PROCWIDE_AUDIT_CAP_EFF);
		} else if (key_is(&l, "CapBnd")) {
			if (!one_num(&l, 16, ~0ull, &v))
				goto bad;
			t->cap_bnd = v;
			seen |= 1u << 7;
			t->present |= BIT(PROCWIDE_AUDIT_CAP_BND);
		} else if (key_is(&l, "CapAmb")) { /* Linux 4.3 */
			if (!one_num(&l, 16, ~0ull, &v))
				goto bad;
			t->cap_amb = v;
			t->present |= BIT(PROCWIDE_AUDIT_CAP_AMB);
		} else if (key_is(&l, "NoNewPrivs")) { /* Linux 4.10 */
			if (!one_int(&l, &t->no_new_privs))
				goto bad;
			t->present |= BIT(PROCWIDE_AUDIT_NO_NEW_PRIVS);
		} else if (key_is(&l, "Seccomp")) { /* CONFIG_SECCOMP */
			if (!one_int(&l, &t->seccomp))
				goto bad;
			t->present |= BIT(PROCWIDE_AUDIT_SECCOMP);
		} else if (key_is(&l, "Seccomp_filters")) { /* Linux 5.9 */
			if (!one_int(&l, &t->seccomp_filters))
				goto bad;
			t->present |= BIT(PROCWIDE_AUDIT_SECCOMP_FILTERS);
		} else if (key_is(&l, "Speculation_Store_Bypass")) { /* 4.17 */
			copy_text(&l, t->spec_store_bypass, sizeof t->spec_store_bypass);
			t->present |= BIT(PROCWIDE_AUDIT_SPEC_STORE_BYPASS);
		} else if (key_is(&l, "SpeculationIndirectBranch")) { /* 5.13 */
			copy_text(&l, t->spec_indirect_branch,
				  sizeof t->spec_indirect_branch);
			t->present |= BIT(PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH);
		}
	}
	if (seen != (1u << (REQUIRED_LINES + 1)) - 1)
		goto bad;
	return 0;
bad:
	free((void *)t->groups);
	t->groups = NULL;
	t->ngroups = 0;
	return err;
}

int pwa_parse_stat_state(const char *text, char *state)
{
	const char *p = strrchr(text, ')');
	/* A letter only: the state goes into JSON and onto terminals. */
	if (!p || p[1] != ' ' || p[3] != ' ' ||
	    !((p[2] >= 'A' && p[2] <= 'Z') || (p[2] >= 'a' && p[2] <= 'z')))
		return -EIO;
	*state = p[2];
	return 0;
}
