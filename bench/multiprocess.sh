#!/usr/bin/env bash
# Multi-process measurement of issue 5: three engine processes on one
# PostgreSQL metadata database.
#   - 200 due jobs: each runs exactly once; prints how long until all 200
#     backups completed and how they were shared among the processes.
#   - SIGKILL of a process in the middle of a backup: prints how long until
#     another process recovered and completed it (lease 2 s + the queue's
#     recovery backoff, 24-30 s by default).
# Usage: bench/multiprocess.sh [extra go test flags, e.g. -race or -count=3]
# Needs: PostgreSQL on 127.0.0.1:5432 (or DG_TEST_POSTGRES_DSN); fails
# instead of skipping when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DG_REQUIRE_SERVICES=1
go test -count=1 -run '^TestMultiProcess' -v "$@" ./engine/ 2>&1 |
	grep -E '^(=== RUN|--- |\s+multiprocess_test.go|PASS|FAIL|ok)' |
	grep -v 'TestMultiProcessChild'
