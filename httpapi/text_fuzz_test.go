package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckJSONText: checkJSONText never panics, and a body it lets
// through holds no NUL and no invalid UTF-8 once decoded as huma would.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"name":"a\u0000b"}`, `{"a":{"b":["c",{"d":"\u0000"}]}}`, `{"\u0000":1}`,
		"{\"a\":\"\xff\"}", `[1,"x",{"y":[]}]`, `"plain"`, `{"a":`, "\x00", `{"a":"b"} {"c":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		loc, msg := checkJSONText(body)
		if loc != "" {
			if msg == "" || !strings.HasPrefix(loc, "body") || strings.ContainsRune(loc, 0) || !utf8.ValidString(loc) {
				t.Fatalf("location %q, message %q", loc, msg)
			}
			return
		}
		if !utf8.Valid(body) || strings.ContainsRune(string(body), 0) {
			t.Fatalf("let through %q", body)
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				if strings.ContainsRune(v, 0) {
					t.Fatalf("let through a NUL in %q", body)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			case map[string]any:
				for k, x := range v {
					walk(k)
					walk(x)
				}
			}
		}
		walk(v)
	})
}
