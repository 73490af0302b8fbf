// SPDX-License-Identifier: MIT
//
// A cgo program that links libprocwide.so and checks that one procwide call
// reaches every thread of a Go process: threads locked to goroutines
// (runtime.LockOSThread) that wait on a channel or spin, threads held by
// goroutines blocked in read(2), the runtime's own threads (sysmon, GC
// workers, idle Ms), plus many sleeping goroutines.
//
// Run by tests/test_runtime_go.sh, one case per process (the changes cannot
// be undone):  go_nnp nnp | run-report | timerslack | notify | blocked-thread |
// ptrace-all
// Output: "# " diagnostics; "skip: REASON" before exit 77; exit 0 pass,
// 1 fail.
package main

/*
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "procwide.h"

// procwide_syscall with errno and procwide_last_error() read in the same
// thread as the call (Go may move a goroutine between calls into C).
struct go_result {
	long ret;
	int err;
	char last_error[512];
};

static void go_syscall(long nr, long a1, long a2, struct go_result *out)
{
	errno = 0;
	out->ret = procwide_syscall(nr, a1, a2, 0, 0, 0, 0);
	out->err = errno;
	strncpy(out->last_error, procwide_last_error(), sizeof out->last_error - 1);
	out->last_error[sizeof out->last_error - 1] = '\0';
}

static int go_run(long nr, long a1, long a2, unsigned flags, struct procwide_report *rep,
		  long *caller_tid, char *last_error, size_t last_error_sz)
{
	struct procwide_call call = { .nr = nr, .args = { a1, a2, 0, 0, 0, 0 } };
	struct procwide_opts opts = { .size = sizeof opts, .flags = flags };
	memset(rep, 0, sizeof *rep);
	rep->size = sizeof *rep;
	*caller_tid = syscall(SYS_gettid);
	int r = procwide_run(&call, &opts, rep);
	strncpy(last_error, procwide_last_error(), last_error_sz - 1);
	last_error[last_error_sz - 1] = '\0';
	return r;
}

// The signal procwide uses, from the report of a harmless call
// (PR_GET_NO_NEW_PRIVS, which returns the same value in every thread).
static int go_probe_signal(char *last_error, size_t last_error_sz)
{
	struct procwide_call call = { .nr = SYS_prctl, .args = { PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0, 0 } };
	struct procwide_report rep;
	memset(&rep, 0, sizeof rep);
	rep.size = sizeof rep;
	int r = procwide_run(&call, NULL, &rep);
	strncpy(last_error, procwide_last_error(), last_error_sz - 1);
	last_error[last_error_sz - 1] = '\0';
	int sig = rep.signal;
	procwide_report_release(&rep);
	return r < 0 ? r : sig;
}

// A thread that blocks every signal with the raw system call (so that the C
// library's filtering of its internal signals does not apply) and then
// blocks in read(2), the way some runtimes' timer or I/O threads do.  It
// records its thread ID, its read(2) result and its errno.
struct go_blocked {
	int fd;
	volatile long tid;
	volatile long ret;
	volatile int err;
};

static void go_block_all_and_read(struct go_blocked *b)
{
	unsigned long all = ~0UL;
	char buf[8];
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof all);
	b->tid = syscall(SYS_gettid);
	long r = read(b->fd, buf, sizeof buf);
	b->err = r < 0 ? errno : 0;
	b->ret = r;
}

// The flags of the handler now installed for sig, or -1.
static long go_sa_flags(int sig)
{
	struct sigaction sa;
	if (sig <= 0 || sigaction(sig, NULL, &sa) != 0)
		return -1;
	return (long)sa.sa_flags;
}
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	nLocked   = 12  // goroutines locked to their own thread, waiting on a channel
	nSpinning = 2   // goroutines locked to their own thread, spinning
	nReaders  = 4   // goroutines holding a thread in a blocking read(2)
	nSleepers = 200 // goroutines in time.Sleep (no thread of their own)
)

var failed bool

func diag(format string, a ...interface{}) {
	fmt.Printf("# "+format+"\n", a...)
}

func fail(format string, a ...interface{}) {
	failed = true
	diag("FAIL: "+format, a...)
}

func skip(format string, a ...interface{}) {
	fmt.Printf("skip: "+format+"\n", a...)
	os.Exit(77)
}

func tids() []int {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		fail("open /proc/self/task: %v", err)
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		fail("read /proc/self/task: %v", err)
	}
	var out []int
	for _, n := range names {
		if t, err := strconv.Atoi(n); err == nil {
			out = append(out, t)
		}
	}
	sort.Ints(out)
	return out
}

// statusField returns a field of /proc/self/task/TID/status, ok=false if the
// thread is gone.
func statusField(tid int, field string) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			return strings.TrimSpace(line[len(field)+1:]), true
		}
	}
	return "", false
}

func comm(tid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func timerslack(tid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid))
	if err != nil {
		return -1, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

func haveCap(cap uint) bool {
	v, ok := statusField(syscall.Gettid(), "CapEff")
	if !ok {
		return false
	}
	mask, err := strconv.ParseUint(v, 16, 64)
	return err == nil && mask&(1<<cap) != 0
}

// checkAll checks a field in every thread now listed; returns how many
// threads were checked.
func checkAll(field, want, when string) int {
	n := 0
	bad := 0
	for _, t := range tids() {
		v, ok := statusField(t, field)
		if !ok {
			continue // exited meanwhile
		}
		n++
		if v != want {
			bad++
			if bad <= 10 {
				fail("%s: thread %d (%s) has %s %s, want %s", when, t, comm(t), field, v, want)
			}
		}
	}
	if bad > 10 {
		fail("%s: %d threads in all have the wrong %s", when, bad, field)
	}
	return n
}

// world is the set of goroutines and threads the cases run against.
type world struct {
	stop     chan struct{}
	spinStop int32
	wg       sync.WaitGroup
	pipes    [nReaders][2]int
	readErr  [nReaders]error
	readN    [nReaders]int
	locked   int32
}

func startWorld() *world {
	w := &world{stop: make(chan struct{})}
	for i := 0; i < nLocked; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			runtime.LockOSThread()
			atomic.AddInt32(&w.locked, 1)
			<-w.stop
		}()
	}
	for i := 0; i < nSpinning; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			runtime.LockOSThread()
			atomic.AddInt32(&w.locked, 1)
			x := 0
			for atomic.LoadInt32(&w.spinStop) == 0 {
				x++
			}
			_ = x
		}()
	}
	for i := 0; i < nReaders; i++ {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			fail("pipe2: %v", err)
			continue
		}
		w.pipes[i] = p
		w.wg.Add(1)
		go func(i int) {
			defer w.wg.Done()
			buf := make([]byte, 8)
			// A raw read(2): an EINTR here would reach the application.
			w.readN[i], w.readErr[i] = syscall.Read(w.pipes[i][0], buf)
		}(i)
	}
	for i := 0; i < nSleepers; i++ {
		go func() {
			select {
			case <-time.After(time.Hour):
			case <-w.stop:
			}
		}()
	}
	// Wait for the locked threads to exist and the thread count to settle.
	deadline := time.Now().Add(10 * time.Second)
	for atomic.LoadInt32(&w.locked) < nLocked+nSpinning && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	prev, stable := -1, 0
	for stable < 5 && time.Now().Before(deadline) {
		n := len(tids())
		if n == prev {
			stable++
		} else {
			stable = 0
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
	min := 1 + nLocked + nSpinning + nReaders
	n := len(tids())
	diag("threads: %d (main + %d locked waiting + %d locked spinning + %d in read(2) + Go runtime threads); goroutines: %d",
		n, nLocked, nSpinning, nReaders, runtime.NumGoroutine())
	if n < min {
		fail("only %d threads, expected at least %d", n, min)
	}
	return w
}

// finish releases every goroutine and checks that the Go runtime and the
// interrupted threads are still healthy after the call.
func (w *world) finish() {
	atomic.StoreInt32(&w.spinStop, 1)
	close(w.stop)
	for i := 0; i < nReaders; i++ {
		if w.pipes[i][1] != 0 {
			syscall.Write(w.pipes[i][1], []byte("procwide"))
		}
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fail("goroutines did not finish within 10 s after the call")
		return
	}
	for i := 0; i < nReaders; i++ {
		if w.readErr[i] != nil || w.readN[i] != 8 {
			fail("a read(2) blocked during the call returned n=%d err=%v (want 8 bytes, no EINTR)", w.readN[i], w.readErr[i])
		}
	}
	// The runtime still works: a GC, new threads, timers.
	runtime.GC()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); runtime.LockOSThread(); time.Sleep(time.Millisecond) }()
	}
	wg.Wait()
}

// nnpCall runs procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1) through
// the C side; false (and a failure recorded) if it did not return 0.
func nnpCall() bool {
	var r C.struct_go_result
	C.go_syscall(C.SYS_prctl, C.PR_SET_NO_NEW_PRIVS, 1, &r)
	if r.ret != 0 {
		fail("procwide_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1) = %d, errno %d (%s); procwide_last_error(): %q",
			int64(r.ret), int(r.err), syscall.Errno(r.err), C.GoString(&r.last_error[0]))
		return false
	}
	return true
}

// setNNPEverywhere checks that no thread has no_new_privs, sets it with
// procwide and checks that every thread has it.
func setNNPEverywhere() {
	n := checkAll("NoNewPrivs", "0", "before")
	diag("before: NoNewPrivs checked in %d threads", n)
	nnpCall()
	n = checkAll("NoNewPrivs", "1", "after")
	diag("after: NoNewPrivs checked in %d threads", n)
}

func caseNNP() {
	w := startWorld()
	setNNPEverywhere()
	w.finish()
	// Threads created after the call inherit it.
	checkAll("NoNewPrivs", "1", "after new threads")
}

func sameSet(a []int, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func caseRunReport() { runReport(0) }

// casePtraceAll: PROCWIDE_PTRACE_ALL reaches every thread through the ptrace
// helper and delivers no signal: the raw read(2)s must not see EINTR, and
// every thread but the caller must show the ptrace path.
func casePtraceAll() { runReport(C.PROCWIDE_PTRACE_ALL) }

func runReport(flags C.uint) {
	w := startWorld()
	checkAll("NoNewPrivs", "0", "before")
	before := tids()
	var rep C.struct_procwide_report
	var callerTid C.long
	var lastErr [512]C.char
	rc := C.go_run(C.SYS_prctl, C.PR_SET_NO_NEW_PRIVS, 1, flags, &rep, &callerTid, &lastErr[0], C.size_t(len(lastErr)))
	after := tids()
	defer C.procwide_report_release(&rep)
	diag("procwide_run: rc %d, outcome %d, signal %d, result %d, nthreads %d, nmismatch %d, nunreachable %d, elapsed %.1f us, message %q",
		int(rc), int(rep.outcome), int(rep.signal), int64(rep.result), uint64(rep.nthreads),
		uint64(rep.nmismatch), uint64(rep.nunreachable), float64(rep.elapsed_ns)/1e3, C.GoString(&rep.message[0]))
	if rc != 0 || rep.outcome != C.PROCWIDE_OUTCOME_OK {
		fail("procwide_run = %d (%s), outcome %d; procwide_last_error(): %q",
			int(rc), syscall.Errno(-rc), int(rep.outcome), C.GoString(&lastErr[0]))
	}
	var got []int
	callers := 0
	bad := 0
	if rep.nthreads > 0 && rep.threads != nil {
		ths := unsafe.Slice(rep.threads, int(rep.nthreads))
		for _, t := range ths {
			got = append(got, int(t.tid))
			okStatus := t.status == C.PROCWIDE_THREAD_OK || t.status == C.PROCWIDE_THREAD_CALLER
			if t.status == C.PROCWIDE_THREAD_CALLER {
				callers++
				if C.long(t.tid) != callerTid {
					fail("the CALLER entry is thread %d, but the call was made in %d", int(t.tid), int64(callerTid))
				}
			}
			wantPath := C.int(C.PROCWIDE_PATH_SIGNAL)
			if flags&C.PROCWIDE_PTRACE_ALL != 0 {
				wantPath = C.PROCWIDE_PATH_PTRACE
			}
			if t.status == C.PROCWIDE_THREAD_OK && t.path != wantPath && flags != 0 {
				bad++
				fail("thread %d (%s) was reached by path %d, want %d", int(t.tid), comm(int(t.tid)), int(t.path), int(wantPath))
			}
			if !okStatus || t.result != 0 {
				bad++
				if bad <= 10 {
					fail("thread %d (%s): status %s, path %d, result %d",
						int(t.tid), comm(int(t.tid)), C.GoString(C.procwide_thread_status_name(t.status)),
						int(t.path), int64(t.result))
				}
			}
		}
	}
	sort.Ints(got)
	if callers != 1 {
		fail("%d entries with status CALLER, want 1", callers)
	}
	switch {
	case sameSet(got, after):
		diag("report lists %d threads = the %d tasks in /proc/self/task after the call", len(got), len(after))
	case sameSet(got, before):
		diag("report lists %d threads = the %d tasks before the call (%d after: the runtime changed threads since)",
			len(got), len(before), len(after))
	default:
		fail("report lists %d threads %v, /proc/self/task had %d %v before and %d %v after",
			len(got), got, len(before), before, len(after), after)
	}
	// Go requires non-Go signal handlers to run on the alternate signal
	// stack: a handler without SA_ONSTACK runs on a small goroutine stack.
	if rep.signal > 0 {
		fl := C.go_sa_flags(rep.signal)
		if fl < 0 || fl&C.SA_ONSTACK == 0 {
			fail("procwide's handler for signal %d has sa_flags %#x: no SA_ONSTACK (Go requires it for non-Go handlers)", int(rep.signal), int64(fl))
		} else {
			diag("handler for signal %d has SA_ONSTACK (sa_flags %#x)", int(rep.signal), int64(fl))
		}
	}
	n := checkAll("NoNewPrivs", "1", "after")
	diag("after: NoNewPrivs checked in %d threads", n)
	w.finish()
}

func caseTimerslack() {
	// Reading another thread's /proc/TID/timerslack_ns needs CAP_SYS_NICE.
	const capSysNice = 23
	if !haveCap(capSysNice) {
		skip("reading another thread's /proc/TID/timerslack_ns needs CAP_SYS_NICE (run as root)")
	}
	w := startWorld()
	fresh := int64(1000000 + os.Getpid()%100000*7 + 3)
	n := 0
	for _, t := range tids() {
		v, ok := timerslack(t)
		if !ok {
			continue
		}
		n++
		if v == fresh {
			fail("before: thread %d already has timer slack %d", t, v)
		}
	}
	diag("before: %d threads, none with timer slack %d", n, fresh)
	var r C.struct_go_result
	C.go_syscall(C.SYS_prctl, C.PR_SET_TIMERSLACK, C.long(fresh), &r)
	if r.ret != 0 {
		fail("procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, %d) = %d, errno %d (%s); procwide_last_error(): %q",
			fresh, int64(r.ret), int(r.err), syscall.Errno(r.err), C.GoString(&r.last_error[0]))
	}
	n, bad := 0, 0
	for _, t := range tids() {
		v, ok := timerslack(t)
		if !ok {
			continue
		}
		n++
		if v != fresh {
			bad++
			if bad <= 10 {
				fail("after: thread %d (%s) has timer slack %d, want %d", t, comm(t), v, fresh)
			}
		}
	}
	diag("after: timer slack checked in %d threads (want %d)", n, fresh)
	w.finish()
}

// caseNotify: the Go program asks for the very signal procwide uses
// (signal.Notify).  Go installed its handler on every signal at start-up, so
// procwide chained to it: a signal the application sends must still reach
// the Go channel, and procwide's own deliveries must not.
func caseNotify() {
	w := startWorld()
	var lastErr [512]C.char
	sig := int(C.go_probe_signal(&lastErr[0], C.size_t(len(lastErr))))
	if sig <= 0 {
		fail("procwide_run(PR_GET_NO_NEW_PRIVS) = %d; procwide_last_error(): %q", sig, C.GoString(&lastErr[0]))
		w.finish()
		return
	}
	diag("procwide uses signal %d; the Go program now asks for it with signal.Notify", sig)
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.Signal(sig))
	if err := syscall.Kill(os.Getpid(), syscall.Signal(sig)); err != nil {
		fail("kill(getpid(), %d): %v", sig, err)
	}
	select {
	case got := <-ch:
		diag("the application's own signal %d reached the Go channel (%v)", sig, got)
	case <-time.After(5 * time.Second):
		fail("the application's own signal %d never reached the Go channel", sig)
	}
	setNNPEverywhere()
	select {
	case got := <-ch:
		fail("procwide's own delivery reached the Go channel as %v", got)
	case <-time.After(300 * time.Millisecond):
	}
	signal.Stop(ch)
	w.finish()
}

// caseBlocked: one Go thread (locked, inside a cgo call) blocks every
// signal and sleeps in read(2).  procwide's signal cannot reach it; the
// engine must still reach it (through its ptrace helper) or fail with
// nothing changed, and the read(2) must not see EINTR.
func caseBlocked() {
	w := startWorld()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		fail("pipe2: %v", err)
		return
	}
	b := (*C.struct_go_blocked)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_go_blocked{}))))
	defer C.free(unsafe.Pointer(b))
	b.fd = C.int(p[0])
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine: Go will not reuse it
		C.go_block_all_and_read(b)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.tid == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let it reach read(2)
	tid := int(b.tid)
	blk, _ := statusField(tid, "SigBlk")
	diag("thread %d blocks every signal (SigBlk %s) and sleeps in read(2)", tid, blk)
	n := checkAll("NoNewPrivs", "0", "before")
	diag("before: NoNewPrivs checked in %d threads", n)
	if !nnpCall() {
		n = checkAll("NoNewPrivs", "0", "after the failed call (nothing may have changed)")
		diag("after the failed call: NoNewPrivs 0 checked in %d threads", n)
	} else {
		n = checkAll("NoNewPrivs", "1", "after")
		diag("after: NoNewPrivs checked in %d threads, the blocked thread included", n)
	}
	syscall.Write(p[1], []byte("procwide"))
	select {
	case <-done:
		if b.ret != 8 {
			fail("the blocked thread's read(2) returned %d, errno %d (%s); want 8 bytes",
				int64(b.ret), int(b.err), syscall.Errno(b.err))
		} else {
			diag("the blocked thread's read(2) returned its 8 bytes")
		}
	case <-time.After(10 * time.Second):
		fail("the blocked thread's read(2) did not return within 10 s of the write")
	}
	w.finish()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_nnp nnp|run-report|timerslack|notify|blocked-thread|ptrace-all")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "nnp":
		caseNNP()
	case "run-report":
		caseRunReport()
	case "timerslack":
		caseTimerslack()
	case "notify":
		caseNotify()
	case "blocked-thread":
		caseBlocked()
	case "ptrace-all":
		casePtraceAll()
	default:
		fmt.Fprintf(os.Stderr, "go_nnp: unknown case %q\n", os.Args[1])
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
