/* Which system calls may take the direct path (enum procwide_mode).
 *
 * On the direct path the call has already run in the calling thread while
 * the caller still has work to do: signal the other threads
 * (rt_tgsigqueueinfo), read /proc/self/task through a descriptor it keeps,
 * start the ptrace helper for a thread that does not answer (a clone of the
 * caller: its credentials, seccomp filters, Landlock domain, resource
 * limits and scheduling policy, after the call, so never more privileged
 * than a thread that has run it), and it may run the call a second time in a
 * thread created during the call by one that had already run it.  Many
 * calls can break one of these: a seccomp filter or a Landlock domain can
 * forbid signals and ptrace; a change of ids makes the process
 * non-dumpable (commit_creds); a capability drop can take CAP_SYS_PTRACE or
 * CAP_KILL; RLIMIT_NPROC or RLIMIT_NOFILE can forbid the helper's clone or
 * its socket; SCHED_DEADLINE forbids fork; close_range or dup2 can take the
 * descriptor.  So the direct path is an optimisation for a short list of
 * calls known to break none of it and to give the same result when
 * repeated; every other call is parked. */
#include "internal.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A setresuid or setresgid that changes no id of the caller: each argument
 * is -1 or the id it has, and the filesystem id already equals the
 * effective one (set*id resets it to the effective id, and a change of it
 * makes the process non-dumpable).  setfsuid(-1) changes nothing and
 * returns the current filesystem id. */
static bool changes_no_id(long nr, const long a[3])
{
	unsigned int cur[3];
	bool uid = nr == SYS_setresuid;
	if (pw_is_err(pw_sys3(uid ? SYS_getresuid : SYS_getresgid, (long)&cur[0], (long)&cur[1],
			      (long)&cur[2])))
		return false;
	for (int i = 0; i < 3; i++)
		if ((unsigned int)a[i] != (unsigned int)-1 && (unsigned int)a[i] != cur[i])
			return false;
	long fs = pw_sys3(uid ? SYS_setfsuid : SYS_setfsgid, -1, 0, 0);
	return (unsigned int)fs == cur[1];
}

bool procwide__direct_safe(const struct procwide_call *call)
{
	switch (call->nr) {
	case SYS_prctl:
		switch (call->args[0]) {
		case PR_SET_NO_NEW_PRIVS: /* acts at execve only */
		case PR_SET_TIMERSLACK:
		case PR_SET_NAME:
		case PR_CAPBSET_DROP: /* the bounding set acts at execve only */
		case PR_CAP_AMBIENT:  /* idem */
			return true;
		default:
			return false;
		}
	case SYS_setresuid:
	case SYS_setresgid:
		return changes_no_id(call->nr, call->args);
	default:
		return false;
	}
}
