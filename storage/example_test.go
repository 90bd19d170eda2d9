package storage_test

import (
	"fmt"

	"github.com/dataguardian/dataguardian/storage"
)

// Keys are clean, relative, slash-separated paths; anything that could
// escape the storage root is refused.
func ExampleValidateKey() {
	for _, key := range []string{"job/2025-02-13_060001/manifest.json", "../etc/passwd", "/abs", "a//b"} {
		fmt.Printf("%-38s %v\n", key, storage.ValidateKey(key) == nil)
	}
	// Output:
	// job/2025-02-13_060001/manifest.json    true
	// ../etc/passwd                          false
	// /abs                                   false
	// a//b                                   false
}
