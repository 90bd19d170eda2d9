// Command dumpspec writes the OpenAPI 3.0 document the current httpapi
// serves, from which package apiclient is generated (see its generate.go).
//
//	go run ./internal/apiclient/cmd/dumpspec -o internal/apiclient/openapi.json
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
	out := flag.String("o", "openapi.json", "file to write the document to (- for stdout)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dumpspec:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string) error {
	doc, err := specgen.Document(ctx)
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
