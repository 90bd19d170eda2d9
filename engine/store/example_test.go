package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dataguardian/dataguardian/engine/store"
)

// Open creates (or upgrades) the metadata database; every row the engine
// keeps goes through the store's methods.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "dataguardian.db"))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	ds := &store.Datasource{Name: "orders", Type: "postgres", Host: "127.0.0.1", Port: 5432,
		Database: "orders", Username: "backup", Enabled: true}
	if err := s.CreateDatasource(ctx, ds); err != nil {
		panic(err)
	}
	got, err := s.GetDatasource(ctx, ds.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Name, got.Type, got.Status)
	// Output:
	// orders postgres unknown
}
