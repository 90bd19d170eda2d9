# Shared by bench/api-latency.sh and bench/console.sh (sourced, not run):
# `dataguardian serve` on a data directory seeded by bench/apiseed, with
# an admin token that never appears in argv. Sourcing it makes $work (a
# temporary directory, removed at exit with the server stopped) and builds
# dataguardian and apiseed there.

work=$(mktemp -d)
server_pid=
trap 'stop_server; rm -rf "$work"' EXIT
echo "building dataguardian and apiseed" >&2
CGO_ENABLED=0 go build -o "$work/dataguardian" ./examples/dataguardian
CGO_ENABLED=0 go build -o "$work/apiseed" ./bench/apiseed

# token_file DIR prints the path of DIR's admin token: a random secret
# kept (mode 0600) in the data directory, so that reruns do not pile up
# tokens in its store.
token_file() {
	local f=$1/bench-admin-token
	if [[ ! -s $f ]]; then
		(umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$f")
	fi
	echo "$f"
}

# start_server DIR starts the server on DIR, the token in its environment,
# and sets base to its URL once it listens (its log: $work/serve.log).
# apiseed's storage locations (DIR/storage/N) are allowed paths.
start_server() {
	DG_ADMIN_TOKEN=$(<"$(token_file "$1")") "$work/dataguardian" serve --data-dir "$1" --listen 127.0.0.1:0 \
		--allow-path "$1/storage" 2>"$work/serve.log" &
	server_pid=$!
	base=
	for _ in $(seq 1 300); do
		if base=$(grep -o -m1 'listening on http://[0-9.:]*' "$work/serve.log" 2>/dev/null); then
			base=${base#listening on }
			return
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "dataguardian serve exited:" >&2
			cat "$work/serve.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "dataguardian serve did not print 'listening on' within 30 s:" >&2
	cat "$work/serve.log" >&2
	exit 1
}

# stop_server ends the server with SIGTERM and waits for it.
stop_server() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		wait "$server_pid" || true
	fi
}
