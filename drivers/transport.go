package drivers

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// OptAllowPlaintextPassword is the Source option that, set to "true", lets
// a network driver send the password to another machine over a connection
// without TLS. Without it such a connection is refused before it is made:
// a server (or anyone on the way) could ask for the password in clear.
const OptAllowPlaintextPassword = "allow_plaintext_password"

// ErrPlaintextPassword reports a password that would cross the network
// without TLS. It comes wrapped in a *FieldError matching ErrInvalidSource.
var ErrPlaintextPassword = errors.New("the password would cross the network without TLS")

// FieldError is an error about one field of a Source (Field as an API body
// names it: "password", "options.sslmode"). It matches ErrInvalidSource
// and its cause.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause and ErrInvalidSource.
func (e *FieldError) Unwrap() []error { return []error{e.Err, ErrInvalidSource} }

// IsLocalHost reports whether host names this machine without crossing a
// network: "" (the driver's default, localhost), "localhost", an address
// of 127.0.0.0/8 or ::1, or a Unix socket path. A name that merely resolves
// to a loopback address does not count: resolution can change.
func IsLocalHost(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckPasswordTransport refuses src when it has a password, its host is
// another machine and encrypted (the driver's TLS setting requires TLS) is
// false, unless src.Options[OptAllowPlaintextPassword] is "true". tlsField
// names the option that requires TLS and tlsValue its value, for the
// message.
func CheckPasswordTransport(src Source, encrypted bool, tlsField, tlsValue string) error {
	if src.Password == "" || encrypted || IsLocalHost(src.Host) || src.Options[OptAllowPlaintextPassword] == "true" {
		return nil
	}
	return &FieldError{Field: "options." + tlsField, Err: fmt.Errorf(
		"%w to %s: set options.%s to %s (TLS), or options.%s to \"true\" to accept that risk",
		ErrPlaintextPassword, src.Host, tlsField, tlsValue, OptAllowPlaintextPassword)}
}
