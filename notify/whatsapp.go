package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// WhatsApp is a Notifier sending a text message to each number through the
// Evolution API (https://doc.evolution-api.com): POST
// {BaseURL}/message/sendText/{Instance} with header "apikey" and JSON body
// {"number": "5511999999999", "text": "..."}.
//
// A failure on one number does not keep the others from being sent; errors
// carry the HTTP status and the API's message, never the key.
type WhatsApp struct {
	BaseURL  string // "https://evolution.example.com"
	Instance string
	APIKey   string
	Numbers  []string // digits with country code, or a group JID ("...@g.us")
	// Client sends the requests; nil means a client with a 10 s timeout
	// that does not follow redirects.
	Client *http.Client
	// Templates renders the text with the "whatsapp" channel's templates;
	// nil means the built-in defaults.
	Templates *Templates
}

var _ Notifier = (*WhatsApp)(nil)

// Name returns "whatsapp".
func (*WhatsApp) Name() string { return "whatsapp" }

// Notify sends n's rendered text to every number.
func (w *WhatsApp) Notify(ctx context.Context, n Notification) error {
	host := safeURL(w.BaseURL)
	base, err := checkHTTPURL(w.BaseURL)
	if err != nil {
		return fmt.Errorf("%w: whatsapp %s: base url %v", ErrDelivery, host, err)
	}
	if w.Instance == "" || len(w.Numbers) == 0 {
		return fmt.Errorf("%w: whatsapp %s: set the instance and at least one number", ErrDelivery, host)
	}
	_, text, tmplErr := render(w.Templates, n, ChannelWhatsApp)
	endpoint := strings.TrimRight(base.String(), "/") + "/message/sendText/" + url.PathEscape(w.Instance)
	var errs []error
	for _, num := range w.Numbers {
		if err := w.send(ctx, endpoint, normalizeNumber(num), text); err != nil {
			errs = append(errs, fmt.Errorf("%w: whatsapp %s send to %s: %w", ErrDelivery, host, maskNumber(num), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return tmplErr
}

func (w *WhatsApp) send(ctx context.Context, endpoint, number, text string) error {
	body, err := json.Marshal(map[string]string{"number": number, "text": text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return errors.New("build request: invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("apikey", w.APIKey)
	client := w.Client
	if client == nil {
		client = defaultHTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return redact(redactURL(err, endpoint, safeURL(endpoint)), w.APIKey)
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := evolutionMessage(snippet)
	if msg == "" {
		return fmt.Errorf("status %s", resp.Status)
	}
	return redact(fmt.Errorf("status %s: %s", resp.Status, msg), w.APIKey)
}

// evolutionMessage extracts the API's message from an error body such as
// {"status":400,"error":"Bad Request","response":{"message":["..."]}}.
func evolutionMessage(body string) string {
	var e struct {
		Error    any `json:"error"`
		Message  any `json:"message"`
		Response struct {
			Message any `json:"message"`
		} `json:"response"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return body
	}
	for _, v := range []any{e.Response.Message, e.Message, e.Error} {
		if s := flatten(v); s != "" {
			return s
		}
	}
	return body
}

func flatten(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		var parts []string
		for _, e := range x {
			if s := flatten(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// normalizeNumber drops the "+", spaces, dashes and parentheses people type.
func normalizeNumber(n string) string {
	if strings.Contains(n, "@") {
		return strings.TrimSpace(n)
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '+', ' ', '-', '(', ')', '.':
			return -1
		}
		return r
	}, n)
}

// maskNumber keeps the last four digits of a phone number for errors.
func maskNumber(n string) string {
	n = normalizeNumber(n)
	if strings.Contains(n, "@") || len(n) <= 4 {
		return n
	}
	return strings.Repeat("*", len(n)-4) + n[len(n)-4:]
}
