/* The calling thread's side of the ptrace helper.
 *
 * The helper is started only when a thread has to be reached without a
 * signal: on the parked path during the gather, before anything has changed
 * (a helper started after a Landlock domain took effect would be more
 * restricted than threads it must trace, which Landlock forbids; and
 * threads given Landlock domains one by one can be traced by no later
 * helper, see inject.h); on the direct path after the caller has run the
 * call, which that path allows only for calls that leave ptrace possible
 * (src/direct_calls.c).  It is made with a raw clone() with no exit signal: the C library's fork() would take its
 * allocator locks, which a parked thread may hold, and an exit signal would
 * reach the application's SIGCHLD handler or waitpid(-1) loop.
 *
 * For one call it shares the process's memory (CLONE_VM): a copy of the
 * address space costs about 1 ms here for a process of 200 threads, to
 * make and to tear down, more than the whole injection of 100 threads
 * (README).  It runs on a stack and table this file maps (not inherited by
 * a fork()), unmapped once the helper has left.  Started on the parked
 * path, such a helper keeps the privileges of before the call and no
 * seccomp filter or Landlock domain the call adds; any thread that runs
 * application code after the call could write its stack.  So no thread
 * that ran the call runs its own code while it is alive: the caller blocks
 * every signal from the moment it has run the call, the engine ends the
 * helper before it lets the parked threads go (procwide__release), the
 * threads it holds are let go by its exit, after it has left the address
 * space (do_exit runs exit_mm before exit_ptrace), and one that cannot be
 * ended kills the process.  (On the direct path it is started after the
 * caller has run the call, with what the call took away.)  A policy's
 * session keeps its helper while such threads run: that one is a copy,
 * with memory of its own, and not dumpable, out of their reach.
 *
 * Before starting it, procwide checks what would make ptrace fail and says
 * which: a process that is not dumpable (procwide never lowers that
 * protection), Yama's ptrace_scope. */
#include "inject.h"
#include "internal.h"
#include "call.h"
#include "arch/x86_64/inject_arch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#define PW_WCLONE 0x80000000
#define PW_CLONE_VM 0x100
#define PW_CLONE_CHILD_CLEARTID 0x00200000
#define PW_CAP_SYS_PTRACE 19
/* The helper's stack: it needs under 8 KiB (a batch of requests). */
#define PW_HELPER_STACK (64u * 1024u)

static struct {
	int sock;
	pid_t helper;
	int yama_ptracer_set;
	pid_t owner; /* the process that started the helper */
	uint32_t cap; /* slots its table holds */
	int session; /* kept between calls until the session ends */
	bool split; /* started after the threads' Landlock domains split */
	void *mem;  /* its guard page, stack and state, if shared */
	size_t memlen;
	/* A helper that shares the memory: 1 until it has left the address
	 * space, when the kernel clears it and wakes it (CLONE_CHILD_CLEARTID:
	 * mm_release, as for pthread_join). */
	int in_mm;
} inj = {-1, 0, 0, 0, 0, 0, false, NULL, 0, 0};

/* Replies received and not yet taken (the helper sends them in batches). */
static struct {
	struct pw_inject_rep r[PW_INJECT_BATCH];
	uint32_t n, next;
} in;

/* Seize requests not yet sent: they go to the helper together, in one
 * message, when the window is full or an answer is awaited. */
static struct {
	struct pw_inject_req q[PW_INJECT_BATCH];
	uint32_t n;
} outq;

/* A forked child inherits the parent's helper state: forget it (the
 * socket is a copy; the helper is the parent's, never to be touched; its
 * memory is not in the child, MADV_DONTFORK, and the range may hold
 * something else by now). */
static void forget_if_forked(void)
{
	if (inj.helper > 0 && inj.owner != pw_getpid()) {
		close(inj.sock);
		inj.sock = -1;
		inj.helper = 0;
		inj.mem = NULL;
		inj.memlen = 0;
		inj.in_mm = 0;
		inj.yama_ptracer_set = 0;
		inj.session = 0;
		in.n = in.next = 0;
		outq.n = 0;
	}
}

/* Yama's scope, read when the library loads: /proc may be closed later. */
static int yama_scope = -1;

bool procwide__test_helper_dies;

__attribute__((constructor)) static void read_yama_scope(void)
{
	/* Tests only: a helper that dies with a batch of seizes half answered
	 * (read at load, like PROCWIDE_TEST_PROC_REVALIDATE; it can only make
	 * calls fail or the process die, never succeed wrongly). */
	const char *t = secure_getenv("PROCWIDE_TEST_HELPER_DIES");
	procwide__test_helper_dies = t && strcmp(t, "1") == 0;
	t = secure_getenv("PROCWIDE_TEST_TAIL_SLEEP");
	procwide__test_tail_sleep = t && strcmp(t, "1") == 0;
	int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* no Yama */
	char c = 0;
	if (read(fd, &c, 1) == 1 && c >= '0' && c <= '3')
		yama_scope = c - '0';
	close(fd);
}

/* errno names without strerror(): these messages are written while other
 * threads are parked, and strerror may take the locale's locks. */
static const char *errname(int e)
{
	switch (e < 0 ? -e : e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES (permission denied)";
	case ESRCH: return "ESRCH (no such thread)";
	case EBUSY: return "EBUSY";
	case EIO: return "EIO";
	case EINVAL: return "EINVAL (not supported)";
	case ENOSYS: return "ENOSYS (ptrace not available)";
	case ENOMEM: return "ENOMEM";
	case EAGAIN: return "EAGAIN";
	case EMFILE: return "EMFILE (too many open files)";
	case ENFILE: return "ENFILE";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return "an unexpected error";
	}
}

static int has_cap(int cap)
{
	struct {
		uint32_t version;
		int pid;
	} hdr = {0x20080522, 0};
	struct {
		uint32_t effective, permitted, inheritable;
	} data[2];
	if (pw_is_err(pw_sys3(SYS_capget, (long)&hdr, (long)data, 0)))
		return 0;
	return (data[cap / 32].effective >> (cap % 32)) & 1;
}

int procwide__inject_active(void)
{
	forget_if_forked();
	return inj.helper > 0;
}

int procwide__inject_shares_memory(void)
{
	return procwide__inject_active() && inj.mem != NULL;
}

/* Waits up to `ns` until the helper has left.  One that shares the memory:
 * until the kernel clears inj.in_mm as it leaves the address space (not
 * its socket: a fork() in another thread while the helper starts can give
 * a child a copy of the helper's end).  A copy: its end of the socket
 * closes as it exits (do_exit runs exit_files after exit_mm).  Not from
 * wait4, which a seccomp filter the call has just installed in this thread
 * might refuse.  1 once it has left. */
static int helper_left(uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	for (;;) {
		uint64_t t = now_ns();
		if (inj.mem && !__atomic_load_n(&inj.in_mm, __ATOMIC_ACQUIRE))
			return 1;
		if (t >= end)
			return 0;
		if (inj.mem) {
			/* The kernel's wake is not a private one. */
			uint64_t ns_left = end - t;
			struct timespec ts = {(time_t)(ns_left / 1000000000u),
					      (long)(ns_left % 1000000000u)};
			pw_sys6(SYS_futex, (long)&inj.in_mm, 0 /* FUTEX_WAIT */, 1, (long)&ts, 0, 0);
			continue;
		}
		struct pollfd p = {inj.sock, POLLIN, 0};
		int k = poll(&p, 1, (int)((end - t + 999999) / 1000000));
		if (k < 0 && errno != EINTR)
			return 0; /* cannot tell */
		if (k <= 0)
			continue;
		if (p.revents & (POLLHUP | POLLERR))
			return 1;
		struct pw_inject_rep r[8]; /* answers no one waits for */
		ssize_t n = recv(inj.sock, r, sizeof r, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
	}
}

/* Reaps the helper once it has left, without waiting for a debugger that
 * followed the clone and holds it: a zombie left unreaped is harmless. */
static void reap_helper(void)
{
	for (int i = 0; i < 1000; i++) {
		int st;
		long r = pw_sys6(SYS_wait4, inj.helper, (long)&st, PW_WCLONE | WNOHANG, 0, 0, 0);
		if (r != 0 && r != -EINTR)
			return;
		if (i < 100) {
			sched_yield();
		} else {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

/* Ends the helper: `exiting` when it has answered a release and exits by
 * itself. */
static void end_helper(bool exiting)
{
	if (inj.helper > 0) {
		/* SIGKILL even then: a helper stopped before its exit (SIGSTOP,
		 * a debugger that followed the clone) must still go. */
		long k = pw_sys3(SYS_kill, inj.helper, SIGKILL, 0);
		/* Refused: a call that changed this process's ids can leave it
		 * without the right to signal a helper started with the old
		 * ones (kill's credential check).  Our end shut for writing, a
		 * helper waiting for a request reads EOF, lets every thread
		 * go, and exits. */
		if (k != 0 && inj.sock >= 0)
			shutdown(inj.sock, SHUT_WR);
		/* Its memory is unmapped below, so it must have left first.
		 * A helper that can be neither signalled nor reached (stuck on
		 * a thread in uninterruptible sleep) is left to exit on its own
		 * if it is a copy: better a leak than a call that never returns.
		 * One that shares this process's memory cannot be left running
		 * (see the top of this file). */
		int left = inj.sock >= 0 &&
			   helper_left(k == 0 || exiting ? 10000000000ull : 2000000000ull);
		if (!left && inj.mem)
			procwide__die("procwide: the ptrace helper, which shares this process's memory with the privileges it had before the call, could not be ended; killing the process\n");
		if (left)
			reap_helper();
	}
	if (inj.mem)
		pw_sys3(SYS_munmap, (long)inj.mem, (long)inj.memlen, 0);
	inj.mem = NULL;
	inj.memlen = 0;
	if (inj.sock >= 0)
		close(inj.sock);
	if (inj.yama_ptracer_set)
		prctl(PR_SET_PTRACER, 0, 0, 0, 0);
	inj.sock = -1;
	inj.helper = 0;
	inj.yama_ptracer_set = 0;
	inj.session = 0; /* a helper gone ends its session: no other replaces it */
	in.n = in.next = 0;
	outq.n = 0;
}

static void kill_helper(void)
{
	end_helper(false);
}

/* The process whose threads have Landlock domains of their own (see
 * inject.h); 0 if none. */
static _Atomic pid_t split_domains;

void procwide__inject_split_domains(bool split)
{
	atomic_store(&split_domains, split ? pw_getpid() : 0);
}

static bool domains_split(void)
{
	pid_t p = atomic_load(&split_domains);
	return p && p == pw_getpid();
}

/* Why this process may not trace its own threads, as far as it can tell
 * before trying: Yama, or a non-dumpable process without CAP_SYS_PTRACE
 * (procwide never lowers that protection).  0, or -EPERM and `why'. */
static int ptrace_refused(char *why, size_t whysz)
{
	const char *r = NULL;
	if (yama_scope == 3)
		r = "Yama's ptrace_scope is 3: ptrace is disabled on this system";
	else if (yama_scope == 2 && !has_cap(PW_CAP_SYS_PTRACE))
		r = "Yama's ptrace_scope is 2 and the process lacks CAP_SYS_PTRACE";
	else if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1 && !has_cap(PW_CAP_SYS_PTRACE))
		r = "the process is not dumpable and lacks CAP_SYS_PTRACE "
		    "(procwide does not lower that protection)";
	if (!r)
		return 0;
	if (why)
		snprintf(why, whysz, "%s", r);
	return -EPERM;
}

int procwide__inject_possible(void)
{
	forget_if_forked();
	if (inj.helper > 0 && !inj.split)
		return 1; /* a session helper, started with the rights it needs */
	/* The helper inherits the caller's seccomp filters, which may forbid
	 * ptrace: no way to tell without trying. */
	return !domains_split() && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0 &&
	       ptrace_refused(NULL, 0) == 0;
}

/* The frames area of the return path (src/arch/x86_64/inject_arch.h): a
 * header, the list of slots the caller awaits, and a slot per thread slot
 * of the engine.  It is never unmapped: a thread that has stored its
 * result may still be on its way out of the stub, reading its frame, when
 * the call returns (the next call that finds it there lets it finish,
 * src/inject_helper.c).  A bigger one replaces it when the threads
 * multiply, and the old one stays mapped for the same reason.  A forked
 * child keeps its copy. */
static struct {
	struct pw_ret_hdr *hdr;
	uint32_t cap;
} frames;

/* The area for cap slots, or NULL (no memory: the return path is not
 * taken). */
static struct pw_ret_hdr *frames_for(uint32_t cap)
{
	if (frames.hdr && cap <= frames.cap)
		return frames.hdr;
	if (cap < 2 * frames.cap)
		cap = 2 * frames.cap;
	size_t len = pw_ret_head_size(cap) + (size_t)cap * sizeof(struct pw_ret_slot);
	/* Raw: see start_helper.  Pages are touched only for the threads
	 * that take the path (two each). */
	long m = pw_sys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pw_is_err(m))
		return frames.hdr && cap <= frames.cap ? frames.hdr : NULL;
	frames.hdr = (struct pw_ret_hdr *)m;
	frames.cap = cap;
	return frames.hdr;
}

static int start_helper(uint32_t cap, bool share, char *why, size_t whysz);

int procwide__inject_begin(uint32_t cap, uint64_t deadline, char *why, size_t whysz)
{
	(void)deadline;
	return start_helper(cap, true, why, whysz);
}

/* Starts the helper for a table of cap threads (or keeps the one there),
 * sharing this process's memory or as a copy (see the top of this file). */
static int start_helper(uint32_t cap, bool share, char *why, size_t whysz)
{
	forget_if_forked();
	/* A session (a copy) never takes over a helper that shares memory. */
	if (inj.helper > 0 && cap <= inj.cap && (share || !inj.mem))
		return 0;
	if (inj.helper > 0) {
		if (inj.session) {
			/* Not ENOSPC: to the engine that means "threads
			 * multiplied, start again with more room", which a
			 * session helper's table would never have. */
			snprintf(why, whysz, "more threads than the ptrace helper was started for");
			return -E2BIG;
		}
		kill_helper();
	}
	int refused = ptrace_refused(why, whysz);
	if (refused)
		return refused;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		int e = -errno;
		snprintf(why, whysz, "socketpair for the ptrace helper: %s", errname(e));
		return e;
	}
	pid_t parent = pw_getpid();
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)page + PW_HELPER_STACK + procwide__inject_helper_size(cap);
	/* Raw calls: musl's munmap and mmap wait for a lock that a thread
	 * parked by procwide may hold (__vm_wait). */
	long m = pw_sys6(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *mem = pw_is_err(m) ? NULL : (char *)m;
	long me = pw_is_err(m) ? m : pw_sys3(SYS_mprotect, m, page, PROT_NONE);
	if (!me && share)
		me = pw_sys3(SYS_madvise, m, (long)len, MADV_DONTFORK);
	if (me) {
		if (mem)
			pw_sys3(SYS_munmap, m, (long)len, 0);
		close(sv[0]);
		close(sv[1]);
		snprintf(why, whysz, "memory for the ptrace helper: %s", errname((int)me));
		return (int)me;
	}
	char *top = mem + page + PW_HELPER_STACK; /* the stack ends at its state */
	struct pw_ret_hdr *fr = share ? frames_for(cap) : NULL;
	void *helper = procwide__inject_helper_init(top, sv[1], parent, cap, share, fr,
						    fr ? frames.cap : 0);
	/* Every signal blocked from its first instruction: a handler of the
	 * application must never run in it (it would run on the helper's
	 * stack with this thread's TLS).  Exit signal 0: no SIGCHLD. */
	uint64_t all = ~0ULL, old;
	pw_rt_sigprocmask(SIG_SETMASK, &all, &old);
	inj.in_mm = share;
	long child = procwide__arch_clone_on_stack(share ? PW_CLONE_VM | PW_CLONE_CHILD_CLEARTID : 0,
						   top, procwide__inject_helper_main, helper,
						   share ? &inj.in_mm : NULL);
	pw_rt_sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pw_is_err(child))
		inj.in_mm = 0;
	if (pw_is_err(child) || !share) /* a copy has its own: ours goes */
		pw_sys3(SYS_munmap, m, (long)len, 0);
	if (pw_is_err(child)) {
		close(sv[0]);
		snprintf(why, whysz, "cannot start the ptrace helper: %s", errname((int)child));
		return (int)child;
	}
	inj.mem = share ? mem : NULL;
	inj.memlen = share ? len : 0;
	inj.sock = sv[0];
	inj.helper = (pid_t)child;
	inj.owner = parent;
	inj.cap = cap;
	inj.split = domains_split();
	if (yama_scope == 1) {
		/* Yama lets a process trace only its descendants unless the
		 * tracee names a tracer; the helper is our child.  Yama has no
		 * way to read the previous value back, so it is cleared after
		 * the call (documented in procwide_run(3)). */
		if (prctl(PR_SET_PTRACER, child, 0, 0, 0) != 0) {
			int e = -errno;
			kill_helper();
			snprintf(why, whysz, "prctl(PR_SET_PTRACER) for the ptrace helper: %s",
				 errname(e));
			return e;
		}
		inj.yama_ptracer_set = 1;
	}
	return 0;
}

static int send_msg(const struct pw_inject_req *q, uint32_t n)
{
	ssize_t len = (ssize_t)(n * sizeof *q);
	return send(inj.sock, q, (size_t)len, MSG_NOSIGNAL) == len ? 0 : -EPIPE;
}

static int flush_seizes(void)
{
	uint32_t n = outq.n;
	outq.n = 0;
	return n ? send_msg(outq.q, n) : 0;
}

static int send_req(const struct pw_inject_req *q)
{
	int e = flush_seizes();
	return e ? e : send_msg(q, 1);
}

/* One reply, or -ETIMEDOUT / -EPIPE (the helper died). */
static int recv_rep(struct pw_inject_rep *r, uint64_t deadline)
{
	if (in.next < in.n) {
		*r = in.r[in.next++];
		return 0;
	}
	for (;;) {
		uint64_t t = now_ns();
		uint64_t left_ms = t >= deadline ? 0 : (deadline - t + 999999) / 1000000;
		int ms = deadline == UINT64_MAX ? -1 : left_ms > 60000 ? 60000 : (int)left_ms;
		struct pollfd p = {inj.sock, POLLIN, 0};
		int k = poll(&p, 1, ms);
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0) {
			if (now_ns() >= deadline)
				return -ETIMEDOUT;
			continue; /* a long deadline is waited for in slices */
		}
		ssize_t n = recv(inj.sock, in.r, sizeof in.r, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || n % (ssize_t)sizeof in.r[0])
			return -EPIPE;
		in.n = (uint32_t)(n / (ssize_t)sizeof in.r[0]);
		in.next = 1;
		*r = in.r[0];
		return 0;
	}
}

static const char *stage_name(int stage)
{
	switch (stage) {
	case PW_STAGE_SEIZE: return "PTRACE_SEIZE";
	case PW_STAGE_STOP: return "PTRACE_INTERRUPT";
	case PW_STAGE_TGID: return "checking that it belongs to this process";
	case PW_STAGE_REGS: return "PTRACE_GETREGS";
	case PW_STAGE_RUN: return "running the call";
	case PW_STAGE_ARCH: return "reaching a thread that runs 32-bit code";
	default: return "ptrace";
	}
}

int procwide__inject_send_seize(uint32_t idx, pid_t tid)
{
	outq.q[outq.n++] =
		(struct pw_inject_req){.op = PW_INJ_SEIZE, .idx = idx, .tid = tid, .pid = pw_getpid()};
	int e = outq.n == PW_INJECT_BATCH ? flush_seizes() : 0;
	if (e)
		kill_helper();
	return e;
}

int procwide__inject_recv_seize(uint32_t *idx, uint64_t deadline, char *why, size_t whysz)
{
	struct pw_inject_rep r;
	/* The queued requests go out only when no answer is waiting: the
	 * helper stops a window of threads together. */
	int e = in.next == in.n ? flush_seizes() : 0;
	if (!e)
		e = recv_rep(&r, deadline);
	if (e) {
		kill_helper();
		snprintf(why, whysz, "the ptrace helper %s",
			 e == -ETIMEDOUT ? "did not answer in time" : "died (a seccomp filter may forbid ptrace)");
		*idx = UINT32_MAX;
		return e;
	}
	*idx = r.idx;
	if (r.err == 0 || r.err == -ESRCH || r.err == PW_INJ_KERNEL_WORKER)
		return r.err;
	char tracer[32] = "";
	if (r.err == -EPERM && r.stage == PW_STAGE_SEIZE) {
		/* Already traced (a debugger), or a seccomp or LSM policy
		 * forbids it: say what can be told from here. */
		int t = procwide__task_tracer(r.tid);
		if (t > 0)
			snprintf(tracer, sizeof tracer, "traced by pid %d", t);
	}
	snprintf(why, whysz, "%s failed: %s%s%s%s", stage_name(r.stage), errname(r.err),
		 tracer[0] ? " (already " : "", tracer,
		 tracer[0]		     ? ")"
		 : r.err == -EPERM && domains_split()
			 ? " (each thread has its own Landlock domain; TSYNC needs Linux 7.0)"
		 : r.err == -EPERM ? " (a seccomp filter or security module forbids it)"
				   : "");
	return r.err;
}

static int run_req(const struct pw_inject_req *q, uint64_t deadline,
		   void (*fn)(uint32_t idx, long result, int err, void *ctx), void *ctx)
{
	if (frames.hdr)
		frames.hdr->nawaited = 0;
	int e = send_req(q);
	for (;;) {
		struct pw_inject_rep r;
		if (!e)
			e = recv_rep(&r, deadline);
		if (e)
			return e;
		if (r.last)
			return 0;
		if (!r.deferred)
			fn(r.idx, r.result, r.err, ctx);
		else if (frames.hdr && r.idx < frames.cap && frames.hdr->nawaited < frames.cap)
			frames.hdr->awaited[frames.hdr->nawaited++] = r.idx;
		else
			return -EIO; /* the helper had no such slot */
	}
}

/* Which of the signals whose disposition the application cannot change
 * while the call runs have no handler or one with SA_RESTART
 * (*restartable), and which have a handler (*handled): what decides
 * whether such a signal, coming while a thread is held, would make its
 * call fail with EINTR.  Those signals are the C library's own (from 32
 * up to SIGRTMIN: glibc's 32 and 33, musl's 32 to 34, which their
 * sigaction refuses) and procwide's, with its own handler.  Any other signal a thread's mask lets through could have its
 * disposition changed, between this reading and the thread's return, by a
 * thread that has already made the call: the thread keeps the stops. */
static void read_dispositions(uint64_t *restartable, uint64_t *handled)
{
	*restartable = *handled = 0;
	int ours = procwide__shared.signo, libc_end = SIGRTMIN;
	for (int sig = 32; sig <= 64; sig++) {
		if (sig >= libc_end && sig != ours)
			continue;
		/* Read as a handler without SA_RESTART unless the kernel says
		 * otherwise: refused or unread, the thread keeps the stops. */
		struct pw_ksigaction a = {.handler = (void *)procwide__handler, .flags = 0};
		if (pw_rt_sigaction(sig, NULL, &a) != 0)
			continue;
		if (sig == ours && a.handler != (void *)procwide__handler)
			continue;
		uint64_t bit = 1ULL << (sig - 1);
		bool none = a.handler == (void *)SIG_DFL || a.handler == (void *)SIG_IGN;
		if (none || (a.flags & SA_RESTART))
			*restartable |= bit;
		if (!none)
			*handled |= bit;
	}
}

int procwide__inject_run_all(long nr, const long args[6], long expected, int kill_on_mismatch,
			     pid_t caller, uint64_t deadline,
			     void (*fn)(uint32_t idx, long result, int err, void *ctx), void *ctx)
{
	struct pw_inject_req q = {.op = PW_INJ_RUN_ALL,
				  .pid = pw_getpid(),
				  .nr = nr,
				  .may_return = 1,
				  .kill_on_mismatch = kill_on_mismatch,
				  .caller = caller,
				  .expected = expected};
	read_dispositions(&q.restartable, &q.handled);
	memcpy(q.args, args, sizeof q.args);
	return run_req(&q, deadline, fn, ctx);
}

int procwide__inject_collect(uint64_t patience,
			     void (*fn)(uint32_t idx, long result, int err, void *ctx), void *ctx)
{
	struct pw_ret_hdr *h = frames.hdr;
	if (!h || !h->nawaited)
		return 0;
	pid_t pid = pw_getpid();
	uint64_t slice = 200000; /* then a look at the threads still out */
	uint64_t deadline = patience == UINT64_MAX ? UINT64_MAX : now_ns() + patience;
	for (;;) {
		uint32_t seen = __atomic_load_n(&h->count, __ATOMIC_ACQUIRE);
		uint32_t left = 0, before = h->nawaited;
		for (uint32_t k = 0; k < before; k++) {
			uint32_t i = h->awaited[k]; /* < frames.cap: run_req checked */
			struct pw_ret_slot *s = pw_ret_slot_at(h, frames.cap, i);
			if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
				fn(i, s->result, 0, ctx);
			else
				h->awaited[left++] = i;
		}
		h->nawaited = left;
		if (!left)
			return 0;
		uint64_t t = now_ns();
		if (left < before && patience != UINT64_MAX)
			deadline = t + patience; /* progress: as procwide__release */
		if (t >= deadline) {
			/* Give up only if none of them waits for a CPU. */
			bool runnable = false;
			for (uint32_t k = 0; k < left && !runnable; k++)
				runnable = procwide__task_state(
						   pw_ret_slot_at(h, frames.cap, h->awaited[k])->tid) == 'R';
			if (!runnable)
				return -ETIMEDOUT;
			deadline = t + patience;
		}
		uint64_t ns = deadline - t < slice ? deadline - t : slice;
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
		if (pw_futex_wait(&h->count, seen, &ts) != -ETIMEDOUT)
			continue;
		/* A thread that ended before running the stub never will. */
		for (uint32_t k = 0; k < h->nawaited; k++) {
			uint32_t i = h->awaited[k];
			struct pw_ret_slot *s = pw_ret_slot_at(h, frames.cap, i);
			if (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) &&
			    pw_tgkill(pid, s->tid, 0) == -ESRCH) {
				fn(i, 0, -ESRCH, ctx);
				h->awaited[k--] = h->awaited[--h->nawaited];
			}
		}
		if (slice < 64000000)
			slice *= 2;
	}
}

/* Asks the helper to let every thread go and stay; kills it if it fails
 * (a dying tracer detaches every thread it holds). */
static int detach_held(uint64_t deadline)
{
	struct pw_inject_req q = {.op = PW_INJ_DETACH, .pid = pw_getpid()};
	struct pw_inject_rep r;
	int e = send_req(&q);
	if (!e)
		e = recv_rep(&r, deadline);
	if (e)
		kill_helper();
	return e;
}

int procwide__inject_run_detach(long nr, const long args[6], uint64_t deadline,
				void (*fn)(uint32_t idx, long result, int err, void *ctx), void *ctx)
{
	/* No return path: the threads go on while the helper stays. */
	struct pw_inject_req q = {.op = PW_INJ_RUN_ALL, .pid = pw_getpid(), .nr = nr};
	memcpy(q.args, args, sizeof q.args);
	int e = run_req(&q, deadline, fn, ctx);
	if (e)
		kill_helper();
	return e ? e : detach_held(deadline);
}

void procwide__inject_end(void)
{
	if (inj.helper <= 0)
		return;
	if (inj.session) { /* keep the helper for the next call */
		detach_held(now_ns() + 2000000000ull);
		return;
	}
	struct pw_inject_req q = {.op = PW_INJ_RELEASE, .pid = pw_getpid()};
	struct pw_inject_rep r;
	/* Detaching is quick; should the helper not answer, killing it
	 * detaches every thread it holds (the kernel does that for a dying
	 * tracer) with the registers it already restored. */
	end_helper(send_req(&q) == 0 && recv_rep(&r, now_ns() + 2000000000ull) == 0 && r.last);
}

void procwide__inject_abort(void)
{
	forget_if_forked();
	inj.session = 0;
	kill_helper();
}

int procwide__inject_session_begin(uint32_t cap, char *why, size_t whysz)
{
	int e = start_helper(cap, false, why, whysz);
	if (!e)
		inj.session = 1;
	return e;
}

void procwide__inject_session_end(void)
{
	forget_if_forked();
	inj.session = 0;
	procwide__inject_end();
}
