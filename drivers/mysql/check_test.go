package mysql_test

import (
	"errors"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/mysql"
)

// Check refuses a source that can never be backed up, naming the field:
// a backup needs the database.
func TestCheckNamesTheField(t *testing.T) {
	ok := drivers.Source{Type: "mysql", Host: "127.0.0.1", Database: "app", Username: "app"}
	with := func(f func(*drivers.Source)) drivers.Source {
		s := ok
		s.Options = map[string]string{}
		f(&s)
		return s
	}
	for field, src := range map[string]drivers.Source{
		"database":                with(func(s *drivers.Source) { s.Database = "" }),
		"host":                    with(func(s *drivers.Source) { s.Host = "" }),
		"username":                with(func(s *drivers.Source) { s.Username = "" }),
		"port":                    with(func(s *drivers.Source) { s.Port = -1 }),
		"options.tls":             with(func(s *drivers.Source) { s.Options["tls"] = "maybe" }),
		"options.connect_timeout": with(func(s *drivers.Source) { s.Options["connect_timeout"] = "0" }),
	} {
		var fe *drivers.FieldError
		err := mysql.New().Check(src)
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, drivers.ErrInvalidSource) {
			t.Errorf("Check with a bad %s: %v; want a FieldError naming it", field, err)
		}
	}
	if err := mysql.New().Check(ok); err != nil {
		t.Errorf("Check(%v): %v", ok, err)
	}
}
