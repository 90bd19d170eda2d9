package postgres_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/postgres"
)

// Check refuses a source that can never be backed up, naming the field.
func TestCheckNamesTheField(t *testing.T) {
	drivertest.RunChecker(t, postgres.New(), drivers.Source{Type: "postgres", Host: "127.0.0.1", Database: "app", Username: "app"},
		map[string]func(*drivers.Source){
			"database":                func(s *drivers.Source) { s.Database = "" },
			"port":                    func(s *drivers.Source) { s.Port = 70000 },
			"options.sslmode":         func(s *drivers.Source) { s.Options["sslmode"] = "sometimes" },
			"options.connect_timeout": func(s *drivers.Source) { s.Options["connect_timeout"] = "soon" },
		})
}
