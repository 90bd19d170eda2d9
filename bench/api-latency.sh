#!/usr/bin/env bash
# API list latency at scale. Target (issue): with 1,000 datasources and
# 10,000 executions in the SQLite store, GET /api/datasources and
# GET /api/backup-jobs/:id/executions?limit=50 answer with p99 under 20 ms at
# 200 requests/s. Also measured: GET /api/backup-jobs and the executions list
# with status=completed.
#
# Steps: build ./examples/dataguardian and ./bench/apiseed; seed a data
# directory (kept and reused when it already holds the same counts); start
# `dataguardian serve --data-dir DIR --listen 127.0.0.1:0` with DG_ADMIN_TOKEN
# set; warm up; then load each endpoint at a fixed rate with the bearer
# token and print p50/p90/p99/max, errors and the server's CPU time per
# request (less sensitive than latency to other load on the machine), and the
# server's RSS at the end.
#
# Load tool: vegeta (github.com/tsenart/vegeta, built with `go install` from
# the Go module proxy into $DG_BENCH_TOOLS, default ~/.cache/dataguardian-bench).
# It sends at a fixed arrival rate whatever the response times (an open
# model: unlike wrk or hey, a slow answer does not hold back the next
# request, so queueing shows in the latencies). The percentiles are exact:
# computed here from every request's latency (vegeta encode --to csv), not
# vegeta's t-digest estimates.
#
# Usage: bench/api-latency.sh
# Environment: RATE (200), DURATION (30s per endpoint), WARMUP (5s per
# endpoint, at RATE/4), DATASOURCES (1000), EXECUTIONS (10000), HOT (2000:
# executions of the busiest job, the one measured), TARGET_P99_MS (20),
# DATA_DIR (default ${TMPDIR:-/tmp}/dg-api-latency-DATASOURCESxEXECUTIONS).
# The token never appears in argv: it goes to the server in its environment
# and to vegeta and curl in 0600 files (kept in DATA_DIR/bench-admin-token).
# Exits non-zero when a request failed or a target endpoint missed its p99.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${RATE:-200}
duration=${DURATION:-30s}
warmup=${WARMUP:-5s}
datasources=${DATASOURCES:-1000}
executions=${EXECUTIONS:-10000}
hot=${HOT:-2000}
target_ms=${TARGET_P99_MS:-20}
data_dir=${DATA_DIR:-${TMPDIR:-/tmp}/dg-api-latency-${datasources}x${executions}}
tools=${DG_BENCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/dataguardian-bench}
vegeta_version=v12.13.0

source bench/serve.sh # $work, the server, dataguardian and apiseed built in $work

echo "building vegeta $vegeta_version" >&2
vegeta=$tools/vegeta-$vegeta_version
if [[ ! -x $vegeta ]]; then
	mkdir -p "$tools"
	GOBIN=$work CGO_ENABLED=0 go install "github.com/tsenart/vegeta/v12@$vegeta_version"
	mv "$work/vegeta" "$vegeta"
fi

# Seed, or reuse a directory seeded with the same counts. A directory
# without apiseed's marker (an interrupted seed) is started over.
if [[ -d $data_dir && ! -f $data_dir/apiseed.json ]]; then
	rm -rf "$data_dir"
fi
seed_start=$SECONDS
job=$("$work/apiseed" -data-dir "$data_dir" -datasources "$datasources" -executions "$executions" -hot "$hot")
echo "seed: $data_dir ($((SECONDS - seed_start)) s; reused while the counts are unchanged)"

# The admin token (bench/serve.sh) reaches vegeta and curl in a 0600 file.
umask 077
printf 'Authorization: Bearer %s\n' "$(<"$(token_file "$data_dir")")" >"$work/auth-header"
start_server "$data_dir"
echo "server: $base (pid $server_pid), rate ${rate}/s for $duration per endpoint, each after a $warmup warm-up" >&2

# Every endpoint must answer 200 before it is loaded.
endpoints=(
	"datasources|/api/datasources"
	"executions|/api/backup-jobs/$job/executions?limit=50"
	"executions-completed|/api/backup-jobs/$job/executions?status=completed&limit=50"
	"backup-jobs|/api/backup-jobs"
)
for e in "${endpoints[@]}"; do
	path=${e#*|}
	code=$(curl -s -o "$work/body" -w '%{http_code}' -H @"$work/auth-header" "$base$path")
	if [[ $code != 200 ]]; then
		echo "GET $path answered $code:" >&2
		head -c 2000 "$work/body" >&2
		exit 1
	fi
	printf '  %-22s %7d bytes, %5d items\n' "${e%%|*}" "$(wc -c <"$work/body")" "$(grep -o '"id":' "$work/body" | wc -l)" >&2
done

# attack NAME PATH DURATION RATE writes every request's result to
# $work/NAME.csv.
attack() {
	local name=$1 path=$2 dur=$3 per_s=$4
	{
		echo "GET $base$path"
		cat "$work/auth-header"
	} >"$work/$name.targets"
	"$vegeta" attack -rate="$per_s/s" -duration="$dur" -timeout=10s -targets="$work/$name.targets" |
		"$vegeta" encode --to csv >"$work/$name.csv"
}

# server_cpu_ms prints the CPU time (user + system) the server has used.
hz=$(getconf CLK_TCK)
server_cpu_ms() { awk -v hz="$hz" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$server_pid/stat"; }

failed=0
printf '\n%-22s %8s %8s %8s %8s %8s %8s %7s %12s\n' endpoint requests "rate/s" "p50 ms" "p90 ms" "p99 ms" "max ms" errors "cpu ms/req"
for e in "${endpoints[@]}"; do
	name=${e%%|*}
	# Warm up at a quarter of the rate (an overloaded endpoint must not
	# start its measured run behind a backlog), then let the server settle.
	attack "warmup-$name" "${e#*|}" "$warmup" $((rate / 4))
	sleep 2
	cpu0=$(server_cpu_ms)
	attack "$name" "${e#*|}" "$duration" "$rate"
	cpu1=$(server_cpu_ms)
	# CSV columns: timestamp (ns), status code, latency (ns), bytes out,
	# bytes in, error, body, attack, seq, method, url, headers.
	read -r n span errors p50 p90 p99 max < <(
		awk -F, '{ print $3, $1, ($2 == 200 ? 0 : 1) }' "$work/$name.csv" | sort -n -k1,1 | awk '
			{ lat[NR] = $1; if (NR == 1 || $2 < t0) t0 = $2; if ($2 > t1) t1 = $2; err += $3 }
			function pct(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return lat[i] / 1e6 }
			END { printf "%d %.3f %d %.2f %.2f %.2f %.2f\n", NR, (t1 - t0) / 1e9, err, pct(0.50), pct(0.90), pct(0.99), lat[NR] / 1e6 }'
	)
	printf '%-22s %8d %8.1f %8.2f %8.2f %8.2f %8.2f %7d %12.2f\n' "$name" "$n" \
		"$(awk -v n="$n" -v s="$span" 'BEGIN { print (s > 0 ? (n - 1) / s : 0) }')" \
		"$p50" "$p90" "$p99" "$max" "$errors" "$(awk -v c=$((cpu1 - cpu0)) -v n="$n" 'BEGIN { print c / n }')"
	if ((errors > 0)); then
		failed=1
		echo "  $name: $errors failed requests, e.g.:" >&2
		awk -F, '$2 != 200 { print "  code " $2 ": " $6; if (++k == 3) exit }' "$work/$name.csv" >&2
	fi
	case $name in datasources | executions)
		if ! awk -v p="$p99" -v t="$target_ms" 'BEGIN { exit !(p < t) }'; then
			echo "  $name: p99 ${p99} ms is not under ${target_ms} ms" >&2
			failed=1
		fi
		;;
	esac
done

rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$server_pid/status")
printf '\nserver after the run: RSS %d MiB (peak %d MiB), CPU %.1f s in all; load average %s\n' \
	$((rss / 1024)) $((hwm / 1024)) "$(awk -v ms="$(server_cpu_ms)" 'BEGIN { print ms / 1000 }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q -i 'level=error' "$work/serve.log"; then
	echo "server logged errors, e.g.:" >&2
	grep -i -m 5 'level=error' "$work/serve.log" >&2
fi
exit $failed
