#!/bin/sh
# make install into a staging folder, then build and run an outside program
# against the installed library through pkg-config, as a user would.
set -u
cd "$(dirname "$0")/.." || exit 1
echo "1..3"
rc=0; reason=$(tests/need pkg-config 2>&1) || rc=$?
if [ "$rc" = 1 ]; then echo "ok 1 # SKIP ${reason#SKIP: }"; echo "ok 2 # SKIP"; echo "ok 3 # SKIP"; exit 0; fi
if [ "$rc" != 0 ]; then echo "not ok 1 pkg-config # ${reason#FAIL: }"; exit 1; fi
stage=$(mktemp -d "${TMPDIR:-/tmp}/procwide-install.XXXXXX") || exit 1
trap 'rm -rf "$stage"' EXIT
if make -s BUILD=build/gcc CC=gcc PREFIX=/usr/local DESTDIR="$stage" install >"$stage/log" 2>&1; then
	echo "ok 1 make install"
else
	echo "not ok 1 make install"; sed 's/^/# /' "$stage/log"; exit 1
fi
cat >"$stage/outside.c" <<'C'
#include <procwide.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
int main(void)
{
	long r = procwide_syscall(SYS_prctl, PR_SET_TIMERSLACK, 54321, 0, 0, 0, 0);
	printf("%ld %ld\n", r, (long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	return r != 0;
}
C
pc="$stage/usr/local/lib/pkgconfig"
flags=$(PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$stage" pkg-config --cflags --libs procwide)
if cc -o "$stage/outside" "$stage/outside.c" $flags >"$stage/log" 2>&1; then
	echo "ok 2 an outside program builds with pkg-config --cflags --libs procwide"
else
	echo "not ok 2 build with: $flags"; sed 's/^/# /' "$stage/log"; exit 1
fi
out=$(LD_LIBRARY_PATH="$stage/usr/local/lib" "$stage/outside")
if [ "$out" = "0 54321" ]; then
	echo "ok 3 and runs against the installed libprocwide.so.0"
else
	echo "not ok 3 output: $out"; exit 1
fi
for f in usr/local/include/procwide.h usr/local/lib/libprocwide.so.0 usr/local/lib/libprocwide.a \
	usr/local/bin/procwide usr/local/share/man/man1/procwide.1 usr/local/share/man/man3/procwide_run.3; do
	[ -e "$stage/$f" ] || { echo "# missing after install: $f"; exit 1; }
done
