#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CPython threads + ctypes + libprocwide.so: one procwide call must reach
every thread of a Python process (threads waiting on an Event, threads busy
running Python code, the main thread).

Run by tests/test_runtime_python.sh, one case per fresh process (the changes
cannot be undone):  python_nnp.py nnp|run-report|timerslack|app-signal
The library is $PROCWIDE_LIB.  Output: "# " diagnostics; "skip: REASON"
before exit 77; exit 0 pass, 1 fail.
"""
import ctypes
import os
import signal
import sys
import threading
import time

SYS_prctl = 157  # x86_64
PR_SET_NO_NEW_PRIVS = 38
PR_SET_TIMERSLACK = 29
PR_GET_NO_NEW_PRIVS = 39
CAP_SYS_NICE = 23

N_WAITING = 8
N_BUSY = 3

PROCWIDE_THREAD_CALLER = 0
PROCWIDE_THREAD_OK = 1
PROCWIDE_OUTCOME_OK = 0

failed = False


def diag(msg):
    print("# " + msg, flush=True)


def fail(msg):
    global failed
    failed = True
    diag("FAIL: " + msg)


def skip(msg):
    print("skip: " + msg, flush=True)
    sys.exit(77)


class Call(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_long), ("args", ctypes.c_long * 6)]


class Thread(ctypes.Structure):
    _fields_ = [("tid", ctypes.c_int), ("status", ctypes.c_int),
                ("path", ctypes.c_int), ("result", ctypes.c_long)]


class Report(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("outcome", ctypes.c_int),
                ("signal", ctypes.c_int), ("result", ctypes.c_long),
                ("nthreads", ctypes.c_size_t),
                ("threads", ctypes.POINTER(Thread)),
                ("nmismatch", ctypes.c_size_t),
                ("nunreachable", ctypes.c_size_t),
                ("elapsed_ns", ctypes.c_uint64),
                ("message", ctypes.c_char * 256)]


def text(b):
    return b.decode(errors="replace") if b is not None else ""


def load():
    path = os.environ.get("PROCWIDE_LIB", "build/gcc/libprocwide.so")
    lib = ctypes.CDLL(path, use_errno=True)
    lib.procwide_syscall.restype = ctypes.c_long
    lib.procwide_syscall.argtypes = [ctypes.c_long] * 7
    lib.procwide_run.restype = ctypes.c_int
    lib.procwide_run.argtypes = [ctypes.POINTER(Call), ctypes.c_void_p,
                                 ctypes.POINTER(Report)]
    lib.procwide_report_release.restype = None
    lib.procwide_report_release.argtypes = [ctypes.POINTER(Report)]
    lib.procwide_thread_status_name.restype = ctypes.c_char_p
    lib.procwide_thread_status_name.argtypes = [ctypes.c_int]
    lib.procwide_last_error.restype = ctypes.c_char_p
    lib.procwide_last_error.argtypes = []
    return lib


def tids():
    return sorted(int(t) for t in os.listdir("/proc/self/task") if t.isdigit())


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def status_field(tid, field):
    s = read("/proc/self/task/%d/status" % tid)
    if s is None:
        return None
    for line in s.splitlines():
        if line.startswith(field + ":"):
            return line[len(field) + 1:].strip()
    return None


def comm(tid):
    s = read("/proc/self/task/%d/comm" % tid)
    return s.strip() if s else "?"


def have_cap(cap):
    v = status_field(threading.get_native_id(), "CapEff")
    return v is not None and (int(v, 16) >> cap) & 1 == 1


def check_all(field, want, when):
    n = bad = 0
    for t in tids():
        v = status_field(t, field)
        if v is None:
            continue  # exited meanwhile
        n += 1
        if v != want:
            bad += 1
            if bad <= 10:
                fail("%s: thread %d (%s) has %s %s, want %s"
                     % (when, t, comm(t), field, v, want))
    if bad > 10:
        fail("%s: %d threads in all have the wrong %s" % (when, bad, field))
    return n


class World:
    """Threads waiting on an Event and threads busy in Python code."""

    def __init__(self):
        self.stop = threading.Event()
        self.started = threading.Semaphore(0)
        self.native_ids = []
        self.woke = []
        self.threads = []
        for i in range(N_WAITING):
            self.threads.append(threading.Thread(target=self.wait, name="wait%d" % i))
        for i in range(N_BUSY):
            self.threads.append(threading.Thread(target=self.busy, name="busy%d" % i))
        for t in self.threads:
            t.start()
        for _ in self.threads:
            self.started.acquire()
        n = len(tids())
        diag("threads: %d (main + %d waiting on an Event + %d busy)"
             % (n, N_WAITING, N_BUSY))
        if n < 1 + N_WAITING + N_BUSY:
            fail("only %d threads" % n)
        missing = [i for i in self.native_ids if i not in tids()]
        if missing:
            fail("threads %s not listed in /proc/self/task" % missing)

    def wait(self):
        self.native_ids.append(threading.get_native_id())
        self.started.release()
        self.woke.append(self.stop.wait(60))

    def busy(self):
        self.native_ids.append(threading.get_native_id())
        self.started.release()
        x = 0
        while not self.stop.is_set():
            x += 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)
            if t.is_alive():
                fail("thread %s did not finish within 10 s after the call" % t.name)
        if self.woke.count(True) != N_WAITING:
            fail("Event.wait() results in the waiting threads: %s" % self.woke)
        # The interpreter still starts threads.
        t = threading.Thread(target=time.sleep, args=(0.001,))
        t.start()
        t.join()


def case_nnp(lib):
    w = World()
    n = check_all("NoNewPrivs", "0", "before")
    diag("before: NoNewPrivs checked in %d threads" % n)
    r = lib.procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)
    if r != 0:
        e = ctypes.get_errno()
        fail("procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1) = %d, errno %d (%s); "
             "procwide_last_error(): %r" % (r, e, os.strerror(e), text(lib.procwide_last_error())))
    n = check_all("NoNewPrivs", "1", "after")
    diag("after: NoNewPrivs checked in %d threads" % n)
    w.finish()
    check_all("NoNewPrivs", "1", "after new threads")


def case_run_report(lib):
    w = World()
    check_all("NoNewPrivs", "0", "before")
    call = Call(SYS_prctl, (ctypes.c_long * 6)(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0))
    rep = Report()
    rep.size = ctypes.sizeof(Report)
    before = tids()
    caller = threading.get_native_id()
    rc = lib.procwide_run(ctypes.byref(call), None, ctypes.byref(rep))
    last = text(lib.procwide_last_error())
    after = tids()
    diag("procwide_run: rc %d, outcome %d, signal %d, result %d, nthreads %d, nmismatch %d, "
         "nunreachable %d, elapsed %.1f us, message %r"
         % (rc, rep.outcome, rep.signal, rep.result, rep.nthreads, rep.nmismatch,
            rep.nunreachable, rep.elapsed_ns / 1e3, rep.message.decode(errors="replace")))
    if rc != 0 or rep.outcome != PROCWIDE_OUTCOME_OK:
        fail("procwide_run = %d (%s), outcome %d; procwide_last_error(): %r"
             % (rc, os.strerror(-rc) if rc < 0 else "", rep.outcome, last))
    got = []
    callers = bad = 0
    for i in range(rep.nthreads):
        t = rep.threads[i]
        got.append(t.tid)
        if t.status == PROCWIDE_THREAD_CALLER:
            callers += 1
            if t.tid != caller:
                fail("the CALLER entry is thread %d, but the call was made in %d" % (t.tid, caller))
        if t.status not in (PROCWIDE_THREAD_CALLER, PROCWIDE_THREAD_OK) or t.result != 0:
            bad += 1
            if bad <= 10:
                fail("thread %d (%s): status %s, path %d, result %d"
                     % (t.tid, comm(t.tid), lib.procwide_thread_status_name(t.status).decode(),
                        t.path, t.result))
    got.sort()
    if callers != 1:
        fail("%d entries with status CALLER, want 1" % callers)
    if got == after:
        diag("report lists %d threads = the %d tasks in /proc/self/task" % (len(got), len(after)))
    else:
        fail("report lists %d threads %s; /proc/self/task had %d %s before and %d %s after"
             % (len(got), got, len(before), before, len(after), after))
    for tid in w.native_ids:
        if tid not in got:
            fail("Python thread %d is not in the report" % tid)
    lib.procwide_report_release(ctypes.byref(rep))
    lib.procwide_report_release(ctypes.byref(rep))  # documented as safe twice
    n = check_all("NoNewPrivs", "1", "after")
    diag("after: NoNewPrivs checked in %d threads" % n)
    w.finish()


def case_timerslack(lib):
    # Reading another thread's /proc/TID/timerslack_ns needs CAP_SYS_NICE
    # (the kernel checks it for any thread but the reader itself).
    if not have_cap(CAP_SYS_NICE):
        skip("reading another thread's /proc/TID/timerslack_ns needs CAP_SYS_NICE (run as root)")
    w = World()
    fresh = 2000000 + (os.getpid() % 100000) * 7 + 5
    n = 0
    for t in tids():
        v = read("/proc/%d/timerslack_ns" % t)
        if v is None:
            continue
        n += 1
        if int(v) == fresh:
            fail("before: thread %d already has timer slack %d" % (t, fresh))
    diag("before: %d threads, none with timer slack %d" % (n, fresh))
    r = lib.procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, fresh, 0, 0, 0, 0)
    if r != 0:
        e = ctypes.get_errno()
        fail("procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, %d) = %d, errno %d (%s); "
             "procwide_last_error(): %r" % (fresh, r, e, os.strerror(e), text(lib.procwide_last_error())))
    n = bad = 0
    for t in tids():
        v = read("/proc/%d/timerslack_ns" % t)
        if v is None:
            continue
        n += 1
        if int(v) != fresh:
            bad += 1
            if bad <= 10:
                fail("after: thread %d (%s) has timer slack %s, want %d"
                     % (t, comm(t), v.strip(), fresh))
    diag("after: timer slack checked in %d threads (want %d)" % (n, fresh))
    w.finish()


def case_app_signal(lib):
    """The application takes the very signal procwide uses (signal.signal
    installs CPython's handler over procwide's): the application must get its
    own deliveries, procwide must move to another signal, and its next call
    must still reach every thread without the application seeing it."""
    w = World()
    # A harmless call (same result in every thread) to learn the signal.
    call = Call(SYS_prctl, (ctypes.c_long * 6)(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0, 0))
    rep = Report()
    rep.size = ctypes.sizeof(Report)
    rc = lib.procwide_run(ctypes.byref(call), None, ctypes.byref(rep))
    sig = rep.signal
    lib.procwide_report_release(ctypes.byref(rep))
    if rc != 0 or sig <= 0:
        fail("procwide_run(PR_GET_NO_NEW_PRIVS) = %d, signal %d; procwide_last_error(): %r"
             % (rc, sig, text(lib.procwide_last_error())))
        w.finish()
        return
    got = []
    signal.signal(sig, lambda s, f: got.append(s))
    diag("procwide used signal %d; the application now handles it with signal.signal" % sig)
    os.kill(os.getpid(), sig)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    if got:
        diag("the application's own signal %d reached its Python handler" % sig)
    else:
        fail("the application's own signal %d never reached its Python handler" % sig)
    n = check_all("NoNewPrivs", "0", "before")
    diag("before: NoNewPrivs checked in %d threads" % n)
    got.clear()
    call = Call(SYS_prctl, (ctypes.c_long * 6)(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0))
    rep = Report()
    rep.size = ctypes.sizeof(Report)
    rc = lib.procwide_run(ctypes.byref(call), None, ctypes.byref(rep))
    diag("second call: rc %d, outcome %d, signal %d, nthreads %d, message %r"
         % (rc, rep.outcome, rep.signal, rep.nthreads, rep.message.decode(errors="replace")))
    if rc != 0:
        fail("procwide_run(PR_SET_NO_NEW_PRIVS) = %d; procwide_last_error(): %r"
             % (rc, text(lib.procwide_last_error())))
    if rep.signal == sig:
        fail("procwide still uses signal %d, which the application now handles" % sig)
    lib.procwide_report_release(ctypes.byref(rep))
    n = check_all("NoNewPrivs", "1", "after")
    diag("after: NoNewPrivs checked in %d threads" % n)
    time.sleep(0.2)
    if got:
        fail("the application's handler saw signals %s during procwide's call" % got)
    w.finish()


CASES = {"nnp": case_nnp, "run-report": case_run_report, "timerslack": case_timerslack,
         "app-signal": case_app_signal}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: python_nnp.py %s" % "|".join(CASES), file=sys.stderr)
        return 2
    if os.uname().machine != "x86_64":
        skip("SYS_prctl is hard-coded for x86_64 here")
    CASES[sys.argv[1]](load())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
