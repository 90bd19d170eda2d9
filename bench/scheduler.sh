#!/usr/bin/env bash
# Scheduler figures of issue 5: 10,000 jobs due every minute, enqueue lag
# p99 under 1 s, idle CPU of the scheduler under 5% of one core.
# Usage: bench/scheduler.sh [postgres://USER@HOST:PORT/DB?sslmode=disable] [extra flags]
# Without a URL it runs on SQLite; with one it creates a scratch database on
# that server and drops it after. Exits non-zero when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
if [[ ${1:-} == postgres* ]]; then
	args+=(-database-url "$1")
	shift
fi
bin=$(mktemp -d)/scheduler
trap 'rm -rf "$(dirname "$bin")"' EXIT
CGO_ENABLED=0 go build -o "$bin" ./bench/scheduler
"$bin" "${args[@]}" "$@"
