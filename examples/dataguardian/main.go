// Command dataguardian is DataGuardian's reference binary. Its one-shot
// commands need nothing but a storage directory: no server, no metadata
// database.
//
//	dataguardian backup  --type sqlite --dsn /srv/app.db --storage /var/backups
//	dataguardian ls      /var/backups
//	dataguardian verify  /var/backups/sqlite-app/2025-02-13_060001
//	dataguardian restore /var/backups/sqlite-app/2025-02-13_060001 --dsn /srv/app-restored.db
//
// The server runs the HTTP API, the scheduler and the workers on a
// metadata store (SQLite in ./dataguardian-data by default), and token
// manages its API tokens in that store directly:
//
//	dataguardian serve --listen 127.0.0.1:8080 --data-dir ./dataguardian-data
//	dataguardian token create --name ci --permissions read,write,backups.run
//
// Run "dataguardian COMMAND --help" for each command's flags. Exit status:
// 0 success, 1 failure (the error is on stderr), 2 a usage error.
// SIGINT and SIGTERM cancel the running command; a cancelled backup leaves
// no manifest.json, so it is never offered for restore.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newCLI(os.Stdout, os.Stderr, os.Getenv, isTerminal(os.Stderr)).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
