#!/usr/bin/env bash
# Compares DataGuardian with the plain PostgreSQL tools on a pgbench database:
#   backup:  dataguardian backup --compression zstd   vs  pg_dump -Fc -Z0 | zstd -T0 > file
#   restore: dataguardian restore (checksum pass included)  vs  pg_restore of the plain dump
# and reports wall-time ratios and DataGuardian's peak RSS (median of RUNS runs).
# Usage: bench/postgres.sh [scale (default 20)] [runs (default 3)]
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), pgbench, pg_dump, zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-20}
runs=${2:-3}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
work=$(mktemp -d)
src=dgbench_src
trap 'rm -rf "$work"; for d in $src dgbench_t1 dgbench_t2; do psql -qXc "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres >/dev/null 2>&1 || true; done' EXIT

CGO_ENABLED=0 go build -o "$work/dataguardian" ./examples/dataguardian
psql -qXc "DROP DATABASE IF EXISTS $src WITH (FORCE)" postgres 2>/dev/null
psql -qXc "CREATE DATABASE $src" postgres
pgbench -q -i -s "$scale" "$src" >/dev/null 2>&1
size=$(psql -qAtXc "SELECT pg_size_pretty(pg_database_size('$src'))" postgres)
echo "pgbench -i -s $scale: database $size"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timed CMD...: prints "seconds peak_kib" of one run
timed() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/time"; }

for i in $(seq "$runs"); do
	rm -rf "$work/storage" "$work/plain.dump.zst"
	timed sh -c "pg_dump -Fc -Z0 $src | zstd -q -T0 > $work/plain.dump.zst" | awk '{print $1}' >> "$work/shell_backup"
	timed "$work/dataguardian" backup --type postgres --dsn "postgres://postgres@127.0.0.1:5432/$src?sslmode=disable" \
		--storage "$work/storage" --compression zstd >> "$work/dg_backup"
done
run=$(find "$work/storage" -name manifest.json -printf '%h\n' | head -n1)
zstd -q -d -c "$work/plain.dump.zst" > "$work/plain.dump"

plain_restore() { timed pg_restore --no-owner --no-acl -d dgbench_t1 "$work/plain.dump" | awk '{print $1}' >> "$work/shell_restore"; }
dg_restore() { timed "$work/dataguardian" restore "$run" --dsn "postgres://postgres@127.0.0.1:5432/dgbench_t2?sslmode=disable" >> "$work/dg_restore"; }
for i in $(seq "$runs"); do
	for d in dgbench_t1 dgbench_t2; do psql -qXc "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres 2>/dev/null; psql -qXc "CREATE DATABASE $d" postgres; done
	# Alternate the order and checkpoint first, so neither side pays for the
	# other's writes.
	psql -qXc CHECKPOINT postgres
	if [ $((i % 2)) = 1 ]; then plain_restore; psql -qXc CHECKPOINT postgres; dg_restore
	else dg_restore; psql -qXc CHECKPOINT postgres; plain_restore; fi
done
rows1=$(psql -qAtXc "SELECT count(*) FROM pgbench_accounts" dgbench_t1)
rows2=$(psql -qAtXc "SELECT count(*) FROM pgbench_accounts" dgbench_t2)
[ "$rows1" = "$rows2" ] || { echo "row counts differ: $rows1 vs $rows2" >&2; exit 1; }

sb=$(median < "$work/shell_backup"); db=$(awk '{print $1}' "$work/dg_backup" | median)
sr=$(median < "$work/shell_restore"); dr=$(awk '{print $1}' "$work/dg_restore" | median)
rss=$(cat "$work/dg_backup" "$work/dg_restore" | awk '{print $2}' | sort -n | tail -n1)
printf 'backup : pg_dump|zstd %6.2fs  dataguardian %6.2fs  ratio %.2f (target <= 1.10)\n' "$sb" "$db" "$(echo "$db / $sb" | bc -l)"
printf 'restore: pg_restore   %6.2fs  dataguardian %6.2fs  ratio %.2f (target <= 1.15)\n' "$sr" "$dr" "$(echo "$dr / $sr" | bc -l)"
printf 'dataguardian peak RSS %d MiB (target < 100); %s rows of pgbench_accounts restored by both\n' $((rss / 1024)) "$rows2"
