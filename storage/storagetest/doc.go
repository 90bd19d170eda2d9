// Package storagetest is the conformance suite every storage.Storage
// implementation runs, in or out of this module:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Storage {
//			s, err := mystorage.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run checks the contract written on storage.Storage: round trips of several
// sizes, overwrite, IfNotExist, ranged reads, missing keys, idempotent
// Delete, a complete and sorted 1,500-key listing with prefix filtering,
// invalid keys on every method, failing and cancelled Puts leaving the old
// object or nothing, concurrent Puts of distinct and of the same key, and
// Rename through storage.Rename (with and without the Renamer capability).
//
// Beyond the written contract the suite expects Put to return an error
// wrapping the reader's error when the reader fails, and an error matching
// context.Canceled when its context is cancelled mid-stream. For a List
// prefix that fails storage.ValidatePrefix it accepts either an error
// matching storage.ErrInvalidKey or an empty result.
package storagetest
