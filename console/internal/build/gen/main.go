// Command gen regenerates the console's API table and bundle; run it with
// `go generate ./console` (from the console folder it uses relative paths).
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/dataguardian/dataguardian/console/internal/build"
)

func main() {
	spec, err := os.ReadFile(build.Spec)
	if err != nil {
		log.Fatal(err)
	}
	table, err := build.APITable(spec)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("src", "api.gen.js"), table, 0o644); err != nil {
		log.Fatal(err)
	}
	files, err := build.Bundle("src")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.RemoveAll("dist"); err != nil {
		log.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join("dist", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
