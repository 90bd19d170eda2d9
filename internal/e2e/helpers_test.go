package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
)

// apiToken creates a token holding perms with the admin client c and
// returns a client using it.
func apiToken(c client, perms ...string) client {
	c.t.Helper()
	var tok httpapi.CreatedAPIToken
	c.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": strings.Join(perms, "+"), "permissions": perms}, &tok)
	return client{c.t, c.srv, tok.Secret}
}

// problem is an RFC 9457 problem as the API answers it.
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func decodeProblem(t *testing.T, b []byte) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode problem %s: %v", b, err)
	}
	return p
}

// problemAt sends body and fails the test unless the answer is a 422
// problem whose errors name location; it returns the problem's detail and
// that error's message.
func (c client) problemAt(location, method, path string, body any) string {
	c.t.Helper()
	code, b := c.call(method, path, body)
	if code != http.StatusUnprocessableEntity {
		c.t.Fatalf("%s %s %v: %d, want 422 at %s: %s", method, path, body, code, location, b)
	}
	p := decodeProblem(c.t, b)
	for _, e := range p.Errors {
		if e.Location == location {
			return p.Detail + " " + e.Message
		}
	}
	c.t.Fatalf("%s %s %v: problem names no %s: %s", method, path, body, location, b)
	return ""
}
