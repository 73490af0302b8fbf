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
	bool ran = st == PW_S_DONE || st == PW_S_INJ_DONE || st == PW_S_ZOMBIE ||
		   st == PW_S_KWORKER || st == PW_S_CALLER;
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

/* 0 when proven that every live thread has the change, 1 when not (yet). */
static int prove_complete(void)
{
	long count = procwide__taskdir_count();
	if (count < 0)
		return (int)count;
	/* A thread being reaped leaves the count (sig->nr_threads--, in
	 * __exit_signal) a moment before it leaves the list
	 * (__unhash_process), both under tasklist_lock held for writing by
	 * release_task.  A wait takes that lock for reading (__do_wait), so
	 * once it returns, every release that had begun when the count was
	 * read has ended, and such a thread is no longer listed below.  The
	 * wait names the caller itself, never a child: it reaps nothing and
	 * returns ECHILD at once. */
	siginfo_t si;
	if (pw_sys6(SYS_waitid, P_PID, procwide__shared.caller_tid, (long)&si,
		    WEXITED | WNOHANG | __WALL, 0, 0) != -ECHILD)
		return 1; /* not the wait meant: no proof */
	if (++E.proof == 0)
		E.proof = 1;
	uint32_t listed = 0;
	if (procwide__taskdir_sweep(count_known, &listed) != 0)
		return 1; /* no proof this time */
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
	for (unsigned proofs = 0;;) {
		int e = proofs == 0 && known.n ? procwide__sweep_from(&known) : procwide__sweep();
		if (e == -ENOSPC)
			e = grow_direct(req, res);
		if (!e)
			e = procwide__wait_arrivals(E.deadline, PW_FIRST_STALL_NS, false);
		if (e)
			return e;
		if ((e = prove_complete()) < 0)
			return e;
		/* A call too long for inode numbers to tell threads apart. */
		if (now_ns() - E.started >= procwide__ino_trust_ns())
			return PW_UNPROVEN;
		if (e == 0)
			return 0;
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
}
