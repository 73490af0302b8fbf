/* The calling thread's side of an all-threads call.
 *
 * 1. Gather: signal every thread listed in /proc/self/task; each one parks
 *    in procwide's handler.  A parked thread cannot create threads, so once
 *    every known thread is parked, a sweep that finds nothing new and a
 *    kernel thread count that agrees prove that no thread is missing (a
 *    thread created by one that had not parked yet is found by the sweeps).
 *    Threads that exit are recognised (tgkill(tid, 0) fails with ESRCH, or
 *    /proc shows a zombie) and dropped.  If a thread does not arrive by the
 *    deadline, every parked thread is released and nothing has changed.
 * 2. The call runs in the caller.  If it fails, every thread is released
 *    untouched.
 * 3. Go: every parked thread runs the call; one whose result differs kills
 *    the process before returning to application code (or, in report mode,
 *    is reported).
 *
 * A thread that does not answer the signal (it blocks it, or waits with it
 * blocked for a thread that is parked) is reached instead by the ptrace
 * helper (src/inject.c): stopped during the gather, which counts as parked,
 * and made to run the call in phase 3.  With PROCWIDE_PTRACE_ALL no thread
 * is signalled at all.
 *
 * That is the parked path; the direct path, which runs the call in each
 * thread as the signal reaches it and proves afterwards that none escaped,
 * is in src/direct.c and uses the sweeps, waits and report here.
 *
 * Everything here runs in the calling thread, under the process's procwide
 * lock; only src/handler.c runs in the others. */
#include "engine.h"
#include "inject.h"
#include "security.h" /* the Landlock call and its TSYNC flag */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

PW_HIDDEN struct pw_engine procwide__engine;

/* ---- slots and the tid index ----------------------------------------------- */

/* Makes room for n slots: chunks, and a tid index at most half full.
 * Called only while no thread is parked: a parked thread may hold the
 * allocator's lock (glibc arenas, a sanitizer's allocator), so the caller
 * never allocates between the first signal and the release. */
static int reserve(uint32_t n)
{
	if (n > PW_MAX_CHUNKS * PW_CHUNK_SLOTS)
		n = PW_MAX_CHUNKS * PW_CHUNK_SLOTS;
	for (uint32_t c = 0; c < (n + PW_CHUNK_SLOTS - 1) >> PW_CHUNK_SHIFT; c++) {
		if (atomic_load_explicit(&procwide__shared.chunks[c], memory_order_relaxed))
			continue;
		struct pw_slot *chunk = calloc(PW_CHUNK_SLOTS, sizeof *chunk);
		if (!chunk)
			return -ENOMEM;
		atomic_store_explicit(&procwide__shared.chunks[c], chunk, memory_order_release);
	}
	uint32_t cap = E.hcap ? E.hcap : 1024;
	while (cap < 2 * n)
		cap *= 2;
	if (cap != E.hcap) {
		uint32_t *nh = calloc(cap, sizeof *nh);
		if (!nh)
			return -ENOMEM;
		free(E.hash);
		E.hash = nh;
		E.hcap = cap;
	}
	if (E.crefused < n) { /* see remember_refused: never grown later */
		struct pw_refused *r = realloc(E.refused, n * sizeof *r);
		if (!r)
			return -ENOMEM;
		E.refused = r;
		E.crefused = n;
	}
	E.reserved = n;
	return 0;
}

/* The slot of tid in this call, or UINT32_MAX with *pos where it goes. */
uint32_t procwide__find_tid(pid_t tid, uint32_t *pos)
{
	uint32_t h = (uint32_t)tid * 2654435761u & (E.hcap - 1);
	while (E.hash[h]) {
		if (slot_tid(E.hash[h] - 1) == tid)
			return E.hash[h] - 1;
		h = (h + 1) & (E.hcap - 1);
	}
	*pos = h;
	return UINT32_MAX;
}

/* Where tid is or goes in E.refused. */
static uint32_t refused_pos(pid_t tid)
{
	uint32_t lo = 0, hi = E.nrefused;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (E.refused[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The same thread, by its /proc inode number too (see src/direct.c): a
 * new thread given a refused one's tid is asked like any other. */
static bool was_refused(pid_t tid, uint64_t ino)
{
	uint32_t at = refused_pos(tid);
	return at < E.nrefused && E.refused[at].tid == tid && E.refused[at].ino == ino;
}

/* The list has room for as many threads as there are slots (reserve()):
 * threads are parked or stopped now, one may hold the allocator's lock,
 * and the caller never allocates then.  Full (refused threads that ended
 * and were replaced, over several attempts), a thread is only asked again
 * in a later attempt. */
static void remember_refused(pid_t tid, uint64_t ino)
{
	uint32_t at = refused_pos(tid);
	if (at < E.nrefused && E.refused[at].tid == tid) {
		E.refused[at].ino = ino;
		return;
	}
	if (E.nrefused == E.crefused)
		return;
	memmove(E.refused + at + 1, E.refused + at, (E.nrefused - at) * sizeof *E.refused);
	E.refused[at].tid = tid;
	E.refused[at].ino = ino;
	E.nrefused++;
}

/* What a slot knows of its thread, set when the thread is found (or a new
 * thread is found with an ended one's tid). */
static void init_slot(uint32_t idx, uint64_t ino)
{
	struct pw_slot *s = pw_slot_at(idx);
	s->result = 0;
	s->ino = ino;
	s->refused = E.nrefused && was_refused(slot_tid(idx), ino);
}

static int new_slot(pid_t tid, uint64_t ino, uint32_t *out)
{
	if (E.nused >= E.reserved)
		return -ENOSPC; /* more threads than reserved: start again */
	uint32_t pos;
	if (procwide__find_tid(tid, &pos) != UINT32_MAX)
		return -EEXIST;
	uint32_t idx = E.nused;
	struct pw_slot *s = pw_slot_at(idx);
	atomic_store_explicit(&s->word, pw_word(E.gen, PW_S_FREE), memory_order_relaxed);
	atomic_store_explicit(&s->tid, tid, memory_order_relaxed);
	s->proof = 0;
	init_slot(idx, ino);
	if (idx + 1 > atomic_load_explicit(&procwide__shared.nslots, memory_order_relaxed))
		atomic_store_explicit(&procwide__shared.nslots, idx + 1, memory_order_release);
	E.hash[pos] = idx + 1;
	E.nused++;
	*out = idx;
	return 0;
}

/* ---- signalling ------------------------------------------------------------ */

/* Queues procwide's signal to the thread of slot idx.  The value carries
 * the process secret and the slot index, si_errno the call's generation:
 * the handler needs nothing else to find its slot. */
static long send_signal(uint32_t idx)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = E.signo;
	si.si_code = SI_QUEUE;
	si.si_errno = (int)E.gen;
	si.si_pid = procwide__shared.pid;
	si.si_uid = E.uid;
	si.si_value.sival_ptr =
		(void *)(uintptr_t)((procwide__shared.secret << PW_INDEX_BITS) | idx);
	slot_set(idx, PW_S_SENT);
	return pw_sys6(SYS_rt_tgsigqueueinfo, procwide__shared.pid, slot_tid(idx), E.signo,
		       (long)&si, 0, 0);
}

/* Sends to a slot in FREE or UNSENT state and accounts for the outcome. */
static int reach(uint32_t idx)
{
	long r = send_signal(idx);
	if (r == 0) {
		E.nsent++;
		return 0;
	}
	/* A thread sent the signal again (ptrace refused it) may have taken
	 * the first one since the slot became SENT: it has arrived and is
	 * counted; its slot must not be overwritten. */
	if (!slot_cas(idx, PW_S_SENT, r == -ESRCH ? PW_S_GONE : PW_S_UNSENT)) {
		E.nsent++;
		return 0;
	}
	if (r == -ESRCH) /* exited already */
		return 0;
	if (r == -EAGAIN) { /* RLIMIT_SIGPENDING: retry as others drain */
		E.nunsent++;
		return 0;
	}
	return (int)r;
}

/* The number of arrivals the caller waits for: the signals in flight. */
static void publish_want(void)
{
	atomic_store(&procwide__shared.want, E.nsent);
}

/* Marks slot idx (in state `from`) for the ptrace helper; seize_marked()
 * hands it over.  The compare-and-swap settles a race with a late arrival:
 * either the thread parked in the handler, or the handler will turn it
 * away. */
static void mark_for_seizing(uint32_t idx, enum pw_slot_state from)
{
	if (!slot_cas(idx, from, PW_S_INJECTING))
		return;
	if (from == PW_S_SENT)
		E.nsent--;
	if (from == PW_S_UNSENT && E.nunsent)
		E.nunsent--;
}

/* Task flags (include/linux/sched.h) of threads that never return to user
 * space: io_uring workers, and user workers such as vhost's (Linux 6.4). */
#define PW_PF_IO_WORKER 0x00000010ul
#define PW_PF_USER_WORKER 0x00004000ul

/* Records the first failure that E.why will describe: one thread's (tid),
 * or the helper's own (tid 0), which stops ptrace for the rest of the call
 * and takes precedence. */
static void note_inject_failure(pid_t tid, int e, const char *why)
{
	if (E.inject_error && (tid || !E.why_tid))
		return;
	E.inject_error = e;
	E.why_tid = tid;
	snprintf(E.why, sizeof E.why, "%s", why);
}

/* Settles slot idx after the helper's answer e about it; why: the reason
 * ptrace refused this thread, NULL when the helper itself failed.  0, or
 * the error of signalling a refused thread again. */
static int seize_result(uint32_t idx, int e, const char *why)
{
	/* PTRACE_SEIZE refuses a thread that is ending (its exit_state is
	 * set) with EPERM: it is gone, not protected; or, for a main thread
	 * that called pthread_exit, a zombie for as long as the process lives
	 * (listed, and counted by the kernel). */
	if (e == -EPERM) {
		char st = procwide__task_state(slot_tid(idx));
		if (st == 'Z' && slot_tid(idx) == procwide__shared.pid) {
			slot_set(idx, PW_S_ZOMBIE);
			E.nzombie++;
			return 0;
		}
		if (st == 'Z' || st == 'X' ||
		    pw_tgkill(procwide__shared.pid, slot_tid(idx), 0) == -ESRCH)
			e = -ESRCH;
	}
	if (e == -ESRCH) {
		slot_set(idx, PW_S_GONE);
	} else if (e == PW_INJ_KERNEL_WORKER &&
		   (procwide__task_flags(slot_tid(idx)) & (PW_PF_IO_WORKER | PW_PF_USER_WORKER))) {
		/* It never runs user code, so it has nothing to change and
		 * cannot escape: left alone, counted as present.  The kernel's
		 * own flag decides, not the registers alone: a user thread
		 * can be stopped with ip and sp at 0 too (it jumped to 0). */
		slot_set(idx, PW_S_KWORKER);
		E.nkworker++;
	} else if (e) {
		if (e == PW_INJ_KERNEL_WORKER) {
			e = -EIO;
			why = "stopped with its instruction and stack pointers at 0, but the kernel does not mark it as a worker thread";
		}
		if (why) { /* this thread's own: not asked again in this call */
			pw_slot_at(idx)->refused = true;
			remember_refused(slot_tid(idx), pw_slot_at(idx)->ino);
			note_inject_failure(slot_tid(idx), e, why);
		}
		if (E.inject_all) {
			slot_set(idx, PW_S_NOPTRACE); /* no signal may be sent */
			return 0;
		}
		/* Left to the signal until the deadline: it may only be slow.
		 * Signalled again, since while it was being handed over it may
		 * have taken and turned away the first signal. */
		return reach(idx);
	} else {
		slot_set(idx, PW_S_SEIZED);
		E.nseized++;
	}
	return 0;
}

/* Hands every marked thread to the ptrace helper, with up to a window of
 * requests in flight so that the helper stops them together.  0 when each
 * is stopped, gone, or back to its signal: a thread ptrace refuses (E.why
 * says why) may only be slow, so it is signalled again and not handed over
 * again in this call (E.refused); if the helper itself fails, ptrace is off
 * for the rest of the call.  Whether an attempt left with such threads
 * starts again is procwide__wait_arrivals' choice.  When no signal may be
 * sent at all (inject_all), a failure ends the call with ptrace's error. */
#define PW_SEIZE_WINDOW 64u

static int seize_marked(void)
{
	uint32_t next = 0, inflight = 0;
	int e = 0, resignal = 0; /* the first error of signalling a thread again */
	char why[sizeof E.why] = "";
	for (;;) {
		while (!e && inflight < PW_SEIZE_WINDOW) {
			while (next < E.nused && slot_state(next) != PW_S_INJECTING)
				next++;
			if (next == E.nused)
				break;
			/* Starts the helper, or a bigger one if the slots grew. */
			e = procwide__inject_begin(E.reserved, E.deadline, why, sizeof why);
			if (!e && (e = procwide__inject_send_seize(next, slot_tid(next))) != 0)
				snprintf(why, sizeof why, "the ptrace helper died (a seccomp filter may forbid ptrace)");
			if (e)
				break;
			slot_set(next++, PW_S_SEIZING);
			inflight++;
		}
		/* A helper that died as requests went out answers none. */
		if (!inflight || (e && !procwide__inject_active()))
			break;
		uint32_t idx;
		int r = procwide__inject_recv_seize(&idx, E.deadline, why, sizeof why);
		if (r == -EPIPE || r == -ETIMEDOUT || idx >= E.nused ||
		    slot_state(idx) != PW_S_SEIZING) {
			e = r == -EPIPE || r == -ETIMEDOUT ? r : -EIO;
			if (e == -EIO)
				snprintf(why, sizeof why, "the ptrace helper answered a request it was not sent");
			/* An answer that fits no request: nothing more it says
			 * can be trusted (a later one could pass for another). */
			procwide__inject_abort();
			break; /* the helper is gone: it detached what it held */
		}
		inflight--;
		/* Every answer is taken, an error or not: a session helper's
		 * answers must not be left for the next request to read. */
		int s_e = seize_result(idx, r, why);
		if (s_e && !resignal)
			resignal = s_e;
	}
	if (e) {
		note_inject_failure(0, e, why);
		E.may_inject = false;
		/* Whatever was not handed over, or was lost with the helper. */
		bool helper_gone = !procwide__inject_active();
		for (uint32_t i = 0; i < E.nused; i++) {
			enum pw_slot_state st = slot_state(i);
			bool lost = st == PW_S_SEIZED && helper_gone;
			if (lost)
				E.nseized--; /* detached as the helper died */
			int s_e = 0;
			if (st == PW_S_INJECTING || st == PW_S_SEIZING || lost)
				s_e = seize_result(i, e, NULL);
			if (s_e && !resignal)
				resignal = s_e;
		}
	}
	if (resignal)
		return resignal;
	if (E.inject_all && E.inject_error)
		return E.inject_error; /* no signal may be sent: the call fails */
	publish_want();
	/* Those stopped meanwhile run the call now on the direct path, which
	 * cannot go back. */
	if (E.direct)
		procwide__run_seized_now();
	return 0;
}

/* Fills `l` with the tids of this call's slots whose state `keep` accepts;
 * leaves it empty if memory runs out (the lists are optimisations). */
void procwide__keep_tids(struct tid_list *l, bool (*keep)(enum pw_slot_state))
{
	l->n = 0;
	if (E.nused > l->cap) {
		pid_t *t = realloc(l->tids, E.nused * sizeof *t);
		if (t)
			l->tids = t;
		uint64_t *in = realloc(l->inos, E.nused * sizeof *in);
		if (in)
			l->inos = in;
		if (!t || !in)
			return;
		l->cap = E.nused;
	}
	for (uint32_t i = 0; i < E.nused; i++)
		if (keep(slot_state(i))) {
			l->inos[l->n] = pw_slot_at(i)->ino;
			l->tids[l->n++] = slot_tid(i);
		}
}

/* Threads that the last call had to reach through ptrace (they block the
 * signal), sorted.  The next call hands them to the helper at once: no
 * signal that would stay queued in them (each one counts against the
 * user's RLIMIT_SIGPENDING, call after call) and no wait for them to
 * stall. */
static struct tid_list blocking;

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* Every PW_REPROBE_EVERY-th call looks again at whether such a thread still
 * blocks the signal (a runtime may block signals only while it starts, and
 * a thread can be reached through ptrace once for being slow): one that no
 * longer does is signalled, and the process can go back to signals alone. */
#define PW_REPROBE_EVERY 16u

static bool known_blocking(pid_t tid)
{
	if (!blocking.n || !bsearch(&tid, blocking.tids, blocking.n, sizeof tid, cmp_tid))
		return false;
	return !E.reprobe || procwide__task_blocks(tid, E.signo) != 0;
}

/* io_uring workers too: the helper tells them at once. */
static bool reached_by_ptrace(enum pw_slot_state st)
{
	return st == PW_S_INJ_DONE || st == PW_S_SEIZED || st == PW_S_KWORKER;
}

static void remember_blocking(void)
{
	procwide__keep_tids(&blocking, reached_by_ptrace);
	if (blocking.n)
		qsort(blocking.tids, blocking.n, sizeof *blocking.tids, cmp_tid);
}


/* On the direct path, a slot whose thread ended and whose tid another
 * thread now has: the inode number differs (see prove_complete).  Only for
 * states whose counts reach() can redo; an entry whose inode was merely
 * made again (the dentry evicted) is the same thread, which then runs the
 * call a second time, as the direct path allows. */
static bool tid_renewed(uint32_t idx, enum pw_slot_state st, uint64_t ino)
{
	return E.direct && (st == PW_S_SENT || st == PW_S_DONE) && ino > PW_INO_NONE &&
	       pw_slot_at(idx)->ino != ino;
}

/* What the last call saw of the main thread, to spare the /proc read of
 * its state (4 to 7 us) on every call: a main thread that called
 * pthread_exit stays listed as a zombie and never answers.  One that
 * answered the last call is signalled without a look; if it has exited
 * since, the wait finds it (check_laggards reads its state after a
 * millisecond without progress), once in the life of the process.  A
 * zombie main thread stays one until the process ends (an exec by another
 * thread starts a new program).
 *
 * Kept in a page the kernel empties in a forked child (MADV_WIPEONFORK,
 * Linux 4.14), however it was forked: a child whose pid equals the one
 * remembered (pid 1 of a new pid namespace, say) starts with nothing seen.
 * Without such a page, the state is read every time. */
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
enum pw_leader_seen { PW_LEADER_UNSEEN = 0, PW_LEADER_ANSWERED, PW_LEADER_ZOMBIE };
static struct pw_leader {
	pid_t pid;
	enum pw_leader_seen seen;
} *leader;

__attribute__((constructor)) static void pw_leader_init(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (madvise(p, (size_t)page, MADV_WIPEONFORK) != 0) {
		munmap(p, (size_t)page);
		return;
	}
	leader = p;
}

static bool leader_is_zombie(pid_t pid)
{
	if (leader && leader->pid == pid && leader->seen != PW_LEADER_UNSEEN)
		return leader->seen == PW_LEADER_ZOMBIE;
	return procwide__task_state(pid) == 'Z';
}

static void remember_leader(void)
{
	if (!leader)
		return;
	pid_t pid = procwide__shared.pid;
	uint32_t pos, idx = E.nused ? procwide__find_tid(pid, &pos) : UINT32_MAX;
	enum pw_slot_state st = idx == UINT32_MAX ? PW_S_FREE : slot_state(idx);
	leader->pid = pid;
	if (st == PW_S_ZOMBIE)
		leader->seen = PW_LEADER_ZOMBIE;
	else if (st == PW_S_DONE || st == PW_S_INJ_DONE || st == PW_S_CALLER ||
		 st == PW_S_RELEASED)
		leader->seen = PW_LEADER_ANSWERED;
	else
		leader->seen = PW_LEADER_UNSEEN;
}

/* PW_RENEW_ONLY as ctx: only renew known slots, leave new tids to the next
 * sweep. */
static char renew_only;
#define PW_RENEW_ONLY (&renew_only)

static int on_tid(pid_t tid, uint64_t ino, void *ctx)
{
	uint32_t pos, idx = procwide__find_tid(tid, &pos);
	if (idx == UINT32_MAX && ctx == PW_RENEW_ONLY)
		return 0;
	if (idx != UINT32_MAX) {
		uint64_t w = slot_word(idx);
		enum pw_slot_state st = (enum pw_slot_state)(w & 0xff);
		if (st != PW_S_GONE && !tid_renewed(idx, st, ino))
			return 0;
		/* A thread that ended, whose tid a new thread now has: a
		 * thread of its own.  Unless the slot moved meanwhile (the same
		 * thread answering, its entry merely made again). */
		if (!atomic_compare_exchange_strong(&pw_slot_at(idx)->word, &w,
						    pw_word(E.gen, PW_S_FREE)))
			return 0;
		if (st == PW_S_SENT)
			E.nsent--; /* its signal died with it */
		init_slot(idx, ino);
		E.nnew++;
		return reach(idx);
	}
	int e = new_slot(tid, ino, &idx);
	if (e)
		return e;
	E.nnew++;
	if (tid == procwide__shared.caller_tid) {
		slot_set(idx, PW_S_CALLER);
		return 0;
	}
	/* A main thread that called pthread_exit stays listed as a zombie
	 * for as long as the process lives; it never runs code again. */
	if (tid == procwide__shared.pid && leader_is_zombie(tid)) {
		slot_set(idx, PW_S_ZOMBIE);
		E.nzombie++;
		return 0;
	}
	if (E.inject_all || (E.may_inject && !pw_slot_at(idx)->refused && known_blocking(tid))) {
		slot_set(idx, PW_S_INJECTING); /* seized after the sweep */
		E.nmarked++;
		return 0;
	}
	return reach(idx);
}

/* One pass over the threads that have not arrived: drop those that exited
 * or are zombies, retry the signals the queue refused. */
static int check_laggards(void)
{
	E.nunsent = 0;
	for (uint32_t i = 0; i < E.nused; i++) {
		enum pw_slot_state st = slot_state(i);
		if (st == PW_S_UNSENT) {
			int e = reach(i);
			if (e)
				return e;
			continue;
		}
		if (st != PW_S_SENT)
			continue;
		pid_t tid = slot_tid(i);
		bool gone = pw_tgkill(procwide__shared.pid, tid, 0) == -ESRCH;
		/* Only a main thread stays a zombie while the process lives (or
		 * a thread a debugger has not reaped): read /proc for it alone,
		 * since a read per waiting thread would cost more than the wait. */
		char state = gone || tid != procwide__shared.pid ? 0 : procwide__task_state(tid);
		gone |= state == 'X'; /* dead: leaves the count at once */
		if (!gone && state != 'Z')
			continue;
		/* The compare-and-swap loses only to an arrival, and a thread
		 * that arrived is alive and parked. */
		if (slot_cas(i, PW_S_SENT, gone ? PW_S_GONE : PW_S_ZOMBIE)) {
			E.nsent--;
			E.nzombie += !gone;
		}
	}
	publish_want();
	return 0;
}

/* Hands every thread that has not answered to the ptrace helper, after
 * `quiet` ns without an answer; *marked tells whether there was any.
 *
 * A runnable thread is only waiting for a CPU.  It answers once it runs
 * unless it blocks the signal -- and blocking it right now may be brief:
 * a thread preempted in procwide's own handler (the last call's, whose
 * signal stays blocked until the handler returns) or in glibc's
 * pthread_create (a new thread starts with every signal blocked).  Seized
 * then, it would also join the threads the next calls seize at once.  So a
 * runnable thread is left to the signal for PW_RUNNABLE_GRACE_NS, and then
 * only if its mask lets the signal in. */
#define PW_RUNNABLE_GRACE_NS 20000000ull

static uint64_t wait_cap(void);

/* `force`: every thread, runnable or not (the wait is at its deadline).
 * *refused: some thread that has not answered is one ptrace refused. */
static int seize_laggards(uint64_t silent, bool force, bool *marked, bool *refused)
{
	*marked = *refused = false;
	uint64_t grace = PW_RUNNABLE_GRACE_NS < wait_cap() ? PW_RUNNABLE_GRACE_NS : wait_cap();
	for (uint32_t i = 0; i < E.nused; i++) {
		enum pw_slot_state st = slot_state(i);
		if (st != PW_S_SENT && st != PW_S_UNSENT)
			continue;
		if (pw_slot_at(i)->refused) {
			*refused = true;
			continue;
		}
		if (!force && st == PW_S_SENT && procwide__task_state(slot_tid(i)) == 'R' &&
		    (silent < grace || procwide__task_blocks(slot_tid(i), E.signo) == 0))
			continue;
		mark_for_seizing(i, st);
		*marked = true;
	}
	publish_want();
	return seize_marked();
}

/* ---- phase 1: gather -------------------------------------------------------- */

/* Signals every thread listed in /proc/self/task, or in `l` when given
 * (the threads of the call before, see gather_direct). */
int procwide__sweep_from(const struct tid_list *l)
{
	E.nnew = 0;
	atomic_store(&procwide__shared.want, UINT32_MAX); /* no wake-ups while sending */
	int e = 0;
	if (l)
		for (uint32_t i = 0; i < l->n && !e; i++)
			e = on_tid(l->tids[i], l->inos[i], NULL);
	else
		e = procwide__taskdir_sweep(on_tid, NULL);
	publish_want();
	if (!e && E.nmarked) {
		E.nmarked = 0;
		e = seize_marked();
	}
	return e;
}

int procwide__sweep(void)
{
	return procwide__sweep_from(NULL);
}

/* Before sleeping on a futex, the caller spins briefly: a few threads
 * usually answer within microseconds, and a sleep and wake-up of the
 * caller would cost more than the whole wait.  Only with more than one
 * CPU, where the threads it waits for can run meanwhile.  Some of them were
 * woken onto the caller's own CPU while it sent the signals and wait there
 * behind it: before its first spin of a wait, the caller yields to them
 * (sched_yield moves it behind the runnable threads of its CPU).  Measured
 * here, alternated (bench_broadcast -b 0): 0.88 of glibc's time at 10
 * threads and 0.94 at 100 with the yield, 0.92 and 1.00 without; about 1.1
 * at 10 threads with no spin at all.  True if the word changed. */
#define PW_SPIN_NS 30000ull

/* Only under the fair class's policies: a SCHED_DEADLINE caller that
 * yields gives up the rest of its runtime until its next period, and under
 * SCHED_FIFO or SCHED_RR a yield does not let lower-priority threads run.
 * Asked of the kernel when the caller is about to yield (musl's
 * sched_getscheduler is a stub that fails with ENOSYS). */
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

static bool caller_may_yield(void)
{
	long policy = pw_sys3(SYS_sched_getscheduler, 0, 0, 0);
	if (pw_is_err(policy))
		return false;
	policy &= ~(long)SCHED_RESET_ON_FORK;
	return policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE;
}

static bool spin_while(_Atomic uint32_t *word, uint32_t val, uint32_t outstanding,
		       bool *yielded)
{
	static uint32_t ncpu;
	if (!ncpu) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ncpu = n > 0 ? (uint32_t)n : 1;
	}
	/* Spinning takes a CPU from the threads it waits for: only while a
	 * few are left per CPU (the last ones answer within microseconds). */
	if (ncpu < 2 || outstanding > 16 * ncpu)
		return false;
	/* Once per wait: one yield lets every thread queued behind the caller
	 * run (it moves the caller's deadline back a whole slice), and on a
	 * busy machine each yield may cost the caller a slice. */
	if (!*yielded) {
		*yielded = true;
		if (caller_may_yield()) {
			sched_yield();
			if (atomic_load_explicit(word, memory_order_relaxed) != val)
				return true;
		}
	}
	uint64_t end = now_ns() + PW_SPIN_NS;
	do {
		for (int i = 0; i < 64; i++) {
			if (atomic_load_explicit(word, memory_order_relaxed) != val)
				return true;
			pw_arch_cpu_relax();
		}
	} while (now_ns() < end);
	return false;
}

/* Waits on a futex word while it holds `val`, for at most `slice` and not
 * past `deadline`.  0 when woken or the word changed, -ETIMEDOUT when the
 * slice ran out, -ETIME when the deadline has passed with the word unchanged. */
static long wait_word(_Atomic uint32_t *word, uint32_t val, uint64_t deadline, uint64_t slice)
{
	uint64_t t = now_ns();
	if (t >= deadline) /* unless the word moved as time ran out */
		return atomic_load(word) != val ? 0 : -ETIME;
	uint64_t wait = deadline - t < slice ? deadline - t : slice;
	struct timespec rel = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
	long r = pw_futex_wait(word, val, &rel);
	return r == -ETIMEDOUT ? r : 0;
}

#define PW_INJECT_AFTER_NS 1000000ull

/* How long a wait without an answer counts as a stall: `base`, or, when
 * threads answer only slowly (more runnable threads than CPUs, each
 * answering when its turn comes), four times the mean gap between the
 * `got` answers of the last `span` ns, up to a cap. */
#define PW_STALL_CAP_NS 64000000ull

/* Every limit of a wait stays within a quarter of the caller's deadline,
 * so that the checks and the ptrace helper get their turn before it. */
static uint64_t wait_cap(void)
{
	uint64_t cap = E.patience / 4;
	return cap < PW_STALL_CAP_NS ? cap : PW_STALL_CAP_NS;
}

static uint64_t stall_limit(uint64_t base, uint32_t got, uint64_t span)
{
	uint64_t slow = got ? 4 * (span / got) : 0;
	if (slow < base)
		slow = base;
	return slow < wait_cap() ? slow : wait_cap();
}

/* Waits until every thread signalled so far has arrived or is known gone.
 * 0; -ETIMEDOUT at the deadline; PW_STALLED when the attempt stalled and
 * may be given up (`may_retry`); or another -errno.  A stalled thread is
 * handed to the ptrace helper when that is allowed, retry or not. */
int procwide__wait_arrivals(uint64_t deadline, uint64_t stall_ns, bool may_retry)
{
	uint64_t slice = 1000000; /* 1 ms, doubling while nothing moves */
	uint32_t seen = atomic_load(&procwide__shared.arrived), first = seen;
	uint64_t start = now_ns();
	uint64_t last_answer = start;	/* the last thread that answered */
	uint64_t last_progress = start; /* ... or the last scan */
	uint64_t scan_quiet = 0; /* after a scan that found no thread to seize */
	bool forced = false, yielded = false;
	for (;;) {
		uint32_t a = atomic_load(&procwide__shared.arrived);
		if (a >= atomic_load(&procwide__shared.want) && E.nunsent == 0)
			return 0;
		if (spin_while(&procwide__shared.arrived, a,
			       atomic_load(&procwide__shared.want) - a, &yielded))
			continue;
		long r = wait_word(&procwide__shared.arrived, a, deadline, slice);
		if (r == -ETIME) {
			/* The direct path cannot go back: once, every thread
			 * still silent goes to the ptrace helper, runnable or
			 * not (a thread spinning where the signal cannot reach
			 * it: a handler the application put in procwide's
			 * place, say); the parked path keeps its deadline. */
			if (!E.direct || forced || !E.may_inject)
				return -ETIMEDOUT;
			forced = true;
			bool marked, refused;
			int e = seize_laggards(UINT64_MAX, true, &marked, &refused);
			if (e)
				return e;
			/* All silent ones refused already: a last look (one may
			 * have answered during the scan), then the end. */
			if (marked)
				deadline = E.deadline = now_ns() + E.patience;
			continue;
		}
		if (r == 0)
			continue;
		uint32_t now_arrived = atomic_load(&procwide__shared.arrived);
		if (now_arrived != seen) {
			/* Progress: threads are answering, only slowly. */
			seen = now_arrived;
			last_progress = last_answer = now_ns();
			/* On the direct path progress extends the deadline;
			 * renewed tids count as answers, so the call is bounded
			 * by the time inode numbers tell threads apart. */
			if (E.direct && last_progress - E.started >= procwide__ino_trust_ns())
				return PW_UNPROVEN;
			if (E.direct)
				deadline = E.deadline = last_progress + E.patience;
			continue;
		}
		/* Checks of the threads that have not answered, once the wait
		 * has been quiet for long enough: each costs the caller about a
		 * microsecond a thread, and on a loaded machine a caller that
		 * uses up its share of the CPU waits behind every runnable
		 * thread. */
		uint64_t t = now_ns(), quiet = t - last_progress;
		uint64_t span = last_answer - start;
		if (quiet < stall_limit(PW_INJECT_AFTER_NS, seen - first, span))
			goto next;
		/* On the direct path a thread may end with the signal pending
		 * and leave its tid to a new thread, which tgkill and /proc's
		 * state would take for it: its entry's inode number tells.  A
		 * listing that fails here is settled by parking. */
		if (E.direct && procwide__taskdir_sweep(on_tid, PW_RENEW_ONLY) != 0)
			return PW_UNPROVEN;
		int e = check_laggards();
		if (e)
			return e;
		/* Threads that do not answer go to the ptrace helper after a
		 * millisecond without progress; the retry waits longer. */
		if (quiet < stall_limit(E.may_inject ? PW_INJECT_AFTER_NS : stall_ns, seen - first, span) ||
		    quiet < (scan_quiet < wait_cap() ? scan_quiet : wait_cap()))
			goto next;
		if (!E.may_inject) {
			if (may_retry)
				return PW_STALLED;
			goto next;
		}
		bool marked, refused;
		e = seize_laggards(t - last_answer, false, &marked, &refused);
		if (e)
			return e;
		/* Only threads ptrace refused are left: as without ptrace, an
		 * attempt that stalls may start again (see gather_all). */
		if (!marked && refused && may_retry &&
		    quiet >= stall_limit(stall_ns, seen - first, span))
			return PW_STALLED;
		/* Every thread left was waiting for a CPU and takes the signal:
		 * reading /proc for each of them again soon would take the CPU
		 * from them (and a caller that uses up its share waits behind
		 * every runnable thread). */
		if (!marked)
			scan_quiet = scan_quiet ? (scan_quiet < PW_STALL_CAP_NS ? 2 * scan_quiet : scan_quiet)
						: 2 * PW_INJECT_AFTER_NS;
		last_progress = now_ns();
	next:
		if (slice < 64000000)
			slice *= 2;
	}
}

static int gather(uint64_t deadline, uint64_t stall_ns, bool may_retry)
{
	for (unsigned round = 0;; round++) {
		int e = procwide__sweep();
		if (e)
			return e;
		e = procwide__wait_arrivals(deadline, stall_ns, may_retry);
		if (e)
			return e;
		/* Everyone known is parked, stopped by the helper, a zombie or
		 * gone, and neither a parked nor a stopped thread creates
		 * threads.  A kernel count larger than ours means that readdir
		 * skipped a live thread while others exited, that a thread not
		 * yet parked made one, or that one is exiting: sweep again.  A
		 * smaller one: a zombie was reaped. */
		long count = procwide__taskdir_count();
		if (count < 0)
			return (int)count;
		long present = (long)atomic_load(&procwide__shared.arrived) + 1 + E.nzombie +
			       E.nseized + E.nkworker;
		if (count == present) {
			/* And a sweep that finds no one new: the count alone
			 * could hide a thread behind one counted here that has
			 * just ended (a zombie reaped, a parked thread
			 * cancelled). */
			if ((e = procwide__sweep()) != 0)
				return e;
			if (!E.nnew)
				return 0;
			continue;
		}
		if ((e = check_laggards()) != 0)
			return e;
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
		if (round > 2)
			sched_yield();
	}
}

/* Starts an attempt at a gather with a fresh generation: every slot of an
 * earlier call or attempt becomes stale, and a late signal from one finds
 * its compare-and-swap failing. */
void procwide__start_attempt(void)
{
	if (++E.gen == 0)
		E.gen = 1;
	E.nused = E.nsent = E.nunsent = E.nzombie = E.nseized = E.nmarked = E.nkworker = 0;
	memset(E.hash, 0, E.hcap * sizeof *E.hash);
	atomic_store(&procwide__shared.arrived, 0);
	atomic_store(&procwide__shared.remaining, 0);
	atomic_store(&procwide__shared.phase, PW_GATHER);
}

/* ---- phases 2 and 3 ----------------------------------------------------------- */

/* Releases every parked thread into phase ph and waits until each has run
 * (GO) or returned (ABORT).  Threads that never arrived are cancelled first,
 * so that a late arrival finds its slot closed.  0, or -ETIMEDOUT if some
 * thread did not finish by the deadline. */
/* Is some thread in state `st` runnable (waiting for a CPU)? */
static bool any_runnable(enum pw_slot_state st)
{
	for (uint32_t i = 0; i < E.nused; i++)
		if (slot_state(i) == st && procwide__task_state(slot_tid(i)) == 'R')
			return true;
	return false;
}

/* A result from the ptrace helper, or (ctx non-NULL) from a thread that took
 * the return path. */
void procwide__on_injected(uint32_t idx, long result, int err, void *ctx)
{
	pw_slot_at(idx)->returned = ctx != NULL;
	if (err == -ESRCH) { /* ended (killed) while stopped: runs nothing */
		slot_set(idx, PW_S_GONE);
		return;
	}
	if (err) {
		/* Other threads have the change: fail closed. */
		char msg[160];
		snprintf(msg, sizeof msg,
			 "procwide: the ptrace helper could not run the call in thread %d (error %d) after others had run it; killing the process\n",
			 (int)slot_tid(idx), -err);
		procwide__die(msg);
	}
	pw_slot_at(idx)->result = result;
	slot_set(idx, PW_S_INJ_DONE);
	/* The thread is still stopped: a differing one never runs again (one
	 * on the return path has compared its result itself). */
	if (result != procwide__shared.expected && procwide__shared.kill_on_mismatch)
		procwide__die_mismatch(slot_tid(idx), result, procwide__shared.caller_tid,
				       procwide__shared.expected);
}

int procwide__release(enum pw_phase ph, uint64_t deadline)
{
	uint64_t t0 = now_ns();
	uint64_t patience = deadline == UINT64_MAX ? UINT64_MAX
			    : deadline > t0	   ? deadline - t0
						   : 0;
	uint32_t parked = 0;
	bool yielded = false;
	for (uint32_t i = 0; i < E.nused; i++) {
		if (slot_cas(i, PW_S_SENT, PW_S_CANCELLED))
			continue;
		parked += slot_state(i) == PW_S_ARRIVED;
	}
	atomic_store(&procwide__shared.remaining, parked);
	if (procwide__inject_active()) {
		/* The helper runs the call in the stopped threads (GO) and is
		 * ended before any parked thread goes on: a parked thread that
		 * has run the call goes back to application code with what the
		 * call took away, and must not find alive a helper that shares
		 * its memory with the privileges of before (src/inject.c).
		 * The caller has run it, but runs only procwide until then,
		 * every signal blocked. */
		if (ph == PW_GO && E.nseized &&
		    procwide__inject_run_all(procwide__shared.nr, procwide__shared.args,
					     procwide__shared.expected,
					     procwide__shared.kill_on_mismatch,
					     procwide__shared.caller_tid, deadline,
					     procwide__on_injected, NULL) != 0)
			procwide__die("procwide: the ptrace helper did not finish the call after other threads had run it; killing the process so that no thread runs half-changed\n");
		procwide__inject_end();
		/* Threads sent on the return path run the call now that the
		 * helper has gone. */
		if (ph == PW_GO && E.nseized &&
		    procwide__inject_collect(patience, procwide__on_injected, &E) != 0)
			procwide__die("procwide: a thread the ptrace helper had let go to run the call did not run it in time after other threads had run it; killing the process so that no thread runs half-changed\n");
		/* Ending the helper and the return path may have taken the
		 * patience the parked threads are now given. */
		if (patience != UINT64_MAX)
			deadline = now_ns() + patience;
	}
	atomic_store_explicit(&procwide__shared.phase, ph, memory_order_release);
	pw_futex_wake(&procwide__shared.phase, INT_MAX);

	/* The deadline bounds a wait without progress: on a loaded machine
	 * (threads spinning on every core) parked threads may take long to be
	 * scheduled, and each one that finishes shows the call is moving. */
	uint64_t slice = 1000000;
	uint32_t last_left = atomic_load(&procwide__shared.remaining);
	for (;;) {
		uint32_t left = atomic_load(&procwide__shared.remaining);
		if (left == 0)
			return 0;
		if (left != last_left && patience != UINT64_MAX) {
			last_left = left;
			deadline = now_ns() + patience;
		}
		if (spin_while(&procwide__shared.remaining, left, left, &yielded))
			continue;
		long r = wait_word(&procwide__shared.remaining, left, deadline, slice);
		if (r == -ETIME) {
			/* No progress for the whole patience: give up only if no
			 * thread that still has to finish is waiting for a CPU
			 * (a machine with threads spinning on every core). */
			if (!any_runnable(PW_S_ARRIVED))
				return -ETIMEDOUT;
			deadline = now_ns() + patience;
			continue;
		}
		if (r == 0)
			continue;
		/* A parked thread can still end (a pthread_cancel acting
		 * through a libc signal that nests in our handler): it will
		 * never count itself out. */
		for (uint32_t i = 0; i < E.nused; i++) {
			if (slot_state(i) == PW_S_ARRIVED &&
			    pw_tgkill(procwide__shared.pid, slot_tid(i), 0) == -ESRCH &&
			    slot_cas(i, PW_S_ARRIVED, PW_S_GONE))
				atomic_fetch_sub(&procwide__shared.remaining, 1);
		}
		if (slice < 64000000)
			slice *= 2;
	}
}

/* Lets every parked or held thread go without running anything.  Bounded:
 * a parked thread a debugger has stopped would otherwise be waited for
 * forever; since nothing changed, the call may return without it (it
 * leaves when resumed, and counts in nothing: see the handler). */
static void abort_all(void)
{
	uint64_t t = now_ns();
	procwide__release(PW_ABORT, E.deadline > t ? E.deadline + 1000000000ull : t + 1000000000ull);
}

/* ---- the report -------------------------------------------------------------- */

/* ptrace could not reach the thread of slot idx: it refused this one, or
 * was off for the call after the helper itself failed. */
static bool ptrace_failed_for(uint32_t idx)
{
	return pw_slot_at(idx)->refused || (E.inject_error && !E.why_tid);
}

static int thread_status(uint32_t idx, bool aborted_by_deadline, long *result, int *path,
			 int *stops)
{
	struct pw_slot *s = pw_slot_at(idx);
	*result = 0;
	*path = PROCWIDE_PATH_NONE;
	*stops = 0;
	enum pw_slot_state st = slot_state(idx);
	bool by_signal = st == PW_S_DONE || st == PW_S_RELEASED;
	switch (st) {
	case PW_S_CALLER:
		*result = procwide__shared.expected;
		*path = PROCWIDE_PATH_SELF;
		return PROCWIDE_THREAD_CALLER;
	case PW_S_DONE:
	case PW_S_INJ_DONE:
		*result = s->result;
		*path = by_signal ? PROCWIDE_PATH_SIGNAL : PROCWIDE_PATH_PTRACE;
		*stops = by_signal ? 0 : s->returned ? 1 : 3;
		return s->result == procwide__shared.expected ? PROCWIDE_THREAD_OK
							     : PROCWIDE_THREAD_MISMATCH;
	case PW_S_RELEASED:
	case PW_S_SEIZED:
		*path = by_signal ? PROCWIDE_PATH_SIGNAL : PROCWIDE_PATH_PTRACE;
		return PROCWIDE_THREAD_NOT_RUN;
	case PW_S_GONE:
		return PROCWIDE_THREAD_EXITED;
	case PW_S_ZOMBIE:
		return PROCWIDE_THREAD_ZOMBIE;
	case PW_S_KWORKER:
		return PROCWIDE_THREAD_KERNEL_WORKER;
	case PW_S_UNSENT:
		return PROCWIDE_THREAD_QUEUE_FULL;
	case PW_S_NOPTRACE:
		return PROCWIDE_THREAD_NO_PTRACE;
	case PW_S_CANCELLED:
		if (!aborted_by_deadline)
			return PROCWIDE_THREAD_NOT_RUN;
		if (ptrace_failed_for(idx))
			return PROCWIDE_THREAD_NO_PTRACE;
		return procwide__task_blocks(slot_tid(idx), E.signo) == 1 ? PROCWIDE_THREAD_BLOCKED
								 : PROCWIDE_THREAD_NO_ANSWER;
	default:
		return PROCWIDE_THREAD_NOT_RUN;
	}
}

static void describe_unreachable(struct pw_result *res, pid_t tid, int status,
				 unsigned deadline_ms)
{
	char name[32];
	procwide__task_name(tid, name, sizeof name);
	if (status == PROCWIDE_THREAD_NO_PTRACE) {
		char sig[40] = "PROCWIDE_PTRACE_ALL"; /* no signal was sent */
		if (E.signo)
			snprintf(sig, sizeof sig, "no answer to signal %d", E.signo);
		/* E.why is about one thread (or the helper): another refused
		 * one is named with it, for what it says. */
		char other[24] = "";
		if (E.why_tid && E.why_tid != tid)
			snprintf(other, sizeof other, "as for %d, ", (int)E.why_tid);
		snprintf(res->message, sizeof res->message,
			 "thread %d (%.15s) cannot be reached: %s; ptrace: %s%.110s; nothing was changed",
			 (int)tid, name, sig, other, E.why);
		return;
	}
	char what[96];
	if (status == PROCWIDE_THREAD_BLOCKED)
		snprintf(what, sizeof what, "blocks procwide's signal %d and did not answer it",
			 E.signo);
	else if (status == PROCWIDE_THREAD_QUEUE_FULL)
		snprintf(what, sizeof what,
			 "could not be sent procwide's signal %d (queue full: RLIMIT_SIGPENDING)",
			 E.signo);
	else
		snprintf(what, sizeof what, "did not answer procwide's signal %d", E.signo);
	snprintf(res->message, sizeof res->message,
		 "thread %d (%s) %s within %u ms%s; nothing was changed in any thread", (int)tid,
		 name, what, deadline_ms, res->nunreachable > 1 ? " (and others: see the report)" : "");
}

/* Fills the counts, the message and, when the caller asked for it and
 * res->threads was allocated (before anything changed), the thread list.
 * Returns the status of the unreachable thread the message names, or 0;
 * *unsettled (if given): a thread not known to have run the call nor to
 * be out of its reach (ended, a zombie, a kernel worker), or 0. */
static int build_report(const struct pw_request *req, struct pw_result *res,
			bool aborted_by_deadline, pid_t *unsettled)
{
	res->nthreads = 0;
	res->nmismatch = res->nunreachable = 0;
	pid_t first_unreachable = 0;
	int first_status = 0;
	for (uint32_t i = 0; i < E.nused; i++) {
		long result;
		int path;
		int stops;
		int st = thread_status(i, aborted_by_deadline, &result, &path, &stops);
		if (st == PROCWIDE_THREAD_MISMATCH)
			res->nmismatch++;
		if (unsettled && !*unsettled && st != PROCWIDE_THREAD_OK &&
		    st != PROCWIDE_THREAD_MISMATCH && st != PROCWIDE_THREAD_CALLER &&
		    st != PROCWIDE_THREAD_EXITED && st != PROCWIDE_THREAD_ZOMBIE &&
		    st != PROCWIDE_THREAD_KERNEL_WORKER)
			*unsettled = slot_tid(i);
		if (st == PROCWIDE_THREAD_BLOCKED || st == PROCWIDE_THREAD_NO_ANSWER ||
		    st == PROCWIDE_THREAD_QUEUE_FULL || st == PROCWIDE_THREAD_NO_PTRACE) {
			/* The thread E.why speaks of, if it is one of them. */
			if (!res->nunreachable++ ||
			    (st == PROCWIDE_THREAD_NO_PTRACE && slot_tid(i) == E.why_tid)) {
				first_unreachable = slot_tid(i);
				first_status = st;
			}
		}
		if (res->threads) {
			res->threads[res->nthreads++] = (struct procwide_thread){
				.tid = slot_tid(i),
				.status = st,
				.path = path,
				.stops = stops,
				.result = result};
		}
	}
	if (first_unreachable)
		describe_unreachable(res, first_unreachable, first_status, req->deadline_ms);
	return first_status;
}

pid_t procwide__first_silent(bool *no_ptrace)
{
	pid_t first = 0;
	for (uint32_t i = 0; i < E.nused; i++) {
		enum pw_slot_state st = slot_state(i);
		if (st != PW_S_SENT && st != PW_S_UNSENT && st != PW_S_NOPTRACE)
			continue;
		bool refused = ptrace_failed_for(i);
		/* The thread E.why speaks of, if it is one of them. */
		if (!first || (refused && slot_tid(i) == E.why_tid)) {
			first = slot_tid(i);
			*no_ptrace = refused;
		}
	}
	return first;
}

/* Reserves room for the threads the kernel counts now, with margin for
 * those created during the call, and the report's thread list, before any
 * thread is parked. */
int procwide__prepare_for(const struct pw_request *req, struct pw_result *res, uint32_t count,
		       uint32_t at_least)
{
	uint32_t n = count + count / 2 + 64;
	if (n < at_least)
		n = at_least;
	int e = reserve(n);
	if (e || !req->want_threads)
		return e;
	struct procwide_thread *t = realloc(res->threads, E.reserved * sizeof *t);
	if (!t)
		return -ENOMEM;
	res->threads = t;
	return 0;
}

int procwide__prepare(const struct pw_request *req, struct pw_result *res, uint32_t at_least)
{
	long count = procwide__taskdir_count();
	if (count < 0)
		return (int)count;
	return procwide__prepare_for(req, res, (uint32_t)count, at_least);
}

/* In kill mode the differing thread kills the process from the handler;
 * this is the caller's own check of the same, should one ever get past. */
static void kill_if_mismatch(const struct pw_request *req)
{
	if (!req->kill_on_mismatch)
		return;
	for (uint32_t i = 0; i < E.nused; i++)
		if ((slot_state(i) == PW_S_DONE || slot_state(i) == PW_S_INJ_DONE) &&
		    pw_slot_at(i)->result != procwide__shared.expected)
			procwide__die_mismatch(slot_tid(i), pw_slot_at(i)->result,
					procwide__shared.caller_tid, procwide__shared.expected);
}

/* Parks every thread (the parked path's phase 1, and the direct path's
 * fallback): attempts until every thread is parked, stopped or known gone,
 * growing the tables when threads multiply and starting again with more
 * patience when an attempt stalls.  0, or the error of the last attempt
 * (whose threads are still held: the caller releases them). */
int procwide__gather_all(const struct pw_request *req, struct pw_result *res, uint64_t deadline)
{
	uint64_t stall = PW_FIRST_STALL_NS;
	uint32_t room = 0;
	for (;;) {
		int e = procwide__prepare(req, res, room);
		if (e)
			return e;
		/* The last attempt runs to the deadline, so that only threads
		 * that had all of it to answer are reported unreachable. */
		uint64_t t = now_ns();
		if (t >= deadline)
			return -ETIMEDOUT;
		bool last = deadline - t <= 2 * stall;
		procwide__start_attempt();
		e = gather(deadline, stall, !last);
		if (e == -ENOSPC) {
			/* Threads multiplied during the gather. */
			abort_all();
			room = E.reserved * 2;
			continue;
		}
		if (e != PW_STALLED)
			return e;
		/* A thread that blocks the signal may be waiting for one that
		 * is parked: musl's pthread_create and pthread_exit wait for
		 * the thread-list lock with every application signal blocked,
		 * and the lock's hand-over wakes one waiter, which may be a
		 * joiner that procwide has parked.  Nothing has changed yet:
		 * let everyone run, then try again with more patience. */
		abort_all();
		stall *= 2;
		sched_yield();
	}
}

/* Runs the call in the calling thread; false (res filled) if it failed. */
bool procwide__run_in_caller(const struct pw_request *req, struct pw_result *res)
{
	long r = pw_sys6(req->call.nr, req->call.args[0], req->call.args[1],
			 req->call.args[2], req->call.args[3], req->call.args[4],
			 req->call.args[5]);
	procwide__shared.expected = r;
	res->result = r;
	if (!pw_is_err(r))
		return true;
	res->ret = (int)r;
	res->outcome = PROCWIDE_OUTCOME_CALLER_FAILED;
	snprintf(res->message, sizeof res->message,
		 "the call failed in the calling thread (%s); nothing was changed",
		 strerror((int)-r));
	return false;
}

/* ---- the call ------------------------------------------------------------------ */

static bool broadcastable(long nr)
{
	/* These would leave parked threads waiting for a caller that is gone
	 * or replaced, or make no sense in every thread. */
	/* x32 numbers (bit 30) reach other entry points: none is allowed. */
	if (nr < 0 || (nr & 0x40000000))
		return nr < 0; /* a negative number fails with ENOSYS everywhere */
	switch (nr) {
	/* Undone in other threads when the handler returns (sigreturn puts
	 * back the mask and the alternate stack) or when the ptrace helper
	 * puts the registers back (the fs/gs bases). */
	case SYS_rt_sigprocmask:
	case SYS_sigaltstack:
	case SYS_arch_prctl:
	case SYS_rt_sigsuspend:
	case SYS_exit:
	case SYS_rt_sigreturn:
	case SYS_clone:
	case SYS_fork:
	case SYS_vfork:
	case SYS_execve:
#ifdef SYS_execveat
	case SYS_execveat:
#endif
#ifdef SYS_clone3
	case SYS_clone3:
#endif
		return false;
	default:
		return true;
	}
}

static void fail(struct pw_result *res, int ret, int outcome, const char *msg)
{
	res->ret = ret;
	res->outcome = outcome;
	if (msg)
		snprintf(res->message, sizeof res->message, "%s", msg);
}

static void engine_run(const struct pw_request *req, struct pw_result *res);

/* errno as the caller left it, whatever the /proc reads and lookups on the
 * way set (a thread that ends between a listing and a lookup makes
 * ENOENT); procwide_syscall sets it only on failure. */
void procwide__engine_run(const struct pw_request *req, struct pw_result *res)
{
	int saved = errno;
	engine_run(req, res);
	errno = saved;
}

static void engine_run(const struct pw_request *req, struct pw_result *res)
{
	uint64_t t0 = now_ns();
	memset(res, 0, sizeof *res);
	if (!broadcastable(req->call.nr)) {
		fail(res, -EINVAL, PROCWIDE_OUTCOME_REFUSED,
		     "this system call cannot be run in every thread (exit, clone, fork, execve, rt_sigreturn, rt_sigprocmask, sigaltstack, arch_prctl, x32 calls)");
		return;
	}
	/* A deferred cancellation acting at one of the cancellation points
	 * below (read, poll, ...) would unwind the caller with every other
	 * thread parked: none is taken during the call. */
	int cancel_state;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pid_t pid = pw_getpid(), tid = pw_gettid();
	int e = procwide__lock(pid, tid);
	if (e) {
		fail(res, e, PROCWIDE_OUTCOME_REFUSED,
		     "procwide called from a signal handler that interrupted a procwide call in the same thread");
		pthread_setcancelstate(cancel_state, NULL);
		return;
	}
	/* The C library's own broadcast signals (32-34: glibc's cancellation
	 * and set*id, musl's synccall) wait here until the call is over.
	 * musl's synccall handler waits, inside the thread it interrupts, for
	 * the synccall's caller to finish; if that caller is a thread procwide
	 * is holding, a caller stuck in that handler would never release it. */
	uint64_t libc_sigs = 7ULL << 31, old_mask;
	pw_rt_sigprocmask(SIG_BLOCK, &libc_sigs, &old_mask);
	e = procwide__taskdir_ensure(pid);
	if (e) {
		fail(res, e, PROCWIDE_OUTCOME_REFUSED,
		     e == -ENOENT ? "cannot open /proc/self/task: is /proc mounted?"
				  : "cannot open /proc/self/task (a sandbox may forbid it: procwide opens it at load time, not after a fork)");
		goto out;
	}
	/* With PROCWIDE_PTRACE_ALL no thread is signalled: take no signal. */
	int sig = req->inject_all ? 0 : procwide__signal_ensure(req->signo);
	if (sig < 0) {
		fail(res, sig, PROCWIDE_OUTCOME_REFUSED,
		     sig == -EINVAL ? "the requested signal is not a real-time signal procwide may use (35..SIGRTMAX)"
				    : "no real-time signal is free for procwide");
		goto out;
	}

	E.signo = res->signo = sig;
	E.uid = getuid();
	procwide__shared.pid = pid;
	procwide__shared.caller_tid = tid;
	procwide__shared.nr = req->call.nr;
	memcpy(procwide__shared.args, req->call.args, sizeof procwide__shared.args);
	procwide__shared.kill_on_mismatch = req->kill_on_mismatch;
	procwide__shared.expected = 0;
	E.nused = 0; /* nothing to release until an attempt starts */

	E.patience = (uint64_t)req->deadline_ms * 1000000u;
	uint64_t deadline = t0 + E.patience;
	E.deadline = deadline;
	E.may_inject = req->may_inject;
	E.inject_error = 0;
	E.why_tid = 0;
	E.why[0] = '\0';
	E.nrefused = 0;
	E.inject_all = req->inject_all;
	E.direct = procwide__direct_allowed(req);
	static unsigned ncalls;
	E.reprobe = ++ncalls % PW_REPROBE_EVERY == 0;
	E.started = t0;
	res->mode = E.direct ? PROCWIDE_MODE_DIRECT : PROCWIDE_MODE_PARKED;
	/* The direct path sizes its tables from the last call's threads (a
	 * count read costs a system call; more threads grow the tables). */
	if (E.direct && (e = procwide__direct_prepare(req, res)) == 0) {
		procwide__run_direct(req, res);
		goto out;
	}
	if (!E.direct)
		e = procwide__gather_all(req, res, deadline);
	if (e) {
		abort_all();
		/* A PTRACE_ALL call that ptrace failed: no signal could help. */
		bool unreachable = e == -ETIMEDOUT || (E.inject_all && E.inject_error);
		res->outcome = unreachable ? PROCWIDE_OUTCOME_UNREACHABLE : PROCWIDE_OUTCOME_REFUSED;
		/* Unreachable by signal and by ptrace: ptrace's error says more
		 * than the deadline. */
		if (build_report(req, res, unreachable, NULL) == PROCWIDE_THREAD_NO_PTRACE &&
		    e == -ETIMEDOUT && E.inject_error)
			e = E.inject_error;
		res->ret = e;
		if (!unreachable)
			snprintf(res->message, sizeof res->message,
				 "reading /proc/self/task, signalling threads or allocating the report failed: %s; nothing was changed",
				 strerror(-e));
		goto out;
	}

	/* Every other thread is parked: run it here first.  A helper that
	 * shares the memory keeps the privileges of before the call: from
	 * the moment this thread has run it until the helper is gone
	 * (procwide__release), no handler of the application may run here
	 * either.  The mask is put back at the end of the call. */
	if (procwide__inject_shares_memory()) {
		uint64_t all = ~0ULL;
		pw_rt_sigprocmask(SIG_BLOCK, &all, NULL);
	}
	if (!procwide__run_in_caller(req, res)) {
		abort_all();
		build_report(req, res, false, NULL);
		goto out;
	}
	res->proof = PROCWIDE_PROOF_PARKED;
	if (procwide__release(PW_GO, now_ns() + E.patience) != 0) {
		/* Some threads have the change and one has not finished: the
		 * state of the process is unknown.  Fail closed. */
		char msg[160];
		snprintf(msg, sizeof msg,
			 "procwide: a thread did not finish the call within %u ms after others had run it; killing the process so that no thread runs half-changed\n",
			 req->deadline_ms);
		procwide__die(msg);
	}
	procwide__finish(req, res);
out:
	if (!E.inject_all)
		remember_blocking();
	remember_leader();
	/* The direct path is for a process whose last call went through with
	 * signals alone (see enum procwide_mode). */
	procwide__direct_after(res->outcome == PROCWIDE_OUTCOME_OK && !E.inject_all && blocking.n == 0);
	pw_rt_sigprocmask(SIG_SETMASK, &old_mask, NULL);
	procwide__unlock();
	pthread_setcancelstate(cancel_state, NULL);
	res->elapsed_ns = now_ns() - t0;
}

/* landlock_restrict_self run by each thread gives each a domain of its own
 * (a ruleset of -1 makes none; the kernel's TSYNC, Linux 7.0, gives every
 * thread the caller's): see procwide__inject_split_domains. */
static void note_landlock_domains(const struct procwide_call *c)
{
	if (c->nr != SYS_landlock_restrict_self || (int)c->args[0] == -1 ||
	    (c->args[1] & PWS_LL_RESTRICT_SELF_TSYNC))
		return;
	for (uint32_t i = 0; i < E.nused; i++) {
		enum pw_slot_state st = slot_state(i);
		if (st == PW_S_DONE || st == PW_S_INJ_DONE) {
			procwide__inject_split_domains(true);
			return;
		}
	}
}

/* The report of a call that ran everywhere.  A thread the report cannot
 * show has run the call is never expected here (the waits end only when
 * each slot is settled): the check that the success about to be reported
 * holds for every thread. */
void procwide__finish(const struct pw_request *req, struct pw_result *res)
{
	long r = procwide__shared.expected;
	kill_if_mismatch(req);
	note_landlock_domains(&req->call);
	pid_t u = 0;
	build_report(req, res, false, &u);
	if (u) {
		char msg[200];
		snprintf(msg, sizeof msg,
			 "procwide: thread %d is not known to have run the call that other threads ran; killing the process so that no thread runs half-changed\n",
			 (int)u);
		procwide__die(msg);
	}
	if (res->nmismatch) {
		res->ret = -ENOTRECOVERABLE;
		res->outcome = PROCWIDE_OUTCOME_MISMATCH;
		snprintf(res->message, sizeof res->message,
			 "%zu thread(s) returned a result different from the caller's %ld; the call ran in every thread and the process is now divergent",
			 res->nmismatch, r);
	} else {
		res->outcome = PROCWIDE_OUTCOME_OK;
	}
}

/* Keeps one ptrace helper across the calls of a sequence (see
 * procwide__inject_session_begin); best effort. */
void procwide__session(bool on)
{
	pid_t pid = pw_getpid(), tid = pw_gettid();
	if (procwide__lock(pid, tid) != 0)
		return;
	if (on) {
		char why[128];
		long count = procwide__taskdir_ensure(pid) == 0 ? procwide__taskdir_count() : -1;
		uint32_t cap = count > 0 ? (uint32_t)count * 4 + 4096 : 4096;
		if (cap > PW_MAX_CHUNKS * PW_CHUNK_SLOTS)
			cap = PW_MAX_CHUNKS * PW_CHUNK_SLOTS;
		/* Slots the engine will use must fit the helper's table. */
		if (reserve(cap) == 0)
			procwide__inject_session_begin(E.reserved, why, sizeof why);
	} else {
		procwide__inject_session_end();
	}
	procwide__unlock();
}
