// Package testcheck holds the assertions that the tests of several
// packages share, where a white-box test cannot import a helper package
// of its own (engine/store's tests, below engine/internal/storetest).
package testcheck

import (
	"reflect"
	"testing"
)

// NoErr stops the test when err is not nil, naming what failed.
func NoErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Same fails the test unless got equals want field by field, naming what
// made the round trip.
func Same[T any](t testing.TB, what string, got, want *T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s round trip differs:\n got %+v\nwant %+v", what, got, want)
	}
}
