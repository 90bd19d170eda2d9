# Shared by bench/postgres.sh and bench/mysql.sh (sourced, not run):
# timing, medians, the shell pipe each compression is compared with, and
# the verdict against the targets.

# The shell pipe a compression is measured against: what an operator
# would type. zstd and lz4 at their default levels, gzip through pigz.
declare -A shell_compressor=([zstd]="zstd -q -T0 -3" [gzip]="pigz -q" [lz4]="lz4 -q")
declare -A shell_suffix=([zstd]=zst [gzip]=gz [lz4]=lz4)

for tool in /usr/bin/time bc zstd pigz lz4; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install time bc zstd pigz lz4)" >&2; exit 2; }
done

work=$(mktemp -d)
CGO_ENABLED=0 go build -o "$work/dataguardian" ./examples/dataguardian
dg=$work/dataguardian
missed=0

# median reads numbers, one a line, and prints the middle one.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# timed CMD...: runs CMD once and prints "seconds cpu_seconds peak_kib".
timed() {
	/usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/time"
}

# measure NAME RUNS CMD...: runs CMD RUNS times (with "setup" before each
# when defined) and records the median wall time, the median CPU time and
# the largest peak RSS as NAME_wall, NAME_cpu, NAME_rss.
measure() {
	local name=$1 runs=$2
	shift 2
	: > "$work/$name"
	for _ in $(seq "$runs"); do
		if declare -F setup >/dev/null; then setup; fi
		timed "$@" >> "$work/$name"
	done
	printf -v "${name}_wall" '%s' "$(awk '{print $1}' "$work/$name" | median)"
	printf -v "${name}_cpu" '%s' "$(awk '{print $2}' "$work/$name" | median)"
	printf -v "${name}_rss" '%s' "$(awk '{print $3}' "$work/$name" | sort -n | tail -n1)"
}

# verdict LABEL OURS THEIRS TARGET: prints the ratio OURS/THEIRS and marks
# (and counts) a miss of TARGET.
verdict() {
	local ratio
	ratio=$(echo "$2 / $3" | bc -l)
	if [ "$(echo "$ratio <= $4" | bc -l)" = 1 ]; then
		printf '  %-44s %7.2fs vs %7.2fs  %5.2fx  (target <= %s) ok\n' "$1" "$2" "$3" "$ratio" "$4"
	else
		printf '  %-44s %7.2fs vs %7.2fs  %5.2fx  (target <= %s) MISSED\n' "$1" "$2" "$3" "$ratio" "$4"
		missed=$((missed + 1))
	fi
}

# rss_verdict KIB: peak RSS against the 100 MiB target.
rss_verdict() {
	local mib=$(($1 / 1024))
	if [ "$mib" -lt 100 ]; then
		printf '  %-44s %7d MiB (target < 100) ok\n' "dataguardian peak RSS" "$mib"
	else
		printf '  %-44s %7d MiB (target < 100) MISSED\n' "dataguardian peak RSS" "$mib"
		missed=$((missed + 1))
	fi
}

# finish prints the outcome and exits 1 when a target was missed.
finish() {
	if [ "$missed" -gt 0 ]; then
		echo "$missed target(s) missed"
		exit 1
	fi
	echo "every target met"
}
