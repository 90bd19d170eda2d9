package postgres_test

import (
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/postgres"
)

// A driver names its datasource type and the format of its backup files.
func Example() {
	var d drivers.Driver = postgres.New()
	fmt.Println(d.Type(), d.Format())
	_, canVerify := d.(drivers.Verifier)
	fmt.Println("verifies restores:", canVerify)
	// Output:
	// postgres dump
	// verifies restores: true
}
