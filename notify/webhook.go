package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Webhook headers.
const (
	SignatureHeader = "X-DataGuardian-Signature" // "sha256=<hex HMAC-SHA256 of the body>"
	TimestampHeader = "X-DataGuardian-Timestamp" // Unix seconds of the event
	EventHeader     = "X-DataGuardian-Event"     // the notification type
	DeliveryHeader  = "X-DataGuardian-Delivery"  // the event id, the same on every attempt
)

// WebhookPayload is the JSON body a Webhook posts: the notification's fields,
// the rendered subject and text of the "webhook" templates, and an event
// envelope whose id is the same on every retry (receivers deduplicate on it).
type WebhookPayload struct {
	Event WebhookEvent `json:"event"`
	Notification
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

// WebhookEvent identifies one delivery.
type WebhookEvent struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
}

// Webhook is a Notifier posting a signed JSON body (WebhookPayload) to a URL.
//
// The body is signed with HMAC-SHA256 under Secret in SignatureHeader
// (receivers check it with VerifySignature); with an empty Secret no
// signature is sent. Network errors, 5xx and 429 are retried with backoff
// (429/503 honour Retry-After), other statuses are not. Errors name the
// URL's host, never its path, query or the secret.
type Webhook struct {
	URL     string
	Secret  string
	Headers map[string]string // extra request headers (e.g. Authorization)
	// Client sends the requests; nil means a client with a 10 s timeout
	// that does not follow redirects.
	Client *http.Client
	// MaxAttempts is the number of attempts, first included; 0 means 4.
	MaxAttempts int
	// Backoff is the wait before attempt+1 (attempt counts from 1); nil
	// means 1s·2^(attempt-1), capped at 30 s.
	Backoff func(attempt int) time.Duration
	// MaxRetryAfter caps a server's Retry-After; 0 means 60 s.
	MaxRetryAfter time.Duration
	// Templates renders the payload's subject and text with the "webhook"
	// channel's templates; nil means the built-in defaults.
	Templates *Templates
}

var _ Notifier = (*Webhook)(nil)

// Name returns "webhook".
func (*Webhook) Name() string { return "webhook" }

var defaultHTTPClient = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func defaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 6 {
		return 30 * time.Second
	}
	return min(time.Second<<(attempt-1), 30*time.Second)
}

// Sign returns the SignatureHeader value for body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header (a SignatureHeader value) is the
// HMAC-SHA256 of body under secret, in constant time.
func VerifySignature(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "evt_" + hex.EncodeToString(b)
}

// safeURL names a URL in errors without its path and query, which often
// carry tokens (Slack, Discord).
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

func checkHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("must be an absolute http:// or https:// URL")
	}
	return u, nil
}

// Notify posts n, retrying as the type's documentation says.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	host := safeURL(w.URL)
	if _, err := checkHTTPURL(w.URL); err != nil {
		return fmt.Errorf("%w: webhook %s: url %v", ErrDelivery, host, err)
	}
	subject, text, tmplErr := render(w.Templates, n, ChannelWebhook)
	now := time.Now().UTC().Truncate(time.Second)
	p := WebhookPayload{Event: WebhookEvent{ID: newEventID(), Timestamp: now}, Notification: n, Subject: subject, Text: text}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%w: webhook %s: encode: %v", ErrDelivery, host, err)
	}
	attempts := w.MaxAttempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := w.Backoff
	if backoff == nil {
		backoff = defaultBackoff
	}
	maxRA := w.MaxRetryAfter
	if maxRA <= 0 {
		maxRA = 60 * time.Second
	}

	var last error
	for attempt := 1; ; attempt++ {
		wait, retry, err := w.post(ctx, body, p, host)
		if err == nil {
			return tmplErr
		}
		last = err
		if !retry || attempt >= attempts {
			break
		}
		if wait < 0 {
			wait = backoff(attempt)
		}
		wait = min(wait, maxRA)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: webhook %s: %w after %d attempts (last: %v)", ErrDelivery, host, ctx.Err(), attempt, last)
		case <-t.C:
		}
	}
	return fmt.Errorf("%w: webhook %s: %v", ErrDelivery, host, last)
}

// post makes one attempt. wait is the server's Retry-After, or -1.
func (w *Webhook) post(ctx context.Context, body []byte, p WebhookPayload, host string) (wait time.Duration, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return -1, false, fmt.Errorf("build request: %v", redactURL(err, w.URL, host))
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "DataGuardian-Webhook/1")
	req.Header.Set(TimestampHeader, strconv.FormatInt(p.Event.Timestamp.Unix(), 10))
	req.Header.Set(EventHeader, p.Type)
	req.Header.Set(DeliveryHeader, p.Event.ID)
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	client := w.Client
	if client == nil {
		client = defaultHTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, false, ctx.Err()
		}
		return -1, true, redact(redactURL(err, w.URL, host), w.Secret)
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return -1, false, nil
	}
	err = fmt.Errorf("status %s", resp.Status)
	if snippet != "" {
		err = fmt.Errorf("status %s: %s", resp.Status, redact(errors.New(snippet), w.Secret))
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), true, err
	}
	return -1, false, err
}

// readSnippet reads (and drains, for connection reuse) up to 64 KiB of a
// response body and returns its first printable 200 characters.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// retryAfter parses Retry-After (seconds or HTTP date); -1 when absent.
func retryAfter(v string) time.Duration {
	if v == "" {
		return -1
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return -1
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}

// redactURL replaces a full URL (which may carry a token) by its scheme and
// host in err's message.
func redactURL(err error, full, safe string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		c := *ue
		c.URL = safe
		err = &c
	}
	if full != "" && strings.Contains(err.Error(), full) {
		return errors.New(strings.ReplaceAll(err.Error(), full, safe))
	}
	return err
}
