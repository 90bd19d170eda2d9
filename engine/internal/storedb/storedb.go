// Package storedb lets the packages under engine that keep their own
// tables in the metadata database (the queue) and white-box tests reach
// the store's bun handle. Nothing outside engine can import it, so a
// frontend reaches the metadata only through the store's methods.
package storedb

// Key is the argument of store.Store.DB. Only packages under engine can
// name it, so only they can call that method.
type Key struct{}
