/* Which system calls may take the direct path (enum procwide_mode).
 *
 * On the direct path the call has already run in the calling thread while
 * the caller still has work to do: signal the other threads
 * (rt_tgsigqueueinfo), read /proc/self/task, start the ptrace helper for a
 * thread that does not answer (a fork of the caller, with the caller's
 * credentials, seccomp filters and Landlock domain), and it may run the call
 * a second time in a thread created during the call by one that had already
 * run it.  So a call takes the direct path only if, having run in the
 * caller, it cannot take away what the rest of the call needs, and gives the
 * same result when repeated:
 *  - seccomp filters and Landlock domains can forbid signals and ptrace to
 *    the caller (and stack again when repeated): never;
 *  - a change of ids makes the process non-dumpable and may drop
 *    CAP_SYS_PTRACE (commit_creds); a change of capabilities or securebits
 *    may drop CAP_SYS_PTRACE or CAP_KILL: never, except setresuid and
 *    setresgid calls that leave every id as it is in the caller;
 *  - prctl: only options that touch none of that.
 * Everything else is taken as harmless; a call that is not can be kept on
 * the parked path with PROCWIDE_ATOMIC. */
#include "internal.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

/* setresuid/setresgid arguments that change nothing: -1 or the current id. */
static bool same_ids(long nr, const long a[3])
{
	unsigned int cur[3];
	long get = nr == SYS_setresuid ? SYS_getresuid : SYS_getresgid;
	if (pw_is_err(pw_sys3(get, (long)&cur[0], (long)&cur[1], (long)&cur[2])))
		return false;
	for (int i = 0; i < 3; i++)
		if ((unsigned int)a[i] != (unsigned int)-1 && (unsigned int)a[i] != cur[i])
			return false;
	return true;
}

bool procwide__direct_safe(const struct procwide_call *call)
{
	switch (call->nr) {
	case SYS_prctl:
		switch (call->args[0]) {
		case PR_SET_NO_NEW_PRIVS:
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
		return same_ids(call->nr, call->args);
	case SYS_seccomp:
	case SYS_landlock_restrict_self:
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setfsuid:
	case SYS_setfsgid:
	case SYS_setgroups:
	case SYS_capset:
	case SYS_unshare:
	case SYS_setns:
	case SYS_personality:
		return false;
	default:
		return true;
	}
}
