package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const testAPIKey = "B6D711FCDE4D4FD5936544120E713976"

type evolutionCall struct {
	Path, APIKey, ContentType string
	Body                      map[string]string
}

// evolutionServer imitates the Evolution API's sendText endpoint; numbers in
// fail get a 400 with the API's error body, echoing the key as a careless
// server might.
func evolutionServer(t *testing.T, fail map[string]bool) (*httptest.Server, func() []evolutionCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []evolutionCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := evolutionCall{Path: r.URL.EscapedPath(), APIKey: r.Header.Get("apikey"), ContentType: r.Header.Get("Content-Type")}
		_ = json.Unmarshal(b, &c.Body)
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if c.APIKey != testAPIKey {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if fail[c.Body["number"]] {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"status":400,"error":"Bad Request","response":{"message":[{"exists":false,"jid":"`+c.Body["number"]+`@s.whatsapp.net","number":"`+c.Body["number"]+`"}, "apikey `+testAPIKey+`"]}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"key":{"remoteJid":"`+c.Body["number"]+`@s.whatsapp.net","fromMe":true,"id":"BAE5"},"status":"PENDING"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []evolutionCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]evolutionCall(nil), calls...)
	}
}

func TestWhatsAppSendsToEveryNumber(t *testing.T) {
	srv, calls := evolutionServer(t, nil)
	w := &WhatsApp{BaseURL: srv.URL + "/", Instance: "dg prod", APIKey: testAPIKey, Numbers: []string{"+55 (11) 99999-0001", "5511999990002"}}
	n := Notification{Type: ConnectionLost, Severity: Critical, Title: "Banco Produção inacessível", Message: "3 falhas seguidas", Data: map[string]any{"datasource_name": "Banco Produção"}}
	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	got := calls()
	if len(got) != 2 {
		t.Fatalf("%d calls, want 2", len(got))
	}
	for i, want := range []string{"5511999990001", "5511999990002"} {
		c := got[i]
		if c.Path != "/message/sendText/dg%20prod" || c.APIKey != testAPIKey || c.ContentType != "application/json" {
			t.Errorf("call %d = %+v", i, c)
		}
		if c.Body["number"] != want || !strings.HasPrefix(c.Body["text"], "⚠️ *Conexão perdida*\nBanco Produção inacessível\n3 falhas seguidas\nFonte: Banco Produção") {
			t.Errorf("call %d body = %q", i, c.Body)
		}
		if len(c.Body) != 2 {
			t.Errorf("call %d body has extra fields: %v", i, c.Body)
		}
	}
}

func TestWhatsAppErrorSurfacedWithoutKey(t *testing.T) {
	srv, calls := evolutionServer(t, map[string]bool{"5511000000000": true})
	w := &WhatsApp{BaseURL: srv.URL, Instance: "dg", APIKey: testAPIKey, Numbers: []string{"5511000000000", "5511999990002"}}
	err := w.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"400 Bad Request", `"exists":false`, "*********0000"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, testAPIKey) {
		t.Fatalf("error leaks the API key: %v", msg)
	}
	if n := len(calls()); n != 2 {
		t.Fatalf("%d calls: a failing number stopped the others", n)
	}
}

func TestWhatsAppUnauthorized(t *testing.T) {
	srv, _ := evolutionServer(t, nil)
	w := &WhatsApp{BaseURL: srv.URL, Instance: "dg", APIKey: "wrong-key-123", Numbers: []string{"5511999990002"}}
	err := w.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "401 Unauthorized: Unauthorized") || strings.Contains(err.Error(), "wrong-key-123") {
		t.Fatalf("err = %v", err)
	}
}

func TestEvolutionMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"status":500,"error":"Internal Server Error","response":{"message":"Cannot read properties of undefined"}}`: "Cannot read properties of undefined",
		`{"status":404,"error":"Not Found","response":{"message":["The \"x\" instance does not exist"]}}`:             `The "x" instance does not exist`,
		`{"message":"plain"}`:     "plain",
		`{"error":"Bad Request"}`: "Bad Request",
		`not json`:                "not json",
	} {
		if got := evolutionMessage(body); got != want {
			t.Errorf("%s → %q, want %q", body, got, want)
		}
	}
}
