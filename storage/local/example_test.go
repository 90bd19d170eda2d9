package local_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

func ExampleNew() {
	root, err := os.MkdirTemp("", "dataguardian-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	s, err := local.New(root)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Write the manifest last and only once: it marks the backup complete.
	const dir = "42/2025-02-13_060001/"
	if err := s.Put(ctx, dir+"backup.dump.gz", strings.NewReader("compressed dump bytes"), nil); err != nil {
		log.Fatal(err)
	}
	if err := s.Put(ctx, dir+"manifest.json", strings.NewReader(`{"version":1}`), &storage.PutOptions{IfNotExist: true}); err != nil {
		log.Fatal(err)
	}

	objs, err := s.List(ctx, "42/2025")
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range objs {
		fmt.Println(o.Key, o.Size)
	}

	// Resume a read at byte 11.
	rc, err := s.Open(ctx, dir+"backup.dump.gz", 11, 4)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", b)
	// Output:
	// 42/2025-02-13_060001/backup.dump.gz 21
	// 42/2025-02-13_060001/manifest.json 13
	// dump
}
