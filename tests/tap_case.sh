# Sourced by the runtime test scripts: the TAP line of one case.
# tap_case NUMBER NAME STATUS OUTPUT prints the case's output as TAP
# comments, then its ok/not ok line (77 is a skip, whose reason is the
# output's "skip: " line; 124 and 137 are timeout's), and returns 1 if the
# case failed.
tap_case() {
	printf '%s\n' "$4" | grep -v -e '^skip: ' -e '^$' | sed -e '/^# /!s/^/# /'
	case $3 in
	0) echo "ok $1 - $2" ;;
	77) echo "ok $1 - $2 # SKIP $(printf '%s\n' "$4" | sed -n 's/^skip: //p' | head -n1)" ;;
	124 | 137)
		echo "not ok $1 - $2 # timed out after $TIMEOUT s"
		return 1
		;;
	*)
		if [ "$3" -gt 128 ]; then
			echo "not ok $1 - $2 # killed by signal $(($3 - 128))"
		else
			echo "not ok $1 - $2 # exit status $3"
		fi
		return 1
		;;
	esac
}
