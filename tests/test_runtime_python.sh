#!/bin/sh
# SPDX-License-Identifier: MIT
# CPython threads + ctypes loading libprocwide.so: one procwide call must
# reach every thread of a Python process.  Each case runs in a fresh python
# process (the changes cannot be undone).  TAP output.
#
# Environment: BUILD (default build/gcc, the build whose libprocwide.so is
# tested), PYTHON (default python3), CI=true (a missing python3 is a
# failure, not a skip), TEST_TIMEOUT (seconds per case, default 60).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/tap_case.sh
BUILD=${BUILD:-build/gcc}
PYTHON=${PYTHON:-python3}
TIMEOUT=${TEST_TIMEOUT:-60}
CASES="nnp run-report timerslack app-signal"

rc=0
reason=$(tests/need "$PYTHON" 2>&1) || rc=$?
if [ "$rc" = 1 ]; then
	echo "1..0 # SKIP ${reason#SKIP: }"
	exit 0
elif [ "$rc" != 0 ]; then
	echo "1..1"
	echo "not ok 1 - $PYTHON # ${reason#FAIL: }"
	exit 1
fi

if [ ! -e "$BUILD/libprocwide.so" ]; then
	echo "Bail out! $BUILD/libprocwide.so is missing (make BUILD=$BUILD lib)"
	exit 1
fi
lib=$(cd "$BUILD" && pwd)/libprocwide.so

echo "1..$(echo $CASES | wc -w)"
echo "# $("$PYTHON" -c 'import sys; print("Python", sys.version.split()[0], sys.executable)' 2>&1)"
i=0
fails=0
for c in $CASES; do
	i=$((i + 1))
	res=$(PROCWIDE_LIB=$lib PYTHONDONTWRITEBYTECODE=1 \
		timeout -k 5 "$TIMEOUT" "$PYTHON" tests/runtime/python_nnp.py "$c" 2>&1)
	st=$?
	tap_case "$i" "$c" "$st" "$res" || fails=$((fails + 1))
done
[ "$fails" = 0 ]
