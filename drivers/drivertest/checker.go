package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

// RunChecker checks drivers.Checker on d: ok must pass, and ok changed by
// each function of bad must fail with a *drivers.FieldError naming the
// key (a field as an API body names it: "database", "options.sslmode")
// and matching drivers.ErrInvalidSource.
func RunChecker(t *testing.T, d drivers.Driver, ok drivers.Source, bad map[string]func(*drivers.Source)) {
	t.Helper()
	c, isChecker := d.(drivers.Checker)
	if !isChecker {
		t.Fatalf("drivertest: %T does not implement drivers.Checker", d)
	}
	if err := c.Check(ok); err != nil {
		t.Errorf("Check(%v): %v", ok, err)
	}
	for field, change := range bad {
		src := ok
		src.Options = maps.Clone(ok.Options)
		if src.Options == nil {
			src.Options = map[string]string{}
		}
		change(&src)
		var fe *drivers.FieldError
		err := c.Check(src)
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, drivers.ErrInvalidSource) {
			t.Errorf("Check with a bad %s: %v; want a FieldError naming it", field, err)
		}
	}
}

// RunVerifyWithoutCreate dumps src, then checks a verification of that
// dump into the database name, and a restore of it into the missing
// database target, by user (with password), an account that may not
// create databases: both fail with an error naming the account and saying
// what it lacks (privilege, e.g. "CREATEDB"), the verification logs no
// drop of a database it never created, and no database name is left
// (exists reports whether it is).
func RunVerifyWithoutCreate(t *testing.T, d drivers.Driver, src, target drivers.Source, user, password, name, privilege string, exists func(string) bool) {
	t.Helper()
	v, ok := d.(drivers.Verifier)
	if !ok {
		t.Fatalf("drivertest: %T does not implement drivers.Verifier", d)
	}
	archive, md := Dump(t, d, src)
	src.Username, src.Password, target.Username, target.Password = user, password, user, password
	var logs []string
	_, err := v.Verify(t.Context(), src, bytes.NewReader(archive), md, &drivers.VerifyOptions{Database: name,
		Logf: func(format string, a ...any) { logs = append(logs, fmt.Sprintf(format, a...)) }})
	if err == nil {
		t.Fatalf("verify by %s, who lacks %s, succeeded", src.Username, privilege)
	}
	if !strings.Contains(err.Error(), privilege) || !strings.Contains(err.Error(), src.Username) {
		t.Errorf("verify by an account without %s: %v; want an error naming the account and %s", privilege, err, privilege)
	}
	for _, l := range logs {
		if strings.Contains(l, "dropped") {
			t.Errorf("log claims a drop of a database never created: %q", l)
		}
	}
	if exists(name) {
		t.Errorf("database %s exists", name)
	}
	if err := d.Restore(t.Context(), target, bytes.NewReader(archive), nil); err == nil || !strings.Contains(err.Error(), privilege) {
		t.Errorf("restore into a missing database by an account without %s: %v", privilege, err)
	}
}
