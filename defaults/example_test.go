package defaults_test

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dataguardian/dataguardian/defaults"
)

// The built-in drivers, by datasource type, and the built-in storage
// types: a program that registers a driver of its own starts from these.
func ExampleDrivers() {
	types := defaults.Drivers().Types()
	slices.Sort(types)
	fmt.Println(types)
	fmt.Println(slices.Sorted(maps.Keys(defaults.StorageOpeners())))
	// Output:
	// [files mariadb mysql postgres sqlite]
	// [local s3 sftp]
}
