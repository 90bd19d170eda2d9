package mysql_test

import (
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/mysql"
)

// Register the driver under both of its types and describe a source: the
// description never shows the password.
func Example() {
	var reg drivers.Registry
	reg.Register(mysql.New())
	reg.Register(mysql.NewMariaDB())

	d, err := reg.Lookup("mariadb")
	if err != nil {
		panic(err)
	}
	src := drivers.Source{
		Type:     d.Type(),
		Host:     "db.internal",
		Port:     3306,
		Database: "shop",
		Username: "backup",
		Password: "p'a\"s$s;w&o|r d#",
		Options:  map[string]string{mysql.OptionTLS: "true"},
	}
	fmt.Println(reg.Types(), d.Format())
	fmt.Println(src)
	// Output:
	// [mariadb mysql] sql
	// mariadb://backup@db.internal:3306/shop
}
