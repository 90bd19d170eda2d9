package mysql_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/mysql"
)

// Check refuses a source that can never be backed up, naming the field:
// a backup needs the database.
func TestCheckNamesTheField(t *testing.T) {
	drivertest.RunChecker(t, mysql.New(), drivers.Source{Type: "mysql", Host: "127.0.0.1", Database: "app", Username: "app"},
		map[string]func(*drivers.Source){
			"database":                func(s *drivers.Source) { s.Database = "" },
			"host":                    func(s *drivers.Source) { s.Host = "" },
			"username":                func(s *drivers.Source) { s.Username = "" },
			"port":                    func(s *drivers.Source) { s.Port = -1 },
			"options.tls":             func(s *drivers.Source) { s.Options["tls"] = "maybe" },
			"options.connect_timeout": func(s *drivers.Source) { s.Options["connect_timeout"] = "0" },
		})
}
