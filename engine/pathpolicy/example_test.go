package pathpolicy_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/pathpolicy"
)

// The operator allows one root; a files datasource may use a folder under
// it, never a path outside it nor the server's own data directory.
func ExamplePolicy_CheckSource() {
	root, err := os.MkdirTemp("", "policy-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	dataDir := filepath.Join(root, "dataguardian-data")
	for _, dir := range []string{filepath.Join(root, "app"), dataDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			panic(err)
		}
	}
	p, err := pathpolicy.New(pathpolicy.Options{AllowedPaths: []string{root}, DataDir: dataDir, Flag: "--allow-path"}, defaults.Drivers())
	if err != nil {
		panic(err)
	}
	for _, path := range []string{filepath.Join(root, "app"), "/etc", dataDir} {
		err := p.CheckSource(drivers.Source{Type: "files", Path: path})
		fmt.Println(filepath.Base(path), err == nil)
	}
	// Output:
	// app true
	// etc false
	// dataguardian-data false
}
