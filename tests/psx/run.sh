#!/bin/sh
# tests/psx/run.sh debian|procwide BUILD TEST [ARGS...]
# Runs one libpsx test program (built against the installed libpsx) against
# the chosen libpsx.so.2, for prove --exec.  The program learns which one
# from PSX_IMPL, checks from PSX_LIB that it really got it, and holds each
# library to its own documented behaviour (procwide's: man/procwide-psx.7).
set -e
impl=$1 build=$2
shift 2
case $impl in
debian)
	PSX_LIB=$(${CC:-gcc} -print-file-name=libpsx.so.2)
	unset LD_LIBRARY_PATH
	;;
procwide)
	dir=$(cd "$build" && pwd)
	PSX_LIB=$dir/libpsx.so.2
	LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export LD_LIBRARY_PATH
	;;
*)
	echo "usage: $0 debian|procwide BUILD TEST [ARGS...]" >&2
	exit 2
	;;
esac
if [ ! -e "$PSX_LIB" ]; then
	echo "1..0 # SKIP no $impl libpsx.so.2 at $PSX_LIB"
	exit 0
fi
PSX_IMPL=$impl
export PSX_IMPL PSX_LIB
unset LD_PRELOAD
exec "$@"
