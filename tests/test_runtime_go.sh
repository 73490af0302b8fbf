#!/bin/sh
# SPDX-License-Identifier: MIT
# A real Go runtime (cgo, Debian's Go 1.19) linked against libprocwide.so:
# one procwide call must reach every thread the Go runtime made.  Each case
# runs in a fresh process (the changes cannot be undone).  TAP output.
#
# Environment: BUILD (default build/gcc, the build whose libprocwide.so is
# tested), CI=true (a missing go is a failure, not a skip), TEST_TIMEOUT
# (seconds per case, default 60).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap_case.sh
BUILD=${BUILD:-build/gcc}
TIMEOUT=${TEST_TIMEOUT:-60}
CASES="nnp run-report timerslack notify blocked-thread ptrace-all"

rc=0
reason=$(tests/need go 2>&1) || rc=$?
if [ "$rc" = 1 ]; then
	echo "1..0 # SKIP ${reason#SKIP: }"
	exit 0
elif [ "$rc" != 0 ]; then
	echo "1..1"
	echo "not ok 1 - go toolchain # ${reason#FAIL: }"
	exit 1
fi

if [ ! -e "$BUILD/libprocwide.so" ]; then
	echo "Bail out! $BUILD/libprocwide.so is missing (make BUILD=$BUILD lib)"
	exit 1
fi
build_abs=$(cd "$BUILD" && pwd)
root_abs=$(pwd)

# Everything go writes (build cache, GOPATH, the binary) stays under the
# build folder, or a temporary folder when that is not writable (a run as
# another user): nothing under $HOME.
out=$build_abs/runtime/go
tmp=
if ! mkdir -p "$out" 2>/dev/null || [ ! -w "$out" ]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/procwide-go.XXXXXX") || exit 1
	out=$tmp
fi
cleanup() { [ -n "$tmp" ] && rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

n=$(echo $CASES | wc -w)
echo "1..$((n + 1))"

# The header's hash goes into CGO_CFLAGS, which is part of go's cache key:
# go does not track headers outside the package, and a stale object built
# against an older struct layout would test the wrong ABI.
hdr_sum=$(cksum < include/procwide.h | cut -d' ' -f1)
bin=$out/go_nnp
log=$out/build.log
if env CGO_ENABLED=1 CC="${GO_CC:-gcc}" \
	CGO_CFLAGS="-I$root_abs/include -O2 -g -DPROCWIDE_HDR_SUM=$hdr_sum" \
	CGO_LDFLAGS="-L$build_abs -lprocwide -Wl,-rpath,$build_abs" \
	GOCACHE="$out/cache" GOPATH="$out/path" GOMODCACHE="$out/path/pkg/mod" \
	GOENV=off GOPROXY=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
	go build -o "$bin" tests/runtime/go_nnp/main.go >"$log" 2>&1; then
	echo "ok 1 - go build (cgo, $(go version | cut -d' ' -f3)) against $BUILD/libprocwide.so"
	build_ok=1
else
	echo "not ok 1 - go build (cgo) against $BUILD/libprocwide.so"
	sed 's/^/# /' "$log"
	build_ok=0
fi

i=1
fails=0
[ "$build_ok" = 1 ] || fails=1
for c in $CASES; do
	i=$((i + 1))
	if [ "$build_ok" != 1 ]; then
		echo "not ok $i - $c # not built"
		fails=$((fails + 1))
		continue
	fi
	res=$(timeout -k 5 "$TIMEOUT" "$bin" "$c" 2>&1)
	st=$?
	tap_case "$i" "$c" "$st" "$res" || fails=$((fails + 1))
done
[ "$fails" = 0 ]
