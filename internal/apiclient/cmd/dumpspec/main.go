// Command dumpspec writes the OpenAPI 3.0 document the current httpapi
// serves, from which package apiclient is generated (see its generate.go),
// and with -o31 the 3.1 document.
//
//	go run ./internal/apiclient/cmd/dumpspec -o internal/apiclient/openapi.json -o31 internal/apiclient/openapi-3.1.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/dataguardian/dataguardian/internal/apiclient/specgen"
)

func main() {
	out := flag.String("o", "openapi.json", "file to write the OpenAPI 3.0 document to (- for stdout)")
	out31 := flag.String("o31", "", "file to write the OpenAPI 3.1 document to (\"\" for none)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, specgen.Path, *out)
	if err == nil && *out31 != "" {
		err = run(ctx, specgen.Path31, *out31)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dumpspec:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path, out string) error {
	doc, err := specgen.Document(ctx, path)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
