package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// redactedValue replaces a secret in Redacted settings and in errors.
const redactedValue = "********"

// ErrInvalidSettings reports channel settings that cannot be used; the
// joined FieldErrors say which field and what to set.
var ErrInvalidSettings = errors.New("invalid notification settings")

// FieldError is one invalid setting; it matches ErrInvalidSettings.
type FieldError struct {
	Field   string // JSON path: "smtp.port"
	Message string // what is wrong and what to set
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap returns ErrInvalidSettings.
func (e *FieldError) Unwrap() error { return ErrInvalidSettings }

// ChannelSettings configures the external channels; a nil or disabled
// channel is not built. Fields tagged secret:"true" are secrets: the engine
// stores these settings encrypted and the API returns Redacted().
type ChannelSettings struct {
	SMTP     *SMTPSettings     `json:"smtp,omitempty"`
	Webhook  *WebhookSettings  `json:"webhook,omitempty"`
	WhatsApp *WhatsAppSettings `json:"whatsapp,omitempty"`
}

// Filter limits a channel to some notifications. The zero value passes all.
type Filter struct {
	// Types to send; empty means every type.
	Types []string `json:"types,omitempty"`
	// MinSeverity drops notifications below it ("info" < "warning" <
	// "critical"); empty means "info".
	MinSeverity Severity `json:"min_severity,omitempty"`
}

// SMTPSettings configures e-mail (see SMTP).
type SMTPSettings struct {
	Enabled        bool     `json:"enabled"`
	Host           string   `json:"host"`
	Port           int      `json:"port,omitempty"`
	Username       string   `json:"username,omitempty"`
	Password       string   `json:"password,omitempty" secret:"true"`
	From           string   `json:"from"`
	To             []string `json:"to"`
	TLS            string   `json:"tls,omitempty"` // "starttls" (default), "tls", "none"
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
	Filter
}

// WebhookSettings configures the webhook (see Webhook).
type WebhookSettings struct {
	Enabled        bool              `json:"enabled"`
	URL            string            `json:"url"`
	Secret         string            `json:"secret" secret:"true"`
	Headers        map[string]string `json:"headers,omitempty" secret:"true"` // values redacted
	MaxAttempts    int               `json:"max_attempts,omitempty"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty"`
	Filter
}

// WhatsAppSettings configures WhatsApp through the Evolution API (see
// WhatsApp).
type WhatsAppSettings struct {
	Enabled        bool     `json:"enabled"`
	BaseURL        string   `json:"base_url"`
	Instance       string   `json:"instance"`
	APIKey         string   `json:"api_key" secret:"true"`
	Numbers        []string `json:"numbers"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
	Filter
}

// Redacted returns a deep copy with every non-empty secret replaced by
// "********", for API responses.
func (s ChannelSettings) Redacted() ChannelSettings {
	out := s.clone()
	walkSecrets(&out, func(v string) string {
		if v == "" {
			return ""
		}
		return redactedValue
	})
	return out
}

// KeepSecrets returns s with every secret still equal to "********" (as sent
// back by a client that got Redacted settings) replaced by its value in
// prev, so an update need not resend secrets. A secret is kept only for the
// destination it was given for: when a channel's destination changed
// (webhook: url; WhatsApp: base_url or instance; SMTP: host, port,
// username or tls) and one of its stored secrets is still "********",
// KeepSecrets returns an error matching ErrInvalidSettings whose
// FieldErrors name each such field, so the stored secret is never sent to
// the new address. A "********" with no stored secret becomes empty.
func (s ChannelSettings) KeepSecrets(prev ChannelSettings) (ChannelSettings, error) {
	out := s.clone()
	var errs []error
	keep := func(field, why string, moved bool, cur, old reflect.Value) {
		if cur.Kind() == reflect.String && cur.String() == redactedValue {
			if moved && old.String() != "" {
				errs = append(errs, &FieldError{Field: field, Message: why})
				return
			}
			cur.SetString(old.String())
		}
		if cur.Kind() == reflect.Map {
			keys := cur.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if cur.MapIndex(k).String() != redactedValue {
					continue
				}
				ov := reflect.ValueOf("")
				if old.IsValid() && !old.IsNil() && old.MapIndex(k).IsValid() {
					ov = old.MapIndex(k)
				}
				if moved && ov.String() != "" {
					errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf("header %q: %s", k.String(), why)})
					continue
				}
				cur.SetMapIndex(k, ov)
			}
		}
	}
	dests, prevDests := destinations(out), destinations(prev)
	ov := reflect.ValueOf(&prev).Elem()
	cv := reflect.ValueOf(&out).Elem()
	for i := range cv.NumField() {
		c, o := cv.Field(i), ov.Field(i)
		if c.IsNil() {
			continue
		}
		name := strings.Split(cv.Type().Field(i).Tag.Get("json"), ",")[0]
		dest, known := dests[name]
		moved := !known || dest != prevDests[name] // a channel destinations misses keeps nothing
		why := cmp.Or(destinationChanged[name], "the destination changed") +
			", so the stored secret is not sent to the new address: send it again"
		c = c.Elem()
		var oe reflect.Value
		if !o.IsNil() {
			oe = o.Elem()
		}
		prefix := name + "."
		for j := range c.NumField() {
			f := c.Type().Field(j)
			if f.Tag.Get("secret") != "true" {
				continue
			}
			old := reflect.Zero(c.Field(j).Type())
			if oe.IsValid() {
				old = oe.Field(j)
			}
			keep(prefix+strings.Split(f.Tag.Get("json"), ",")[0], why, moved, c.Field(j), old)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ChannelSettings{}, err
	}
	return out, nil
}

// destinations returns where each channel of c sends its secrets, by the
// channel's JSON name ("" for a channel not set).
func destinations(c ChannelSettings) map[string]string {
	d := map[string]string{"smtp": "", "webhook": "", "whatsapp": ""}
	if c.SMTP != nil {
		x := &SMTP{Port: c.SMTP.Port, TLS: c.SMTP.TLS}
		d["smtp"] = fmt.Sprintf("%s\x00%d\x00%s\x00%s", strings.ToLower(c.SMTP.Host), x.port(), c.SMTP.Username, x.mode())
	}
	if c.Webhook != nil {
		d["webhook"] = c.Webhook.URL
	}
	if c.WhatsApp != nil {
		d["whatsapp"] = c.WhatsApp.BaseURL + "\x00" + c.WhatsApp.Instance
	}
	return d
}

// destinationChanged says which settings make up each channel's destination.
var destinationChanged = map[string]string{
	"smtp":     "the server (smtp.host, smtp.port, smtp.username or smtp.tls) changed",
	"webhook":  "the url changed",
	"whatsapp": "the base_url or instance changed",
}

func (s ChannelSettings) clone() ChannelSettings {
	var out ChannelSettings
	if s.SMTP != nil {
		c := *s.SMTP
		c.To = slices.Clone(c.To)
		c.Types = slices.Clone(c.Types)
		out.SMTP = &c
	}
	if s.Webhook != nil {
		c := *s.Webhook
		if c.Headers != nil {
			h := make(map[string]string, len(c.Headers))
			for k, v := range c.Headers {
				h[k] = v
			}
			c.Headers = h
		}
		c.Types = slices.Clone(c.Types)
		out.Webhook = &c
	}
	if s.WhatsApp != nil {
		c := *s.WhatsApp
		c.Numbers = slices.Clone(c.Numbers)
		c.Types = slices.Clone(c.Types)
		out.WhatsApp = &c
	}
	return out
}

// walkSecrets applies f to every secret string (and secret map value).
func walkSecrets(s *ChannelSettings, f func(string) string) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		p := v.Field(i)
		if p.IsNil() {
			continue
		}
		st := p.Elem()
		for j := range st.NumField() {
			if st.Type().Field(j).Tag.Get("secret") != "true" {
				continue
			}
			fv := st.Field(j)
			switch fv.Kind() {
			case reflect.String:
				fv.SetString(f(fv.String()))
			case reflect.Map:
				for _, k := range fv.MapKeys() {
					fv.SetMapIndex(k, reflect.ValueOf(f(fv.MapIndex(k).String())))
				}
			}
		}
	}
}

// Validate checks every enabled channel and returns the joined FieldErrors.
func (s ChannelSettings) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c := s.SMTP; c != nil && c.Enabled {
		if c.Host == "" {
			add("smtp.host", "required: set the SMTP server's host name, e.g. smtp.example.com")
		}
		if c.Port < 0 || c.Port > 65535 {
			add("smtp.port", "%d is out of range: use 587 for starttls, 465 for tls, 25 for none, or 0 for that default", c.Port)
		}
		switch c.TLS {
		case "", SMTPStartTLS, SMTPTLS, SMTPNone:
		default:
			add("smtp.tls", "%q is not a mode: use %q (default), %q or %q", c.TLS, SMTPStartTLS, SMTPTLS, SMTPNone)
		}
		if c.Username != "" && c.Password == "" {
			add("smtp.password", "required with smtp.username: set the password, or clear the username for a server without authentication")
		}
		if c.Username == "" && c.Password != "" {
			add("smtp.username", "required with smtp.password: set the user name")
		}
		if c.Username != "" && c.TLS == SMTPNone && !isLocalhost(c.Host) {
			add("smtp.tls", "%q would send the password in clear text to %s: use %q or %q", SMTPNone, c.Host, SMTPStartTLS, SMTPTLS)
		}
		if _, err := mail.ParseAddress(c.From); err != nil {
			add("smtp.from", "%q is not an e-mail address: use e.g. \"DataGuardian <backup@example.com>\"", c.From)
		}
		if len(c.To) == 0 {
			add("smtp.to", "required: list at least one recipient address")
		}
		for i, a := range c.To {
			if _, err := mail.ParseAddress(a); err != nil {
				add(fmt.Sprintf("smtp.to[%d]", i), "%q is not an e-mail address", a)
			}
		}
		validateCommon(add, "smtp", c.TimeoutSeconds, c.Filter)
	}
	if c := s.Webhook; c != nil && c.Enabled {
		if _, err := checkHTTPURL(c.URL); err != nil {
			add("webhook.url", "%v, e.g. https://hooks.example.com/dataguardian", err)
		}
		if len(c.Secret) < 16 {
			add("webhook.secret", "must have at least 16 characters so receivers can verify the signature: generate one with `openssl rand -hex 32`")
		}
		for k, v := range c.Headers {
			if !headerName.MatchString(k) {
				add("webhook.headers", "%q is not a valid header name", k)
			} else if ck := http.CanonicalHeaderKey(k); ck == "Content-Type" || ck == "Content-Length" || ck == "Host" || strings.HasPrefix(ck, "X-Dataguardian-") {
				add("webhook.headers", "%q is set by DataGuardian: remove it", k)
			}
			if strings.ContainsAny(v, "\r\n") {
				add("webhook.headers", "the value of %q has a line break: remove it", k)
			}
		}
		if c.MaxAttempts < 0 || c.MaxAttempts > 10 {
			add("webhook.max_attempts", "%d is out of range: use 1-10, or 0 for the default 4", c.MaxAttempts)
		}
		validateCommon(add, "webhook", c.TimeoutSeconds, c.Filter)
	}
	if c := s.WhatsApp; c != nil && c.Enabled {
		if _, err := checkHTTPURL(c.BaseURL); err != nil {
			add("whatsapp.base_url", "%v: set the Evolution API address, e.g. https://evolution.example.com", err)
		}
		if c.Instance == "" {
			add("whatsapp.instance", "required: set the Evolution API instance name")
		}
		if c.APIKey == "" {
			add("whatsapp.api_key", "required: set the Evolution API key (AUTHENTICATION_API_KEY or the instance token)")
		}
		if len(c.Numbers) == 0 {
			add("whatsapp.numbers", "required: list at least one number with country code, e.g. 5511999999999")
		}
		for i, n := range c.Numbers {
			if !waNumber.MatchString(normalizeNumber(n)) {
				add(fmt.Sprintf("whatsapp.numbers[%d]", i), "%q is not a number: use digits with country and area code, e.g. 5511999999999, or a group id ending in @g.us", n)
			}
		}
		validateCommon(add, "whatsapp", c.TimeoutSeconds, c.Filter)
	}
	return errors.Join(errs...)
}

var (
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	waNumber   = regexp.MustCompile(`^([0-9]{8,15}|[0-9-]{10,40}@g\.us)$`)
)

func validateCommon(add func(field, format string, args ...any), ch string, timeout int, f Filter) {
	if timeout < 0 || timeout > 600 {
		add(ch+".timeout_seconds", "%d is out of range: use 1-600, or 0 for the default", timeout)
	}
	if f.MinSeverity != "" && severityRank(f.MinSeverity) < 0 {
		add(ch+".min_severity", "%q is not a severity: use %q, %q or %q", f.MinSeverity, Info, Warning, Critical)
	}
	for _, t := range f.Types {
		if !typeName.MatchString(t) {
			add(ch+".types", "%q is not a notification type, e.g. %q", t, BackupFailed)
		}
	}
}

func severityRank(s Severity) int {
	switch s {
	case Info, "":
		return 0
	case Warning:
		return 1
	case Critical:
		return 2
	}
	return -1
}

// Build validates s and returns a Multi with one Notifier per enabled
// channel (filtered by its types and minimum severity), rendering with t.
func (s ChannelSettings) Build(t *Templates) (Multi, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var m Multi
	if c := s.SMTP; c != nil && c.Enabled {
		m = append(m, Filtered(&SMTP{
			Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password,
			From: c.From, To: slices.Clone(c.To), TLS: c.TLS,
			Timeout: time.Duration(c.TimeoutSeconds) * time.Second, Templates: t,
		}, c.Filter))
	}
	if c := s.Webhook; c != nil && c.Enabled {
		w := &Webhook{URL: c.URL, Secret: c.Secret, MaxAttempts: c.MaxAttempts, Templates: t}
		if len(c.Headers) > 0 {
			w.Headers = make(map[string]string, len(c.Headers))
			for k, v := range c.Headers {
				w.Headers[k] = v
			}
		}
		w.Client = clientWithTimeout(c.TimeoutSeconds)
		m = append(m, Filtered(w, c.Filter))
	}
	if c := s.WhatsApp; c != nil && c.Enabled {
		m = append(m, Filtered(&WhatsApp{
			BaseURL: c.BaseURL, Instance: c.Instance, APIKey: c.APIKey,
			Numbers: slices.Clone(c.Numbers), Client: clientWithTimeout(c.TimeoutSeconds), Templates: t,
		}, c.Filter))
	}
	return m, nil
}

func clientWithTimeout(seconds int) *http.Client {
	if seconds <= 0 {
		return nil // the default client
	}
	c := *defaultHTTPClient
	c.Timeout = time.Duration(seconds) * time.Second
	return &c
}

// Filtered returns n limited by f; with a zero Filter it returns n itself.
func Filtered(n Notifier, f Filter) Notifier {
	if len(f.Types) == 0 && severityRank(f.MinSeverity) <= 0 {
		return n
	}
	return filtered{n, f}
}

type filtered struct {
	Notifier
	f Filter
}

func (c filtered) Notify(ctx context.Context, n Notification) error {
	if len(c.f.Types) > 0 && !slices.Contains(c.f.Types, n.Type) {
		return nil
	}
	if severityRank(n.Severity) < severityRank(c.f.MinSeverity) {
		return nil
	}
	return c.Notifier.Notify(ctx, n)
}
