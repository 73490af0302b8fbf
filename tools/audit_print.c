/* SPDX-License-Identifier: MIT */
#include "audit_print.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CELL 256 /* longer cell texts are cut, with "..." */

static const char *const cap_names[] = {
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner",
	"cap_fsetid", "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap",
	"cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
	"cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod",
	"cap_lease", "cap_audit_write", "cap_audit_control", "cap_setfcap",
	"cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
};
#define NCAP_NAMES (int)(sizeof cap_names / sizeof cap_names[0])

/* Append to a cell, cutting with "..." when it is full. */
static void cat(char *dst, const char *s)
{
	size_t len = strlen(dst), n = strlen(s);
	if (len + n >= CELL) {
		if (len + 4 < CELL)
			n = CELL - len - 4;
		else
			return;
		memcpy(dst + len, s, n);
		memcpy(dst + len + n, "...", 4);
		return;
	}
	memcpy(dst + len, s, n + 1);
}

static int popcount64(uint64_t v)
{
	int n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

/*
 * A capability set for people: "-" empty, "all" every capability this
 * kernel knows, "all-cap_x-cap_y" for all but up to three, "cap_x,cap_y" for
 * up to three, the hex of /proc otherwise.  (libcap's "=ep" names e and p
 * together; a column shows one set, so it says "all".)
 */
static void cap_text(char *out, uint64_t v, const struct print_opts *o)
{
	int last = o->cap_last < NCAP_NAMES ? o->cap_last : NCAP_NAMES - 1;
	uint64_t full = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;

	out[0] = '\0';
	if (o->raw || (v & ~full)) {
		snprintf(out, CELL, "%016" PRIx64, v);
	} else if (v == 0) {
		cat(out, "-");
	} else if (v == full) {
		cat(out, "all");
	} else if (popcount64(full & ~v) <= 3) {
		cat(out, "all");
		for (int c = 0; c <= last; c++) {
			if (v >> c & 1)
				continue;
			cat(out, "-");
			cat(out, cap_names[c]);
		}
	} else if (popcount64(v) <= 3) {
		for (int c = 0; c <= last; c++) {
			if (!(v >> c & 1))
				continue;
			if (out[0])
				cat(out, ",");
			cat(out, cap_names[c]);
		}
	} else {
		snprintf(out, CELL, "%016" PRIx64, v);
	}
}

static void ids_text(char *out, const unsigned int id[4])
{
	if (id[0] == id[1] && id[1] == id[2] && id[2] == id[3])
		snprintf(out, CELL, "%u", id[0]);
	else
		snprintf(out, CELL, "%u,%u,%u,%u", id[0], id[1], id[2], id[3]);
}

static void seccomp_mode_text(char *out, int mode)
{
	switch (mode) {
	case 0:
		snprintf(out, CELL, "off");
		break;
	case 1:
		snprintf(out, CELL, "strict");
		break;
	case 2:
		snprintf(out, CELL, "filter");
		break;
	default:
		snprintf(out, CELL, "mode%d", mode);
	}
}

/* Thread names come from other processes: never let one drive the
 * terminal.  Printable ASCII stays, backslash and everything else is \xNN. */
static void name_text(char *out, const char *name)
{
	out[0] = '\0';
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		char b[8];
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			snprintf(b, sizeof b, "%c", *p);
		else
			snprintf(b, sizeof b, "\\x%02x", *p);
		cat(out, b);
	}
	if (!out[0])
		cat(out, "-");
}

/* One field's value as the table and the verdict show it. */
static void field_text(char *out, const struct procwide_audit_thread *t,
		       int field, const struct print_opts *o)
{
	out[0] = '\0';
	if (!(t->present & (1u << field))) {
		cat(out, "n/a");
		return;
	}
	switch (field) {
	case PROCWIDE_AUDIT_NO_NEW_PRIVS:
		snprintf(out, CELL, "%d", t->no_new_privs);
		break;
	case PROCWIDE_AUDIT_SECCOMP:
		seccomp_mode_text(out, t->seccomp);
		break;
	case PROCWIDE_AUDIT_SECCOMP_FILTERS:
		snprintf(out, CELL, "%d", t->seccomp_filters);
		break;
	case PROCWIDE_AUDIT_UID:
		ids_text(out, t->uid);
		break;
	case PROCWIDE_AUDIT_GID:
		ids_text(out, t->gid);
		break;
	case PROCWIDE_AUDIT_GROUPS:
		if (t->ngroups == 0)
			cat(out, "-");
		for (size_t i = 0; i < t->ngroups; i++) {
			char b[16];
			snprintf(b, sizeof b, "%s%u", i ? "," : "", (unsigned)t->groups[i]);
			cat(out, b);
		}
		break;
	case PROCWIDE_AUDIT_CAP_EFF:
		cap_text(out, t->cap_eff, o);
		break;
	case PROCWIDE_AUDIT_CAP_PRM:
		cap_text(out, t->cap_prm, o);
		break;
	case PROCWIDE_AUDIT_CAP_INH:
		cap_text(out, t->cap_inh, o);
		break;
	case PROCWIDE_AUDIT_CAP_BND:
		cap_text(out, t->cap_bnd, o);
		break;
	case PROCWIDE_AUDIT_CAP_AMB:
		cap_text(out, t->cap_amb, o);
		break;
	case PROCWIDE_AUDIT_SPEC_STORE_BYPASS:
		cat(out, t->spec_store_bypass);
		break;
	case PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH:
		cat(out, t->spec_indirect_branch);
		break;
	}
}

/* ---- table ---------------------------------------------------------------- */

enum col { C_TID, C_NAME, C_STATE, C_NNP, C_SECCOMP, C_UID, C_GID, C_GROUPS,
	   C_EFF, C_PRM, C_INH, C_BND, C_AMB, C_SSB, C_IB, NCOLS };

static const char *const col_head[NCOLS] = {
	"TID", "NAME", "ST", "NNP", "SECCOMP", "UID", "GID", "GROUPS",
	"CAPEFF", "CAPPRM", "CAPINH", "CAPBND", "CAPAMB", "SPEC_SSB", "SPEC_IB",
};

/* The field a column shows (-1: none; SECCOMP also shows the filters). */
static const int col_field[NCOLS] = {
	-1, -1, -1, PROCWIDE_AUDIT_NO_NEW_PRIVS, PROCWIDE_AUDIT_SECCOMP,
	PROCWIDE_AUDIT_UID, PROCWIDE_AUDIT_GID, PROCWIDE_AUDIT_GROUPS,
	PROCWIDE_AUDIT_CAP_EFF, PROCWIDE_AUDIT_CAP_PRM, PROCWIDE_AUDIT_CAP_INH,
	PROCWIDE_AUDIT_CAP_BND, PROCWIDE_AUDIT_CAP_AMB,
	PROCWIDE_AUDIT_SPEC_STORE_BYPASS, PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH,
};

static void cell_text(char *out, const struct procwide_audit_thread *t, int col,
		      const struct print_opts *o)
{
	out[0] = '\0';
	switch (col) {
	case C_TID:
		snprintf(out, CELL, "%d", (int)t->tid);
		return;
	case C_NAME:
		name_text(out, t->name);
		return;
	case C_STATE:
		snprintf(out, CELL, "%c", t->state);
		return;
	case C_SECCOMP:
		field_text(out, t, PROCWIDE_AUDIT_SECCOMP, o);
		if (t->seccomp == 2 &&
		    (t->present & (1u << PROCWIDE_AUDIT_SECCOMP_FILTERS))) {
			char b[32];
			snprintf(b, sizeof b, ":%d", t->seccomp_filters);
			cat(out, b);
		}
		return;
	}
	field_text(out, t, col_field[col], o);
}

static bool differs(const struct procwide_audit *a, int field, size_t i)
{
	return procwide_audit_value_class(a, field, i) > 0;
}

static bool cell_differs(const struct procwide_audit *a, int col, size_t i)
{
	if (col_field[col] < 0)
		return false;
	if (col == C_SECCOMP && differs(a, PROCWIDE_AUDIT_SECCOMP_FILTERS, i))
		return true;
	return differs(a, col_field[col], i);
}

static void print_verdict(FILE *f, const struct procwide_audit *a,
			  const struct print_opts *o)
{
	size_t n = procwide_audit_nthreads(a);
	char text[CELL];

	if (procwide_audit_ndivergent(a) == 0) {
		if (n == 1)
			fprintf(f, "uniform: 1 thread\n");
		else
			fprintf(f, "uniform: %zu threads agree\n", n);
		return;
	}
	for (int fld = 0; fld < PROCWIDE_AUDIT_NFIELDS; fld++) {
		size_t nv = procwide_audit_nvalues(a, fld);
		if (nv < 2)
			continue;
		fprintf(f, "divergent: %s:", procwide_audit_field_name(fld));
		for (size_t c = 0; c < nv; c++) {
			size_t count = 0, first = 0;
			for (size_t i = 0; i < n; i++) {
				if (procwide_audit_value_class(a, fld, i) != (int)c)
					continue;
				if (count++ == 0)
					first = i;
			}
			field_text(text, procwide_audit_thread(a, first), fld, o);
			if (c == 0) {
				fprintf(f, " %zu thread%s %s %s", count,
					count == 1 ? "" : "s",
					count == 1 ? "has" : "have", text);
				continue;
			}
			fprintf(f, "; tid%s", count == 1 ? "" : "s");
			for (size_t i = 0, k = 0; i < n; i++) {
				if (procwide_audit_value_class(a, fld, i) != (int)c)
					continue;
				fprintf(f, "%s %d", k++ ? "," : "",
					(int)procwide_audit_thread(a, i)->tid);
			}
			fprintf(f, " %s %s", count == 1 ? "has" : "have", text);
		}
		fprintf(f, "\n");
	}
}

int audit_print_table(FILE *f, const struct procwide_audit *a,
		      const struct print_opts *o)
{
	size_t n = procwide_audit_nthreads(a);
	size_t width[NCOLS];
	char (*cells)[CELL] = calloc((n + 1) * NCOLS, sizeof *cells);

	if (!cells)
		return -ENOMEM;
	for (int c = 0; c < NCOLS; c++) {
		snprintf(cells[c], CELL, "%s", col_head[c]);
		width[c] = strlen(cells[c]);
	}
	for (size_t i = 0; i < n; i++) {
		for (int c = 0; c < NCOLS; c++) {
			char *cell = cells[(i + 1) * NCOLS + (size_t)c];
			size_t w;
			cell_text(cell, procwide_audit_thread(a, i), c, o);
			w = strlen(cell) + (!o->color && cell_differs(a, c, i));
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= n; r++) {
		for (int c = 0; c < NCOLS; c++) {
			const char *cell = cells[r * NCOLS + (size_t)c];
			bool mark = r > 0 && cell_differs(a, c, r - 1);
			bool lastcol = c == NCOLS - 1;
			size_t w = strlen(cell);

			if (mark && o->color)
				fprintf(f, "\033[1;31m%s\033[0m", cell);
			else if (mark)
				fprintf(f, "%s*", cell), w++;
			else
				fputs(cell, f);
			if (!lastcol)
				fprintf(f, "%*s", (int)(width[c] - w + 2), "");
		}
		fputc('\n', f);
	}
	free(cells);
	print_verdict(f, a, o);
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A JSON string.  A thread name is bytes, not text: valid UTF-8 is kept, and
 * a byte that is not part of valid UTF-8 becomes the code point of the same
 * number (\u0080..\u00ff), so that the output is always valid JSON.
 */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p);
		} else if (*p == '\n') {
			fputs("\\n", f);
		} else if (*p == '\t') {
			fputs("\\t", f);
		} else if (*p < 0x20 || *p == 0x7f || n == 0) {
			fprintf(f, "\\u%04x", *p);
		} else {
			fwrite(p, 1, n, f);
			p += n;
			continue;
		}
		p++;
	}
	fputc('"', f);
}

static void json_ids(FILE *f, const unsigned int *id, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? "," : "", id[i]);
	fputc(']', f);
}

/* A field's value, with the same JSON type in "threads" and "divergent". */
static void json_field(FILE *f, const struct procwide_audit_thread *t, int field)
{
	uint64_t cap = 0;

	if (!(t->present & (1u << field))) {
		fputs("null", f);
		return;
	}
	switch (field) {
	case PROCWIDE_AUDIT_NO_NEW_PRIVS:
		fputs(t->no_new_privs ? "true" : "false", f);
		return;
	case PROCWIDE_AUDIT_SECCOMP:
		fprintf(f, "%d", t->seccomp);
		return;
	case PROCWIDE_AUDIT_SECCOMP_FILTERS:
		fprintf(f, "%d", t->seccomp_filters);
		return;
	case PROCWIDE_AUDIT_UID:
		json_ids(f, t->uid, 4);
		return;
	case PROCWIDE_AUDIT_GID:
		json_ids(f, t->gid, 4);
		return;
	case PROCWIDE_AUDIT_GROUPS:
		json_ids(f, t->groups, t->ngroups);
		return;
	case PROCWIDE_AUDIT_SPEC_STORE_BYPASS:
		json_str(f, t->spec_store_bypass);
		return;
	case PROCWIDE_AUDIT_SPEC_INDIRECT_BRANCH:
		json_str(f, t->spec_indirect_branch);
		return;
	case PROCWIDE_AUDIT_CAP_EFF:
		cap = t->cap_eff;
		break;
	case PROCWIDE_AUDIT_CAP_PRM:
		cap = t->cap_prm;
		break;
	case PROCWIDE_AUDIT_CAP_INH:
		cap = t->cap_inh;
		break;
	case PROCWIDE_AUDIT_CAP_BND:
		cap = t->cap_bnd;
		break;
	case PROCWIDE_AUDIT_CAP_AMB:
		cap = t->cap_amb;
		break;
	}
	fprintf(f, "\"%016" PRIx64 "\"", cap);
}

/* JSON member names of the fields, in "threads" (speculation.* nests). */
static const char *const json_member[PROCWIDE_AUDIT_NFIELDS] = {
	"no_new_privs", "seccomp", "seccomp_filters", "uid", "gid", "groups",
	"cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb",
	"store_bypass", "indirect_branch",
};

int audit_print_json(FILE *f, const struct procwide_audit *a)
{
	size_t n = procwide_audit_nthreads(a);
	bool firstf = true;

	fprintf(f, "{\"pid\":%d,\"uniform\":%s,\"threads\":[", (int)procwide_audit_pid(a),
		procwide_audit_ndivergent(a) ? "false" : "true");
	for (size_t i = 0; i < n; i++) {
		const struct procwide_audit_thread *t = procwide_audit_thread(a, i);
		fprintf(f, "%s{\"tid\":%d,\"name\":", i ? "," : "", (int)t->tid);
		json_str(f, t->name);
		fprintf(f, ",\"state\":\"%c\"", t->state);
		for (int fld = 0; fld < PROCWIDE_AUDIT_NFIELDS; fld++) {
			if (fld == PROCWIDE_AUDIT_SPEC_STORE_BYPASS)
				fputs(",\"speculation\":{", f);
			fprintf(f, "%s\"%s\":",
				fld == PROCWIDE_AUDIT_SPEC_STORE_BYPASS ? "" : ",",
				json_member[fld]);
			json_field(f, t, fld);
		}
		fputs("}}", f);
	}
	fputs("],\"divergent\":[", f);
	for (int fld = 0; fld < PROCWIDE_AUDIT_NFIELDS; fld++) {
		size_t nv = procwide_audit_nvalues(a, fld);
		if (nv < 2)
			continue;
		fprintf(f, "%s{\"field\":\"%s\",\"values\":[", firstf ? "" : ",",
			procwide_audit_field_name(fld));
		firstf = false;
		for (size_t c = 0; c < nv; c++) {
			bool firstt = true;
			for (size_t i = 0; i < n; i++) {
				if (procwide_audit_value_class(a, fld, i) != (int)c)
					continue;
				if (firstt) {
					fprintf(f, "%s{\"value\":", c ? "," : "");
					json_field(f, procwide_audit_thread(a, i), fld);
					fputs(",\"tids\":[", f);
				}
				fprintf(f, "%s%d", firstt ? "" : ",",
					(int)procwide_audit_thread(a, i)->tid);
				firstt = false;
			}
			fputs("]}", f);
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
	return 0;
}
