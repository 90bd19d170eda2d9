#!/usr/bin/env bash
# DataGuardian against the plain MariaDB/MySQL tools on a realistic data
# set: ROWS rows of events (ids, times, account names, 96 hex digits of
# random bytes, amounts, statuses, some free text: a dump that compresses
# about 2:1). For zstd, gzip and lz4: `dataguardian backup` vs
# `mariadb-dump --single-transaction | zstd -T0 -3` (pigz, lz4); then
# `dataguardian restore` (checksum pass included) vs `mariadb < dump`.
# Wall-time ratios of the medians of RUNS runs, CPU time, sizes, peak RSS;
# exits 1 when a target is missed: backup <= 1.0x its shell pipe, restore
# <= 1.10x, peak RSS < 100 MiB.
# Usage: bench/mysql.sh [runs (default 3)] [rows (default 2000000)]
# Needs: MariaDB on 127.0.0.1:3306 (root, no password), mariadb-dump,
# mariadb, zstd, pigz, lz4, bc, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rows=${2:-2000000}
source bench/lib.sh
src=dgbench_src
my() { mariadb -h 127.0.0.1 -P 3306 -u root "$@"; }
trap 'rm -rf "$work"; for d in $src dgbench_t1 dgbench_t2; do my -e "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done' EXIT
dsn() { echo "mysql://root@127.0.0.1:3306/$1"; }
fresh() { my -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1"; }
dump="mariadb-dump -h 127.0.0.1 -P 3306 -u root --single-transaction --routines --triggers --events --hex-blob $src"

fresh "$src"
my "$src" <<-SQL
	CREATE TABLE events (id BIGINT PRIMARY KEY, at DATETIME NOT NULL, account VARCHAR(32) NOT NULL,
	  token CHAR(64) NOT NULL, session CHAR(32) NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(10) NOT NULL,
	  note VARCHAR(200)) ENGINE=InnoDB;
	INSERT INTO events
	SELECT seq, '2024-01-01' + INTERVAL seq * 7 SECOND, CONCAT('acct-', seq % 50000),
	       CONCAT(MD5(CONCAT(seq, RAND())), MD5(RAND())), MD5(RAND()), ROUND(RAND() * 10000, 2),
	       ELT(1 + seq % 4, 'paid', 'pending', 'refunded', 'failed'),
	       IF(seq % 3 = 0, CONCAT('customer asked about order ', seq % 100000), NULL)
	FROM seq_1_to_$rows;
	ANALYZE TABLE events;
SQL
echo "realistic: $rows rows, $(my -NBe "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = '$src'") MiB"

$dump > /dev/null # warm the cache before the first timed run
for comp in lz4 gzip zstd; do # zstd last: its backup is the one restored
	plain=$work/plain.${shell_suffix[$comp]}
	unset -f setup
	measure shell "$runs" sh -c "$dump | ${shell_compressor[$comp]} > $plain"
	setup() { rm -rf "$work/storage"; }
	measure ours "$runs" "$dg" backup --type mariadb --dsn "$(dsn "$src")" --storage "$work/storage" --compression "$comp"
	verdict "backup $comp vs mariadb-dump | ${shell_compressor[$comp]%% *}" "$ours_wall" "$shell_wall" 1.0
	printf '  %-44s cpu %.2fs vs %.2fs, size %s vs %s bytes\n' "" "$ours_cpu" "$shell_cpu" \
		"$(find "$work/storage" -type f -name 'backup.*' -printf '%s\n' | awk '{s+=$1} END {print s}')" "$(stat -c %s "$plain")"
	rss_verdict "$ours_rss"
done
run=$(find "$work/storage" -name manifest.json -printf '%h\n' | head -n1)
$dump > "$work/plain.sql"
setup() { fresh dgbench_t1; }
measure shell "$runs" sh -c "mariadb -h 127.0.0.1 -P 3306 -u root dgbench_t1 < $work/plain.sql"
setup() { fresh dgbench_t2; }
measure ours "$runs" "$dg" restore "$run" --dsn "$(dsn dgbench_t2)"
unset -f setup
verdict "restore (zstd backup) vs mariadb < dump" "$ours_wall" "$shell_wall" 1.10
rss_verdict "$ours_rss"
n1=$(my -NBe "SELECT COUNT(*) FROM dgbench_t1.events")
n2=$(my -NBe "SELECT COUNT(*) FROM dgbench_t2.events")
[ "$n1" = "$n2" ] || { echo "row counts differ: $n1 vs $n2" >&2; exit 1; }
echo "  $n2 rows of events restored by both"
finish
