/* SPDX-License-Identifier: MIT */
/*
 * procwide_audit(): every per-thread field it compares, made to differ in
 * exactly one thread with the raw per-thread system call, and the thread
 * list under churn, missing processes and /proc access rules.
 */
#include "harness.h"
#include "procwide.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_seccomp
#define SYS_seccomp 317 /* x86_64 */
#endif
#define SECCOMP_SET_MODE_FILTER_ 1
#define SECCOMP_RET_ALLOW_ 0x7fff0000u
#define BPF_RET_K_ 0x06 /* BPF_RET | BPF_K */
#define CAP_SETPCAP_ 8
#define CAP_NET_RAW_ 13
#define CAP_SYS_ADMIN_ 21
#define CAP_SETUID_ 7

#define BIT(f) (1u << (f))
#define ALL_FIELDS (BIT(PROCWIDE_AUDIT_NFIELDS) - 1)

/* ---- a thread that changes its own state, then waits ---------------------- */

struct odd {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int (*action)(void); /* runs in the thread: 0 or -errno */
	int result;
	pid_t tid;
	bool done, stop;
	pthread_t th;
};

static void *odd_main(void *arg)
{
	struct odd *o = arg;
	int r = o->action ? o->action() : 0;

	pthread_mutex_lock(&o->mu);
	o->tid = pw_gettid();
	o->result = r;
	o->done = true;
	pthread_cond_broadcast(&o->cv);
	while (!o->stop)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* Start a thread that runs action; returns once it has run. */
static struct odd *odd_start(int (*action)(void))
{
	struct odd *o = calloc(1, sizeof *o);
	PW_CHECK(o, "calloc");
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->action = action;
	PW_EQ_LONG(pthread_create(&o->th, NULL, odd_main, o), 0);
	pthread_mutex_lock(&o->mu);
	while (!o->done)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
	return o;
}

static int act_nnp(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ? -errno : 0;
}

/* An allow-all filter, without TSYNC: this thread only.  Without
 * CAP_SYS_ADMIN the kernel requires no_new_privs first, in this thread. */
static int act_seccomp(void)
{
	struct { uint16_t code; uint8_t jt, jf; uint32_t k; } insn = {
		BPF_RET_K_, 0, 0, SECCOMP_RET_ALLOW_
	};
	struct { unsigned short len; void *filter; } prog = { 1, &insn };

	if (!pw_have_cap(CAP_SYS_ADMIN_) && act_nnp())
		return -errno;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER_, 0, &prog) ? -errno : 0;
}

static int act_capbset_drop(void)
{
	return prctl(PR_CAPBSET_DROP, CAP_NET_RAW_, 0, 0, 0) ? -errno : 0;
}

/* The raw system call: glibc's and musl's setresuid() would change every
 * thread. */
static int act_setresuid(void)
{
	return syscall(SYS_setresuid, 65534, 65534, 65534) ? -errno : 0;
}

static uint64_t status_hex(pid_t tid, const char *field)
{
	char v[64];
	PW_CHECK(pw_task_status(tid, field, v, sizeof v), "%s of %d", field, (int)tid);
	return strtoull(v, NULL, 16);
}

static size_t index_of(const struct procwide_audit *a, pid_t tid)
{
	for (size_t i = 0; i < procwide_audit_nthreads(a); i++)
		if (procwide_audit_thread(a, i)->tid == tid)
			return i;
	pw_fail(__FILE__, __LINE__, "index_of", "tid %d not in the audit", (int)tid);
}

/*
 * The audit of this process, with `odd` (one thread) differing in exactly
 * the fields of `expect`: every other field uniform, the odd thread alone in
 * class 1, everyone else in class 0.
 */
static struct procwide_audit *check_divergence(pid_t odd, uint32_t expect,
					       size_t nthreads)
{
	struct procwide_audit *a = NULL;
	size_t oi, k = 0;

	PW_EQ_LONG(procwide_audit(0, &a), 0);
	PW_EQ_LONG(procwide_audit_pid(a), getpid());
	PW_EQ_LONG(procwide_audit_nthreads(a), nthreads);
	oi = index_of(a, odd);
	for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++) {
		bool diverges = expect & BIT(f);
		const char *name = procwide_audit_field_name(f);
		PW_CHECK(procwide_audit_nvalues(a, f) == (diverges ? 2u : 1u),
			 "%s: %zu values", name, procwide_audit_nvalues(a, f));
		for (size_t i = 0; i < nthreads; i++) {
			int want = diverges && i == oi ? 1 : 0;
			PW_CHECK(procwide_audit_value_class(a, f, i) == want,
				 "%s: thread %zu class %d, want %d", name, i,
				 procwide_audit_value_class(a, f, i), want);
		}
		k += diverges;
	}
	PW_EQ_LONG(procwide_audit_ndivergent(a), k);
	return a;
}

/* ---- cases ---------------------------------------------------------------- */

static void uniform_idle(void)
{
	struct pw_idle *idle = pw_idle_start(4);
	struct procwide_audit *a = NULL;
	pid_t tids[16];
	size_t n;

	PW_CHECK(idle, "pw_idle_start");
	PW_EQ_LONG(pw_list_tids(tids, 16), 5);
	/* A new thread runs ('R') until it waits: let them all sleep. */
	for (int tries = 0;; tries++) {
		size_t sleeping = 0;
		struct timespec ts = { 0, 1000000 };
		for (size_t j = 0; j < 5; j++)
			sleeping += pw_task_state(tids[j]) == 'S';
		if (sleeping == 4)
			break;
		PW_CHECK(tries < 5000, "idle threads never slept");
		nanosleep(&ts, NULL);
	}
	PW_EQ_LONG(procwide_audit(0, &a), 0);
	n = procwide_audit_nthreads(a);
	PW_EQ_LONG(n, 5);
	PW_EQ_LONG(procwide_audit_ndivergent(a), 0);
	for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++)
		PW_EQ_LONG(procwide_audit_nvalues(a, f), 1);
	for (size_t i = 0; i < n; i++) {
		const struct procwide_audit_thread *t = procwide_audit_thread(a, i);
		char comm[64], v[64];
		bool listed = false;

		for (size_t j = 0; j < 5; j++)
			listed |= tids[j] == t->tid;
		PW_CHECK(listed, "tid %d is not a thread of this process", (int)t->tid);
		if (i)
			PW_CHECK(procwide_audit_thread(a, i - 1)->tid < t->tid, "TID order");
		PW_EQ_LONG(t->size, sizeof *t);
		for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++)
			PW_EQ_LONG(procwide_audit_value_class(a, f, i), 0);
		/* Each value as the harness reads /proc itself. */
		PW_CHECK(pw_task_comm(t->tid, comm, sizeof comm), "comm");
		PW_CHECK(strcmp(comm, t->name) == 0, "name %s != %s", t->name, comm);
		PW_CHECK(t->tid == pw_gettid() ? t->state == 'R' : t->state == 'S',
			 "state %c of %d", t->state, (int)t->tid);
		PW_CHECK(t->cap_eff == status_hex(t->tid, "CapEff"), "CapEff");
		PW_CHECK(t->cap_prm == status_hex(t->tid, "CapPrm"), "CapPrm");
		PW_CHECK(t->cap_inh == status_hex(t->tid, "CapInh"), "CapInh");
		PW_CHECK(t->cap_bnd == status_hex(t->tid, "CapBnd"), "CapBnd");
		PW_CHECK(t->cap_amb == status_hex(t->tid, "CapAmb"), "CapAmb");
		PW_EQ_LONG(t->uid[0], getuid());
		PW_EQ_LONG(t->uid[1], geteuid());
		PW_EQ_LONG(t->gid[0], getgid());
		PW_EQ_LONG(t->gid[1], getegid());
		PW_EQ_LONG(t->ngroups, getgroups(0, NULL));
		PW_EQ_LONG(t->no_new_privs, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
		PW_EQ_LONG(t->seccomp, 0);
		PW_EQ_LONG(t->seccomp_filters, 0);
		PW_CHECK(pw_task_status(t->tid, "Speculation_Store_Bypass", v, sizeof v),
			 "Speculation_Store_Bypass");
		PW_CHECK(strcmp(v, t->spec_store_bypass) == 0, "%s", t->spec_store_bypass);
		PW_CHECK(t->present == ALL_FIELDS, "present %#x", t->present);
	}
	procwide_audit_free(a);
	pw_idle_stop(idle);
}

static void divergent_no_new_privs(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	struct odd *o = odd_start(act_nnp);
	struct procwide_audit *a;

	PW_EQ_LONG(o->result, 0);
	a = check_divergence(o->tid, BIT(PROCWIDE_AUDIT_NO_NEW_PRIVS), 4);
	PW_EQ_LONG(procwide_audit_thread(a, index_of(a, o->tid))->no_new_privs, 1);
	PW_EQ_LONG(procwide_audit_thread(a, index_of(a, getpid()))->no_new_privs, 0);
	procwide_audit_free(a);
	(void)idle;
}

static void divergent_seccomp(void)
{
	struct pw_idle *idle = pw_idle_start(2);
	bool admin = pw_have_cap(CAP_SYS_ADMIN_);
	struct odd *o = odd_start(act_seccomp);
	uint32_t expect = BIT(PROCWIDE_AUDIT_SECCOMP) | BIT(PROCWIDE_AUDIT_SECCOMP_FILTERS);
	const struct procwide_audit_thread *t;
	struct procwide_audit *a;

	PW_EQ_LONG(o->result, 0);
	/* Without CAP_SYS_ADMIN the thread had to set no_new_privs too. */
	if (!admin)
		expect |= BIT(PROCWIDE_AUDIT_NO_NEW_PRIVS);
	a = check_divergence(o->tid, expect, 4);
	t = procwide_audit_thread(a, index_of(a, o->tid));
	PW_EQ_LONG(t->seccomp, 2);
	PW_EQ_LONG(t->seccomp_filters, 1);
	PW_EQ_LONG(t->no_new_privs, admin ? 0 : 1);
	t = procwide_audit_thread(a, index_of(a, getpid()));
	PW_EQ_LONG(t->seccomp, 0);
	PW_EQ_LONG(t->seccomp_filters, 0);
	procwide_audit_free(a);
	(void)idle;
}

static void divergent_cap_bnd(void)
{
	uint64_t bnd = status_hex(pw_gettid(), "CapBnd");
	struct pw_idle *idle;
	struct procwide_audit *a;
	struct odd *o;

	if (!pw_have_cap(CAP_SETPCAP_))
		pw_skip("PR_CAPBSET_DROP needs CAP_SETPCAP (run as root)");
	if (!(bnd >> CAP_NET_RAW_ & 1))
		pw_skip("CAP_NET_RAW is not in the bounding set already");
	idle = pw_idle_start(2);
	o = odd_start(act_capbset_drop);
	PW_EQ_LONG(o->result, 0);
	a = check_divergence(o->tid, BIT(PROCWIDE_AUDIT_CAP_BND), 4);
	PW_CHECK(procwide_audit_thread(a, index_of(a, o->tid))->cap_bnd ==
			 (bnd & ~(1ull << CAP_NET_RAW_)), "odd CapBnd");
	PW_CHECK(procwide_audit_thread(a, index_of(a, getpid()))->cap_bnd == bnd,
		 "main CapBnd");
	procwide_audit_free(a);
	(void)idle;
}

static void divergent_uid(void)
{
	uint64_t eff = status_hex(pw_gettid(), "CapEff");
	uint64_t prm = status_hex(pw_gettid(), "CapPrm");
	uint64_t amb = status_hex(pw_gettid(), "CapAmb");
	uint32_t expect = BIT(PROCWIDE_AUDIT_UID);
	const struct procwide_audit_thread *t;
	struct pw_idle *idle;
	struct procwide_audit *a;
	struct odd *o;

	if (geteuid() != 0 || !pw_have_cap(CAP_SETUID_))
		pw_skip("setresuid to another user needs root with CAP_SETUID");
	idle = pw_idle_start(2);
	o = odd_start(act_setresuid);
	PW_EQ_LONG(o->result, 0);
	/* Leaving uid 0 entirely clears the permitted, effective and ambient
	 * sets (capabilities(7), no SECBIT_KEEP_CAPS): those differ too when
	 * they were not already empty. */
	if (eff)
		expect |= BIT(PROCWIDE_AUDIT_CAP_EFF);
	if (prm)
		expect |= BIT(PROCWIDE_AUDIT_CAP_PRM);
	if (amb)
		expect |= BIT(PROCWIDE_AUDIT_CAP_AMB);
	a = check_divergence(o->tid, expect, 4);
	t = procwide_audit_thread(a, index_of(a, o->tid));
	for (int i = 0; i < 4; i++)
		PW_EQ_LONG(t->uid[i], 65534);
	PW_CHECK(t->cap_eff == 0 && t->cap_prm == 0, "caps of the odd thread");
	t = procwide_audit_thread(a, index_of(a, getpid()));
	for (int i = 0; i < 4; i++)
		PW_EQ_LONG(t->uid[i], 0);
	procwide_audit_free(a);
	(void)idle;
}

/* Two threads, one each way: the main thread's value is the majority. */
static void tie_goes_to_main_thread(void)
{
	struct odd *o = odd_start(act_nnp);
	struct procwide_audit *a;

	PW_EQ_LONG(o->result, 0);
	a = check_divergence(o->tid, BIT(PROCWIDE_AUDIT_NO_NEW_PRIVS), 2);
	PW_EQ_LONG(procwide_audit_value_class(a, PROCWIDE_AUDIT_NO_NEW_PRIVS,
					      index_of(a, getpid())), 0);
	procwide_audit_free(a);
}

/* The majority is a count, not the main thread: two of three threads set
 * no_new_privs, so the main thread is the one that differs. */
static void majority_not_main_thread(void)
{
	struct odd *o1 = odd_start(act_nnp), *o2 = odd_start(act_nnp);
	struct procwide_audit *a = NULL;
	int f = PROCWIDE_AUDIT_NO_NEW_PRIVS;

	PW_EQ_LONG(o1->result, 0);
	PW_EQ_LONG(o2->result, 0);
	PW_EQ_LONG(procwide_audit(0, &a), 0);
	PW_EQ_LONG(procwide_audit_nthreads(a), 3);
	PW_EQ_LONG(procwide_audit_ndivergent(a), 1);
	PW_EQ_LONG(procwide_audit_nvalues(a, f), 2);
	PW_EQ_LONG(procwide_audit_value_class(a, f, index_of(a, getpid())), 1);
	PW_EQ_LONG(procwide_audit_value_class(a, f, index_of(a, o1->tid)), 0);
	PW_EQ_LONG(procwide_audit_value_class(a, f, index_of(a, o2->tid)), 0);
	procwide_audit_free(a);
}

/* ---- the thread list under churn -------------------------------------------- */

/* Threads exit while the audit reads: never an error, never a missing
 * thread that lives throughout, never a thread of another process. */
static void vanishing_threads(void)
{
	struct pw_idle *idle = pw_idle_start(3);
	pid_t stable[8];
	size_t nstable = pw_list_tids(stable, 8);
	size_t max_seen = 0;

	PW_EQ_LONG(nstable, 4);
	struct pw_churn *churn = pw_churn_start(2);
	PW_CHECK(churn != NULL, "churn");
	for (int round = 0; round < 400; round++) {
		struct procwide_audit *a = NULL;
		size_t n;
		int rc = procwide_audit(0, &a);

		PW_CHECK(rc == 0, "round %d: %d (%s)", round, rc, strerror(-rc));
		n = procwide_audit_nthreads(a);
		PW_CHECK(n >= nstable + 2, "round %d: %zu threads", round, n);
		if (n > max_seen)
			max_seen = n;
		for (size_t j = 0; j < nstable; j++)
			(void)index_of(a, stable[j]);
		procwide_audit_free(a);
	}
	pw_churn_stop(churn);
	/* The churn really overlapped the audits. */
	PW_CHECK(max_seen > nstable + 2, "no short-lived thread was ever seen");
	pw_idle_stop(idle);
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void *exit_at_gate(void *arg)
{
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return arg;
}

/*
 * readdir() of /proc/PID/task skips live threads while many others exit
 * (kernel-notes: 6-11 % of scans with 300 exiting threads): the stable
 * threads, listed after the exiting ones, must be in every audit all the
 * same.  300 threads are released at once, and audits run while they exit.
 */
static void mass_exit_keeps_stable_threads(void)
{
	enum { NEXIT = 300, NSTABLE = 20, ROUNDS = 30 };
	pid_t stable[NSTABLE + 1];
	struct pw_idle *idle = NULL;
	size_t nstable = 0, audits = 0;

	for (int round = 0; round < ROUNDS; round++) {
		pthread_t th[NEXIT];
		pthread_attr_t attr;
		int n = 0;

		gate_open = 0;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		for (; n < NEXIT; n++)
			if (pthread_create(&th[n], &attr, exit_at_gate, NULL))
				break;
		pthread_attr_destroy(&attr);
		PW_CHECK(n == NEXIT, "only %d threads", n);
		if (round == 0) {
			/* Started after the first exiting batch: higher TIDs,
			 * so readdir reaches them after threads that exit. */
			pid_t all[NEXIT + NSTABLE + 8];
			size_t m;
			idle = pw_idle_start(NSTABLE);
			PW_CHECK(idle, "idle");
			m = pw_list_tids(all, NEXIT + NSTABLE + 8);
			PW_EQ_LONG(m, NEXIT + NSTABLE + 1);
			stable[nstable++] = getpid();
			for (size_t j = m - NSTABLE; j < m; j++)
				stable[nstable++] = all[j];
		}
		pthread_mutex_lock(&gate_mu);
		gate_open = 1;
		pthread_cond_broadcast(&gate_cv);
		pthread_mutex_unlock(&gate_mu);
		/* Audit until every exiting thread is gone. */
		for (;;) {
			struct procwide_audit *a = NULL;
			int rc = procwide_audit(0, &a);
			size_t nt;
			PW_CHECK(rc == 0, "round %d: %d (%s)", round, rc, strerror(-rc));
			for (size_t j = 0; j < nstable; j++)
				(void)index_of(a, stable[j]);
			nt = procwide_audit_nthreads(a);
			procwide_audit_free(a);
			audits++;
			if (nt == nstable)
				break;
		}
		for (int i = 0; i < n; i++)
			pthread_join(th[i], NULL);
	}
	pw_diag("%zu audits while threads exited", audits);
	pw_idle_stop(idle);
}

/* ---- other processes ---------------------------------------------------------- */

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A child with `extra` more threads; with leader_exits its main thread
 * calls pthread_exit() (a zombie leader that stays listed). */
static pid_t spawn(int extra, bool leader_exits)
{
	int p[2];
	char c;
	pid_t pid;

	PW_EQ_LONG(pipe(p), 0);
	pid = fork();
	PW_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		pthread_t th;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int i = 0; i < extra; i++)
			if (pthread_create(&th, NULL, sleeper, NULL))
				_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		if (leader_exits)
			pthread_exit(NULL);
		sleeper(NULL);
	}
	close(p[1]);
	PW_EQ_LONG(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static void other_process(void)
{
	pid_t child = spawn(2, false);
	struct procwide_audit *a = NULL;

	PW_EQ_LONG(procwide_audit(child, &a), 0);
	PW_EQ_LONG(procwide_audit_pid(a), child);
	PW_EQ_LONG(procwide_audit_nthreads(a), 3);
	PW_EQ_LONG(procwide_audit_thread(a, 0)->tid, child);
	PW_EQ_LONG(procwide_audit_ndivergent(a), 0);
	procwide_audit_free(a);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* A TID names the process it belongs to. */
static void tid_names_its_process(void)
{
	struct odd *o = odd_start(NULL);
	struct procwide_audit *a = NULL;

	PW_EQ_LONG(procwide_audit(o->tid, &a), 0);
	PW_EQ_LONG(procwide_audit_pid(a), getpid());
	PW_EQ_LONG(procwide_audit_nthreads(a), 2);
	procwide_audit_free(a);
}

static void zombie_leader(void)
{
	pid_t child = spawn(2, true);
	struct procwide_audit *a = NULL;
	struct timespec ts = { 0, 1000000 };
	int tries = 0;

	/* The leader turns zombie only after its pthread_exit() ran. */
	for (char st = 0; st != 'Z'; nanosleep(&ts, NULL)) {
		PW_CHECK(tries++ < 5000, "the main thread never exited");
		PW_EQ_LONG(procwide_audit(child, &a), 0);
		st = procwide_audit_thread(a, 0)->state;
		procwide_audit_free(a);
		a = NULL;
	}
	PW_EQ_LONG(procwide_audit(child, &a), 0);
	PW_EQ_LONG(procwide_audit_nthreads(a), 3);
	PW_EQ_LONG(procwide_audit_thread(a, 0)->tid, child);
	PW_EQ_LONG(procwide_audit_thread(a, 0)->state, 'Z');
	PW_EQ_LONG(procwide_audit_ndivergent(a), 0);
	procwide_audit_free(a);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* A whole process that exited and was not reaped: one zombie thread. */
static void zombie_process(void)
{
	pid_t child = fork();
	struct procwide_audit *a = NULL;
	siginfo_t si;

	PW_CHECK(child >= 0, "fork");
	if (child == 0)
		_exit(0);
	PW_EQ_LONG(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
	PW_EQ_LONG(procwide_audit(child, &a), 0);
	PW_EQ_LONG(procwide_audit_nthreads(a), 1);
	PW_EQ_LONG(procwide_audit_thread(a, 0)->state, 'Z');
	procwide_audit_free(a);
	waitpid(child, NULL, 0);
}

static void no_such_process(void)
{
	struct procwide_audit *a = (struct procwide_audit *)&a;
	pid_t child = fork();

	PW_CHECK(child >= 0, "fork");
	if (child == 0)
		_exit(0);
	PW_EQ_LONG(waitpid(child, NULL, 0), child);
	/* Reaped: the PID is free (reuse within microseconds would need
	 * pid_max forks). */
	PW_EQ_LONG(procwide_audit(child, &a), -ESRCH);
	PW_EQ_LONG(procwide_audit(0x7ffffff0, &a), -ESRCH); /* > PID_MAX_LIMIT */
	PW_CHECK(a == (struct procwide_audit *)&a, "*out changed on error");
}

static void bad_arguments(void)
{
	struct procwide_audit *a = (struct procwide_audit *)&a;
	static const char *const names[PROCWIDE_AUDIT_NFIELDS] = {
		"no_new_privs", "seccomp", "seccomp_filters", "uid", "gid",
		"groups", "cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb",
		"speculation.store_bypass", "speculation.indirect_branch",
	};

	PW_EQ_LONG(procwide_audit(-1, &a), -EINVAL);
	PW_EQ_LONG(procwide_audit(-2147483647 - 1, &a), -EINVAL);
	PW_CHECK(a == (struct procwide_audit *)&a, "*out changed on error");
	PW_EQ_LONG(procwide_audit(0, NULL), -EINVAL);
	PW_EQ_LONG(procwide_audit(getpid(), NULL), -EINVAL);

	for (int f = 0; f < PROCWIDE_AUDIT_NFIELDS; f++)
		PW_CHECK(strcmp(procwide_audit_field_name(f), names[f]) == 0, "name %d", f);
	PW_CHECK(procwide_audit_field_name(-1) == NULL, "name -1");
	PW_CHECK(procwide_audit_field_name(PROCWIDE_AUDIT_NFIELDS) == NULL, "name N");

	PW_EQ_LONG(procwide_audit(0, &a), 0);
	PW_EQ_LONG(procwide_audit_nthreads(a), 1);
	PW_CHECK(procwide_audit_thread(a, 0) != NULL, "thread 0");
	PW_CHECK(procwide_audit_thread(a, 1) == NULL, "thread 1");
	PW_CHECK(procwide_audit_thread(a, (size_t)-1) == NULL, "thread -1");
	PW_EQ_LONG(procwide_audit_nvalues(a, -1), 0);
	PW_EQ_LONG(procwide_audit_nvalues(a, PROCWIDE_AUDIT_NFIELDS), 0);
	PW_EQ_LONG(procwide_audit_value_class(a, -1, 0), -EINVAL);
	PW_EQ_LONG(procwide_audit_value_class(a, PROCWIDE_AUDIT_NFIELDS, 0), -EINVAL);
	PW_EQ_LONG(procwide_audit_value_class(a, 0, 1), -EINVAL);
	procwide_audit_free(a);

	PW_EQ_LONG(procwide_audit_nthreads(NULL), 0);
	PW_EQ_LONG(procwide_audit_pid(NULL), 0);
	PW_CHECK(procwide_audit_thread(NULL, 0) == NULL, "thread of NULL");
	PW_EQ_LONG(procwide_audit_ndivergent(NULL), 0);
	PW_EQ_LONG(procwide_audit_value_class(NULL, 0, 0), -EINVAL);
	procwide_audit_free(NULL);
}

/* ---- access to /proc ---------------------------------------------------------- */

/* The hidepid= option of the /proc mount: 0 none, 1 noaccess, 2 invisible,
 * 4 ptraceable. */
static int proc_hidepid(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int mode = 0;

	PW_CHECK(f, "mountinfo");
	while (fgets(line, sizeof line, f)) {
		char *opts;
		if (!strstr(line, " /proc ") || !strstr(line, " - proc "))
			continue;
		opts = strstr(line, "hidepid=");
		mode = 0;
		if (!opts)
			continue;
		opts += 8;
		if (!strncmp(opts, "1", 1) || !strncmp(opts, "noaccess", 8))
			mode = 1;
		else if (!strncmp(opts, "2", 1) || !strncmp(opts, "invisible", 9))
			mode = 2;
		else if (!strncmp(opts, "4", 1) || !strncmp(opts, "ptraceable", 10))
			mode = 4;
	}
	fclose(f);
	return mode;
}

/*
 * As an unprivileged user, a process of another user.  /proc/PID/task/TID/
 * status is world-readable (0444) unless /proc is mounted with hidepid=, so
 * the exact outcome depends on that option: 0 without it, -EPERM with
 * hidepid=noaccess, -ESRCH with hidepid=invisible.
 */
static void other_user_unprivileged(void)
{
	struct procwide_audit *a = NULL;
	char line[128];
	unsigned uid1 = 0;
	int hide, rc;
	FILE *f;

	if (geteuid() == 0)
		pw_skip("running as root (hidepid_* cover the denial as root)");
	hide = proc_hidepid();
	if (hide == 4)
		pw_skip("/proc has hidepid=ptraceable: the outcome depends on ptrace rules");
	if (hide == 0) {
		f = fopen("/proc/1/status", "re");
		PW_CHECK(f, "/proc/1/status: %s", strerror(errno));
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "Uid: %u", &uid1) == 1)
				break;
		fclose(f);
		if (uid1 == geteuid())
			pw_skip("pid 1 belongs to this user");
	}
	rc = procwide_audit(1, &a);
	if (hide == 0) {
		PW_EQ_LONG(rc, 0);
		PW_EQ_LONG(procwide_audit_pid(a), 1);
		PW_CHECK(procwide_audit_nthreads(a) >= 1, "threads of pid 1");
		PW_EQ_LONG(procwide_audit_thread(a, 0)->uid[0], uid1);
		procwide_audit_free(a);
	} else {
		PW_EQ_LONG(rc, hide == 1 ? -EPERM : -ESRCH);
	}
}

/* As root: a private /proc with hidepid=MODE, then uid 65534. */
static void enter_hidepid(const char *mode)
{
	char opts[32];

	if (geteuid() != 0 || !pw_have_cap(CAP_SYS_ADMIN_))
		pw_skip("needs root with CAP_SYS_ADMIN to mount a private /proc");
	if (unshare(CLONE_NEWNS) != 0)
		pw_skip("unshare(CLONE_NEWNS): %s", strerror(errno));
	PW_EQ_LONG(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(opts, sizeof opts, "hidepid=%s", mode);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
		pw_skip("mount proc %s: %s", opts, strerror(errno));
	/* Single-threaded here: the C library calls are enough. */
	PW_EQ_LONG(setgroups(0, NULL), 0);
	PW_EQ_LONG(setresgid(65534, 65534, 65534), 0);
	PW_EQ_LONG(setresuid(65534, 65534, 65534), 0);
}

static void hidepid_noaccess_eperm(void)
{
	struct procwide_audit *a = (struct procwide_audit *)&a;

	enter_hidepid("noaccess");
	PW_EQ_LONG(procwide_audit(1, &a), -EPERM);
	PW_CHECK(a == (struct procwide_audit *)&a, "*out changed on error");
	/* Its own process stays readable. */
	PW_EQ_LONG(procwide_audit(0, &a), 0);
	PW_EQ_LONG(procwide_audit_thread(a, 0)->uid[0], 65534);
	procwide_audit_free(a);
}

static void hidepid_invisible_esrch(void)
{
	struct procwide_audit *a = NULL;

	enter_hidepid("invisible");
	PW_EQ_LONG(procwide_audit(1, &a), -ESRCH);
}

static const struct pw_case cases[] = {
	PW_CASE(uniform_idle),
	PW_CASE(divergent_no_new_privs),
	PW_CASE(divergent_seccomp),
	PW_CASE(divergent_cap_bnd),
	PW_CASE(divergent_uid),
	PW_CASE(tie_goes_to_main_thread),
	PW_CASE(majority_not_main_thread),
	PW_CASE_T(vanishing_threads, 60),
	PW_CASE_T(mass_exit_keeps_stable_threads, 60),
	PW_CASE(other_process),
	PW_CASE(tid_names_its_process),
	PW_CASE(zombie_leader),
	PW_CASE(zombie_process),
	PW_CASE(no_such_process),
	PW_CASE(bad_arguments),
	PW_CASE(other_user_unprivileged),
	PW_CASE(hidepid_noaccess_eperm),
	PW_CASE(hidepid_invisible_esrch),
};

int main(int argc, char **argv)
{
	return pw_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
