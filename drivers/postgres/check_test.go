package postgres_test

import (
	"errors"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/postgres"
)

// Check refuses a source that can never be backed up, naming the field.
func TestCheckNamesTheField(t *testing.T) {
	ok := drivers.Source{Type: "postgres", Host: "127.0.0.1", Database: "app", Username: "app"}
	with := func(f func(*drivers.Source)) drivers.Source {
		s := ok
		s.Options = map[string]string{}
		f(&s)
		return s
	}
	for field, src := range map[string]drivers.Source{
		"database":                with(func(s *drivers.Source) { s.Database = "" }),
		"port":                    with(func(s *drivers.Source) { s.Port = 70000 }),
		"options.sslmode":         with(func(s *drivers.Source) { s.Options["sslmode"] = "sometimes" }),
		"options.connect_timeout": with(func(s *drivers.Source) { s.Options["connect_timeout"] = "soon" }),
	} {
		var fe *drivers.FieldError
		err := postgres.New().Check(src)
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, drivers.ErrInvalidSource) {
			t.Errorf("Check with a bad %s: %v; want a FieldError naming it", field, err)
		}
	}
	if err := postgres.New().Check(ok); err != nil {
		t.Errorf("Check(%v): %v", ok, err)
	}
}
