#!/usr/bin/env bash
# DataGuardian against the plain PostgreSQL tools, on two data sets:
#   pgbench    pgbench -i -s SCALE (compresses ~50:1, unlike most data)
#   realistic  ROWS rows of events: ids, times, account names, 64 hex digits
#              of random bytes and a random UUID, amounts, statuses, some
#              free text (a dump that compresses about 2:1, like most
#              production tables)
# For zstd, gzip and lz4: `dataguardian backup` vs `pg_dump -Fc -Z0 | zstd
# -T0 -3` (pigz, lz4); then `dataguardian restore` (checksum pass included)
# vs `pg_restore` of the plain dump. Wall-time ratios of the medians of RUNS
# runs, CPU time, sizes, peak RSS; exits 1 when a target is missed:
# backup <= 1.0x its shell pipe, restore <= 1.10x, peak RSS < 100 MiB.
# Usage: bench/postgres.sh [pgbench|realistic|both (default both)] [runs (default 3)] [scale (default 20)] [rows (default 2700000, about 700 MB)]
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), pgbench, pg_dump, pg_restore, zstd, pigz, lz4, bc, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
sets=${1:-both}
runs=${2:-3}
scale=${3:-20}
rows=${4:-2700000}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
source bench/lib.sh
src=dgbench_src
trap 'rm -rf "$work"; for d in $src dgbench_t1 dgbench_t2; do psql -qXc "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres >/dev/null 2>&1 || true; done' EXIT
dsn() { echo "postgres://postgres@127.0.0.1:5432/$1?sslmode=disable"; }
fresh() { psql -qXc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" postgres 2>/dev/null; psql -qXc "CREATE DATABASE $1" postgres; }

load_pgbench() { pgbench -q -i -s "$scale" "$src" >/dev/null 2>&1; }
load_realistic() {
	psql -qX -v ON_ERROR_STOP=1 -v rows="$rows" "$src" <<-'SQL' >/dev/null
		CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL, account text NOT NULL,
		  token text NOT NULL, session uuid NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, note text);
		INSERT INTO events
		SELECT g, timestamptz '2024-01-01' + g * interval '7 seconds', 'acct-' || (g % 50000),
		       md5(g::text || random()::text) || md5(random()::text), gen_random_uuid(), round((random() * 10000)::numeric, 2),
		       (ARRAY['paid', 'pending', 'refunded', 'failed'])[1 + g % 4],
		       CASE WHEN g % 3 = 0 THEN 'customer asked about order ' || (g % 100000) || ' on ' || to_char(now(), 'YYYY-MM-DD') END
		FROM generate_series(1, :rows) g;
		VACUUM ANALYZE events;
	SQL
}
# The biggest table of each set, whose rows both restores must hold.
declare -A check_table=([pgbench]=pgbench_accounts [realistic]=events)

bench_set() {
	local set=$1 comp plain run
	fresh "$src"
	"load_$set"
	echo "$set: database $(psql -qAtXc "SELECT pg_size_pretty(pg_database_size('$src'))" postgres)"
	unset -f setup
	pg_dump -Fc -Z0 "$src" > /dev/null # warm the cache before the first timed run
	for comp in lz4 gzip zstd; do # zstd last: its backup is the one restored
		plain=$work/plain.${shell_suffix[$comp]}
		measure shell "$runs" sh -c "pg_dump -Fc -Z0 $src | ${shell_compressor[$comp]} > $plain"
		setup() { rm -rf "$work/storage"; }
		measure ours "$runs" "$dg" backup --type postgres --dsn "$(dsn "$src")" --storage "$work/storage" --compression "$comp"
		unset -f setup
		verdict "backup $comp vs pg_dump | ${shell_compressor[$comp]%% *}" "$ours_wall" "$shell_wall" 1.0
		printf '  %-44s cpu %.2fs vs %.2fs, size %s vs %s bytes\n' "" "$ours_cpu" "$shell_cpu" \
			"$(find "$work/storage" -type f -name 'backup.*' -printf '%s\n' | awk '{s+=$1} END {print s}')" "$(stat -c %s "$plain")"
		rss_verdict "$ours_rss"
	done
	run=$(find "$work/storage" -name manifest.json -printf '%h\n' | head -n1) # the zstd backup
	pg_dump -Fc -Z0 -f "$work/plain.dump" "$src"
	setup() { fresh dgbench_t1; psql -qXc CHECKPOINT postgres; }
	measure shell "$runs" pg_restore --no-owner --no-acl -d dgbench_t1 "$work/plain.dump"
	setup() { fresh dgbench_t2; psql -qXc CHECKPOINT postgres; }
	measure ours "$runs" "$dg" restore "$run" --dsn "$(dsn dgbench_t2)"
	unset -f setup
	verdict "restore (zstd backup) vs pg_restore" "$ours_wall" "$shell_wall" 1.10
	rss_verdict "$ours_rss"
	local t=${check_table[$set]} n1 n2
	n1=$(psql -qAtXc "SELECT count(*) FROM $t" dgbench_t1)
	n2=$(psql -qAtXc "SELECT count(*) FROM $t" dgbench_t2)
	[ "$n1" = "$n2" ] || { echo "row counts of $t differ: $n1 vs $n2" >&2; exit 1; }
	echo "  $n2 rows of $t restored by both"
}

case $sets in
pgbench | realistic) bench_set "$sets" ;;
both) bench_set realistic; bench_set pgbench ;;
*) echo "usage: bench/postgres.sh [pgbench|realistic|both] [runs] [scale] [rows]" >&2; exit 2 ;;
esac
finish
