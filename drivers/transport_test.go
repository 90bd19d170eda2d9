package drivers_test

import (
	"errors"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

func TestIsLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"": true, "localhost": true, "LocalHost.": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true, "[::1]": true,
		"/var/run/postgresql": true,
		"db.example.com":      false, "10.0.0.5": false, "::ffff:10.0.0.5": false, "localhost.example.com": false, "128.0.0.1": false,
	} {
		if got := drivers.IsLocalHost(host); got != want {
			t.Errorf("IsLocalHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckPasswordTransport(t *testing.T) {
	remote := drivers.Source{Type: "postgres", Host: "db.example.com", Password: "pw"}
	err := drivers.CheckPasswordTransport(remote, false, "sslmode", `"verify-full"`)
	var fe *drivers.FieldError
	if !errors.Is(err, drivers.ErrPlaintextPassword) || !errors.Is(err, drivers.ErrInvalidSource) ||
		!errors.As(err, &fe) || fe.Field != "options.sslmode" {
		t.Fatalf("remote without TLS: %v, want a FieldError on options.sslmode", err)
	}
	for name, src := range map[string]drivers.Source{
		"TLS": remote, "no password": {Host: "db.example.com"}, "loopback": {Host: "127.0.0.1", Password: "pw"},
		"opted in": {Host: "db.example.com", Password: "pw", Options: map[string]string{drivers.OptAllowPlaintextPassword: "true"}},
	} {
		if err := drivers.CheckPasswordTransport(src, name == "TLS", "sslmode", `"verify-full"`); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
