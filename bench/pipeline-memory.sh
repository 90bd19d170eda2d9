#!/usr/bin/env bash
# Pushes a large SQL-like stream (default 2 GiB) through the backup pipeline
# into local storage and reads it back, under /usr/bin/time -v, and checks
# that the peak RSS stays under a limit (default 64 MiB).
# Usage: bench/pipeline-memory.sh [size-mb] [compression] [limit-mib]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2048}
comp=${2:-zstd}
limit=${3:-64}
bin=$(mktemp -d)/pipemem
trap 'rm -rf "$(dirname "$bin")"' EXIT
CGO_ENABLED=0 go build -o "$bin" ./bench/pipemem
out=$(/usr/bin/time -v "$bin" -size-mb "$size" -compression "$comp" 2>&1)
echo "$out" | grep -E '^backup:|Maximum resident|Elapsed'
rss_kb=$(echo "$out" | awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}')
rss_mib=$((rss_kb / 1024))
echo "peak RSS ${rss_mib} MiB for ${size} MiB through ${comp} (limit ${limit} MiB)"
[ "$rss_mib" -lt "$limit" ]
