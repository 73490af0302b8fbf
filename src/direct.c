/* The direct path (enum procwide_mode in procwide.h): the caller runs the
 * call, then each thread as the signal reaches it, and a proof that no
 * thread escaped.  Runs in the calling thread, under the lock, with the
 * parked path's machinery of src/engine.c.
 *
 * The parked gather keeps the promise "an error means nothing changed"; it
 * costs every thread a second wake-up (park, then run).  In kill mode an
 * error after others have run the call kills the process anyway, so when a
 * thread that does not answer the signal can still be reached through
 * ptrace, the call may run in the caller first and then in each thread as
 * the signal reaches it (enum procwide_mode in procwide.h says when).
 *
 * Without parking, threads that have run the call go on making and ending
 * threads, so "a sweep finds nothing new and the count agrees" proves
 * nothing.  The proof here: read the kernel's count c, then list
 * /proc/self/task and count the known threads still listed.  Every known
 * thread has run the call by then, and one listed after c was read was
 * alive when it was read; so if c equals the known threads listed, no
 * thread unknown to procwide was alive at that instant, and every thread
 * made since descends from one that had run the call (credentials, seccomp
 * filters, Landlock domains, no_new_privs, capabilities and the timer slack
 * are inherited at clone).  Otherwise sweep again.  Threads that keep
 * ending faster than the proof can be made leave it unproven a few times
 * over; then every thread is parked after all (a parked thread makes and
 * ends no thread) and runs the call.
 *
 * "Known" means the same thread, not only the same tid: a known thread
 * that ended after running the call may leave its tid to a new one, made by
 * a thread that had not yet run it.  A listed entry's inode number tells
 * them apart: proc gives each task directory it instantiates an inode of
 * its own (new_inode and get_next_ino() in proc_pid_make_inode), tied to the
 * task's struct pid, keeps it cached while the task lives
 * (pid_delete_dentry), and drops it when the task is reaped
 * (proc_flush_pid).  So an entry listed with the inode number the slot
 * recorded when its thread was found is that thread; a different number is
 * another thread (or the same one whose entry was evicted and made again:
 * signalled again, harmless).
 *
 * readdir reads a cached entry without revalidating it (proc_fill_cache),
 * so this holds only if the tid cannot be handed out again before the
 * entry is dropped.  From Linux 6.15 release_task frees the pid numbers
 * after proc_flush_pid ("pid: perform free_pid() calls outside of
 * tasklist_lock"); before, __exit_signal freed them first, and each entry
 * counted is looked up again by path, which revalidates it (pid_revalidate
 * drops an entry whose task is gone), at about 2 us an entry.
 *
 * A false match would also need the new entry to draw, from the machine's
 * 32-bit inode counter, exactly the number recorded for the old one: the
 * counter moves during the call by at most one number per PW_INO_MIN_NS on
 * each CPU (far less: each is an inode made), so a call is settled by
 * parking before it could have gone all the way round.
 *
 * The listing costs about half a microsecond per thread, and a process that
 * calls again and again usually made no thread in between.  The kernel
 * counts every task it creates, threads included (total_forks, shown as
 * "processes" in /proc/stat), in the same tasklist_lock section of
 * copy_process that makes the task visible in its thread group.  So the
 * count is read before each listing proof; if a later call, after every
 * thread the proven call knew has run it or is gone, reads the same count,
 * no task was created in between: every live thread was alive when that
 * proof was made, and was therefore known to it; the signal sent
 * to its tid reached that very thread (with nothing created, no tid was
 * handed out again); and it has run the call.  A creation that ends before
 * a thread runs the call is seen: the creator runs its handler only after
 * its clone returned, and the caller reads the count after seeing that
 * handler's answer.  Any task created anywhere on the machine in between
 * sends the call back to the listing.  The count is an unsigned long: on a
 * 64-bit kernel it never goes round (a 32-bit port would have to bound the
 * time between the two reads, as PW_INO_MIN_NS does for inode numbers).
 * src/fork_count.c says which counts are trusted (the kernel's own, seen
 * moving).
 */
#include "engine.h"
#include "inject.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PW_DIRECT_PROOFS 16

/* Set after each call: it succeeded with no thread reached through ptrace. */
static bool direct_ok;

/* The threads of the last call that succeeded.  The direct path signals
 * them first, without reading /proc/self/task (which costs about a
 * microsecond per thread); the proof then tells whether any other exists. */
static struct tid_list known;

/* The machine's count of created tasks (src/fork_count.c), read before the
 * proof of an earlier call: valid while every call since has succeeded,
 * proven (by a listing or by this count), with its threads kept as known;
 * and the same for the call in progress, committed by
 * procwide__direct_after. */
static struct forks_stamp {
	bool valid;
	uint64_t forks;
} stamp, pending;

/* Whether to read the count, decided once per call.  A read costs
 * forks_cost (ns, a moving average of the reads made) and spares a listing
 * (entry_cost per thread) as often as the count is found unchanged
 * (forks_hits, in 256ths: a machine that creates tasks all the time never
 * spares one).  /proc/stat takes longer to make on machines with many
 * CPUs.  When the read does not pay, it is still tried now and then, in
 * two calls in a row (one leaves a stamp, the next compares), at gaps that
 * double up to PW_FORKS_GAP_MAX calls, to see whether that changed. */
static uint64_t forks_cost, entry_cost;
static uint32_t forks_hits = 256;
static unsigned forks_gap, forks_wait, forks_probe;
#define PW_FORKS_GAP_MAX 4096u

static void average(uint64_t *avg, uint64_t sample)
{
	*avg = *avg ? (*avg * 7 + sample) / 8 : sample;
}

static void count_hit(bool hit)
{
	forks_hits = hit ? forks_hits + (256 - forks_hits) / 8 : forks_hits - forks_hits / 8;
}

static bool forks_worth_reading(uint32_t nthreads)
{
	if (procwide__forks_always_worth() || forks_cost == 0 ||
	    forks_cost * 256 < (uint64_t)forks_hits * entry_cost * nthreads) {
		forks_gap = forks_wait = forks_probe = 0;
		return true;
	}
	if (forks_probe) {
		forks_probe--;
		return true;
	}
	if (forks_wait) {
		forks_wait--;
		return false;
	}
	forks_gap = !forks_gap ? 1 : forks_gap < PW_FORKS_GAP_MAX ? 2 * forks_gap : forks_gap;
	forks_wait = forks_gap;
	forks_probe = 1;
	return true;
}

/* A wait that names the caller itself, never a child: it reaps nothing
 * and returns ECHILD at once, after taking tasklist_lock for reading
 * (__do_wait), and so after every section that held it for writing when
 * the wait began has ended. */
static bool tasklist_settled(void)
{
	siginfo_t si;
	return pw_sys6(SYS_waitid, P_PID, procwide__shared.caller_tid, (long)&si,
		       WEXITED | WNOHANG | __WALL, 0, 0) == -ECHILD;
}

static bool read_forks(struct forks_stamp *f)
{
	uint64_t t = now_ns();
	f->valid = procwide__forks_read(&f->forks) == 0;
	average(&forks_cost, now_ns() - t);
	return f->valid;
}

/* Proven by the count of created tasks (see above), read once every thread
 * of the call has run it or is gone: every thread the stamped call knew has
 * a slot (the sweep from `known` made one for each, and on this path no
 * other slot is made), each slot has run the call or is gone, and the count
 * equals the stamp.  *fresh: the count read (if it was), which the listing
 * proof may take as its own (it was read before that proof's thread
 * count). */
static bool forks_unchanged(struct forks_stamp *fresh)
{
	fresh->valid = false;
	if (!stamp.valid || E.nused != known.n)
		return false;
	for (uint32_t i = 0; i < E.nused; i++) {
		enum pw_slot_state st = slot_state(i);
		if (!slot_ran(st) && st != PW_S_GONE)
			return false;
	}
	/* A thread known gone (tgkill's ESRCH, or /proc's 'Z') may have made
	 * a thread first: the wait orders the read after every tasklist_lock
	 * section that ended before it, its exit's and that creation's
	 * included (needed where stores are ordered weakly; a DONE slot's
	 * answer was read with acquire ordering). */
	if (!tasklist_settled() || !read_forks(fresh))
		return false;
	bool hit = fresh->forks == stamp.forks;
	count_hit(hit);
	if (hit)
		pending = stamp;
	return hit;
}

static bool still_there(enum pw_slot_state st)
{
	return st != PW_S_GONE;
}

bool procwide__direct_allowed(const struct pw_request *req)
{
	return direct_ok && req->kill_on_mismatch && req->may_inject && !req->inject_all &&
	       !req->atomic && procwide__direct_safe(&req->call) && procwide__inject_possible();
}

/* The threads stopped by the helper run the call at once and go. */
void procwide__run_seized_now(void)
{
	if (!E.nseized)
		return;
	if (procwide__inject_run_detach(procwide__shared.nr, procwide__shared.args, E.deadline,
					procwide__on_injected, NULL) != 0)
		procwide__die("procwide: the ptrace helper did not finish the call after other threads had run it; killing the process so that no thread runs half-changed\n");
	E.nseized = 0;
}

/* The longest direct call whose threads inode numbers tell apart: the time
 * the inode counter needs to go round (see above), with the CPUs configured
 * (not only those online, which may come back). */
#define PW_INO_MIN_NS 20u

uint64_t procwide__ino_trust_ns(void)
{
	static uint64_t trust;
	if (!trust) {
		long cpus = sysconf(_SC_NPROCESSORS_CONF);
		trust = (uint64_t)PW_INO_MIN_NS * (1ull << 32) / (uint64_t)(cpus > 0 ? cpus : 1);
	}
	return trust;
}

/* Counts into *ctx the known threads listed, each once. */
static int count_known(pid_t tid, uint64_t ino, void *ctx)
{
	uint32_t *listed = ctx;
	uint32_t pos, idx = procwide__find_tid(tid, &pos);
	if (idx == UINT32_MAX)
		return 0;
	struct pw_slot *slot = pw_slot_at(idx);
	enum pw_slot_state st = slot_state(idx);
	bool ran = slot_ran(st);
	/* A directory listing may show an entry twice while threads end:
	 * each slot counts once per proof. */
	if (!ran || slot->proof == E.proof)
		return 0;
	if (st != PW_S_CALLER &&
	    (ino <= PW_INO_NONE || slot->ino != ino ||
	     (!procwide__proc_frees_tid_after_flush() && procwide__task_ino(tid) != ino)))
		return 0;
	slot->proof = E.proof;
	(*listed)++;
	return 0;
}

/* 0 when proven that every live thread has the change, 1 when not (yet).
 * *forks: the count of created tasks, read first if `with_forks` and not
 * read yet (valid false if it could not be). */
static int prove_complete(bool with_forks, struct forks_stamp *forks)
{
	/* The count and the thread count are raised in one tasklist_lock
	 * section of copy_process, read here without the lock: on a machine
	 * that orders stores weakly, a count that includes a new thread could
	 * meet a thread count that does not yet, unless that section has
	 * ended in between. */
	if (with_forks && !forks->valid)
		read_forks(forks);
	if (forks->valid && !tasklist_settled())
		forks->valid = false;
	long count = procwide__taskdir_count();
	if (count < 0)
		return (int)count;
	/* A thread being reaped leaves the count (sig->nr_threads--, in
	 * __exit_signal) a moment before it leaves the list
	 * (__unhash_process), both under tasklist_lock held for writing by
	 * release_task.  A wait takes that lock for reading (__do_wait), so
	 * once it returns, every release that had begun when the count was
	 * read has ended, and such a thread is no longer listed below. */
	if (!tasklist_settled())
		return 1; /* not the wait meant: no proof */
	if (++E.proof == 0)
		E.proof = 1;
	uint32_t listed = 0;
	uint64_t t = now_ns();
	if (procwide__taskdir_sweep(count_known, &listed) != 0)
		return 1; /* no proof this time */
	average(&entry_cost, (now_ns() - t) / (count > 0 ? (uint64_t)count : 1));
	return count == (long)listed ? 0 : 1;
}

/* More slots than reserved: no thread is held (the helper's batches are
 * run at once), so the caller may allocate; the tid index is rebuilt. */
static int grow_direct(const struct pw_request *req, struct pw_result *res)
{
	int e = procwide__prepare(req, res, E.reserved * 2);
	if (e)
		return e;
	memset(E.hash, 0, E.hcap * sizeof *E.hash);
	for (uint32_t i = 0; i < E.nused; i++) {
		uint32_t pos;
		procwide__find_tid(slot_tid(i), &pos);
		E.hash[pos] = i + 1;
	}
	return 0;
}

static int gather_direct(const struct pw_request *req, struct pw_result *res)
{
	bool with_forks = forks_worth_reading(known.n);
	for (unsigned proofs = 0;;) {
		/* The count of created tasks speaks only for the threads of the
		 * last call, every one of them signalled. */
		bool all_known = proofs == 0 && known.n;
		int e = all_known ? procwide__sweep_from(&known) : procwide__sweep();
		if (e == -ENOSPC) {
			all_known = false;
			e = grow_direct(req, res);
		}
		if (!e)
			e = procwide__wait_arrivals(E.deadline, PW_FIRST_STALL_NS, false);
		if (e)
			return e;
		struct forks_stamp forks = {0};
		if (all_known && with_forks && forks_unchanged(&forks)) {
			res->proof = PROCWIDE_PROOF_FORK_COUNT;
			return 0;
		}
		if ((e = prove_complete(with_forks, &forks)) < 0)
			return e;
		/* A call too long for inode numbers to tell threads apart. */
		if (now_ns() - E.started >= procwide__ino_trust_ns())
			return PW_UNPROVEN;
		if (e == 0) {
			res->proof = PROCWIDE_PROOF_LISTING;
			pending = forks;
			return 0;
		}
		if (++proofs == PW_DIRECT_PROOFS)
			return PW_UNPROVEN;
	}
}

/* Threads end too fast for the proof: park every thread and run it again
 * in each (the caller's result stands). */
static int settle_parked(const struct pw_request *req, struct pw_result *res)
{
	E.direct = false;
	uint64_t deadline = now_ns() + E.patience;
	E.deadline = deadline;
	int e = procwide__gather_all(req, res, deadline);
	res->proof = PROCWIDE_PROOF_PARKED;
	return e ? e : procwide__release(PW_GO, now_ns() + E.patience);
}

void procwide__run_direct(const struct pw_request *req, struct pw_result *res)
{
	procwide__start_attempt();
	if (!procwide__run_in_caller(req, res))
		return; /* no signal sent: nothing changed */
	atomic_store_explicit(&procwide__shared.phase, PW_DIRECT, memory_order_release);
	int e = gather_direct(req, res);
	if (e == PW_UNPROVEN) {
		res->mode = PROCWIDE_MODE_DIRECT_THEN_PARKED;
		e = settle_parked(req, res);
	}
	if (e) {
		char msg[400];
		bool no_ptrace = false;
		pid_t silent = e == -ETIMEDOUT ? procwide__first_silent(&no_ptrace) : 0;
		if (silent && no_ptrace)
			snprintf(msg, sizeof msg,
				 "procwide: thread %d did not answer signal %d and ptrace failed (%s) after the calling thread had run the call; killing the process so that no thread runs half-changed\n",
				 (int)silent, E.signo, E.why);
		else if (silent)
			snprintf(msg, sizeof msg,
				 "procwide: thread %d did not answer signal %d within the deadline after the calling thread had run the call; killing the process so that no thread runs half-changed\n",
				 (int)silent, E.signo);
		else
			snprintf(msg, sizeof msg,
				 "procwide: not every thread could be reached after the calling thread had run the call (%s); killing the process so that no thread runs half-changed\n",
				 e == -ETIMEDOUT ? "no progress within the deadline" : strerror(-e));
		procwide__die(msg);
	}
	if (procwide__inject_active())
		procwide__inject_end();
	procwide__finish(req, res);
}


int procwide__direct_prepare(const struct pw_request *req, struct pw_result *res)
{
	/* Tables sized from the last call's threads (a count read costs a
	 * system call; more threads grow the tables). */
	return procwide__prepare_for(req, res, known.n, 0);
}

void procwide__direct_after(bool ok)
{
	/* After a call where ptrace failed, the next one does not count on it:
	 * on the parked path an unreachable thread fails it, nothing changed. */
	direct_ok = ok && !E.inject_error;
	if (ok)
		procwide__keep_tids(&known, still_there);
	/* Only a call proven on the direct path leaves a count of created
	 * tasks, and only with the threads it knew kept as known. */
	stamp = ok && known.n && pending.valid ? pending : (struct forks_stamp){0};
	pending.valid = false;
}
