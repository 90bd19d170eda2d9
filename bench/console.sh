#!/usr/bin/env bash
# The web console at scale (issue 14): with 1,000 datasources and 10,000
# executions (bench/apiseed), the dashboard and the Backups tab must show
# their data within 1 s of a load in headless Chromium. Prints, per page,
# the worst of RUNS loads: first contentful paint, the time until the
# page shows the API's data (the console's "dg:render" mark), the table
# rows drawn and the bytes transferred; and the console's own files on a
# first, uncached load. Exits 1 when a page misses the target.
#
# Usage: bench/console.sh
# Environment: RUNS (5), DATASOURCES (1000), EXECUTIONS (10000), TARGET (1s),
# DATA_DIR (default ${TMPDIR:-/tmp}/dg-console-DATASOURCESxEXECUTIONS, reused
# while the counts are unchanged). Needs chromium (apt-get install chromium).
# The token never appears in argv: the server gets it in its environment,
# the measuring program in a 0600 file.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
datasources=${DATASOURCES:-1000}
executions=${EXECUTIONS:-10000}
target=${TARGET:-1s}
data_dir=${DATA_DIR:-${TMPDIR:-/tmp}/dg-console-${datasources}x${executions}}

source bench/serve.sh # $work, the server, dataguardian and apiseed built in $work

echo "building consoleload" >&2
CGO_ENABLED=0 go build -o "$work/consoleload" ./bench/consoleload

if [[ -d $data_dir && ! -f $data_dir/apiseed.json ]]; then
	rm -rf "$data_dir" # an interrupted seed
fi
"$work/apiseed" -data-dir "$data_dir" -datasources "$datasources" -executions "$executions" >/dev/null
echo "seeded $data_dir: $datasources datasources, $executions executions"

start_server "$data_dir"
"$work/consoleload" -url "$base" -token-file "$(token_file "$data_dir")" -runs "$runs" -target "$target"
