// Command embed shows a platform team mounting DataGuardian inside its own
// service: its own mux and routes, DataGuardian's REST API under
// /dataguardian/, the team's own authentication deciding who may do what,
// the engine's scheduler and workers in the background, graceful shutdown.
//
//	go run ./examples/embed --listen 127.0.0.1:8090 --data-dir ./dataguardian-data --allow-path /srv/backups
//	curl -H 'X-Forwarded-User: bob' http://127.0.0.1:8090/dataguardian/api/backups/datasources
//
// Authentication here trusts the X-Forwarded-User header an SSO proxy in
// front of the service sets (oauth2-proxy, for one), so the service must be
// reachable only through that proxy. Swap lookupUser for your session
// store; nothing else changes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dataguardian/dataguardian"
	"github.com/dataguardian/dataguardian/httpapi"
)

// apiPrefix is where DataGuardian's API lives on our mux.
const apiPrefix = "/dataguardian"

// roles maps our users to DataGuardian permissions: alice operates backups
// and restores, bob may only look. Unknown users get no access at all.
var roles = map[string]httpapi.PermissionSet{
	"alice": {httpapi.PermRead, httpapi.PermWrite, httpapi.PermRun, httpapi.PermRestore, httpapi.PermRestoreVerify},
	"bob":   {httpapi.PermRead},
}

// lookupUser is our authentication: the signed-in user and their permissions.
func lookupUser(r *http.Request) (string, httpapi.PermissionSet, error) {
	name := r.Header.Get("X-Forwarded-User")
	perms, ok := roles[name]
	if !ok {
		return "", nil, errors.New("sign in through the company SSO first")
	}
	return name, perms, nil
}

// newHandler is the whole service: our routes plus DataGuardian's API,
// whose event streams end when shutdown is closed.
func newHandler(eng *dataguardian.Engine, shutdown <-chan struct{}) http.Handler {
	api := httpapi.New(eng, &httpapi.Options{
		Done: shutdown,
		// The API is mounted under apiPrefix: its OpenAPI document and
		// /docs page say so.
		BasePath: apiPrefix,
		// Called for every request under /api; a non-nil error answers 401.
		// Permissions attached here are what the API checks (a restore
		// needs backups.restore, 403 otherwise).
		Auth: func(r *http.Request) error {
			_, perms, err := lookupUser(r)
			if err != nil {
				return err
			}
			*r = *r.WithContext(httpapi.WithPermissions(r.Context(), perms))
			return nil
		},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) { // one of our own routes
		name, _, err := lookupUser(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello, %s\n", name)
	})
	// The API's paths are absolute (/health, /api/..., /openapi.json), so it
	// is mounted whole and the prefix stripped before it sees the request.
	mux.Handle(apiPrefix+"/", http.StripPrefix(apiPrefix, api))
	return mux
}

// run serves on ln until ctx is done, with the engine's background work
// (scheduled backups, workers, health checks) running alongside.
// The directories under allowPath are the only ones the API may point
// datasources and local storage locations at: API users are not trusted
// with the service's whole file system.
func run(ctx context.Context, ln net.Listener, dataDir, allowPath string) error {
	eng, err := dataguardian.New(ctx, dataguardian.Config{DataDir: dataDir, AllowedPaths: []string{allowPath},
		AllowedPathsFlag: "--allow-path"})
	if err != nil {
		return err
	}
	defer eng.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	engineDone := make(chan error, 1)
	go func() { engineDone <- eng.Start(ctx) }()

	shutdown := make(chan struct{})
	srv := &http.Server{Handler: newHandler(eng, shutdown), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(func() { close(shutdown) }) // Shutdown waits for requests: end the event streams
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	slog.Info("listening", "url", "http://"+ln.Addr().String())
	select {
	case err = <-serveDone: // the listener failed
		cancel()
	case <-ctx.Done(): // SIGINT/SIGTERM: finish the requests in flight
		shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer stop()
		err = srv.Shutdown(shutdownCtx)
	}
	// Start returns once running backups finished (or hit their shutdown timeout).
	return errors.Join(err, <-engineDone)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	dataDir := flag.String("data-dir", "dataguardian-data", "DataGuardian's metadata database and secret key")
	allowPath := flag.String("allow-path", "/srv/backups", "the directory the API may point datasources and storage locations at")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *listen)
	if err == nil {
		err = run(ctx, ln, *dataDir, *allowPath)
	}
	stop()
	if err != nil {
		slog.Error("embed", "err", err)
		os.Exit(1)
	}
}
