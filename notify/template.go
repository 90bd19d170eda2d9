package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
)

// Channels a template is written for.
const (
	ChannelEmail    = "email"
	ChannelWhatsApp = "whatsapp"
	ChannelWebhook  = "webhook"
)

// Template errors.
var (
	// ErrTemplateVersionExists reports a Set of a (type, channel, version)
	// that already holds different content: versions are never rewritten.
	ErrTemplateVersionExists = errors.New("template version already exists")
	// ErrTemplate reports a template that does not parse or does not render.
	ErrTemplate = errors.New("invalid notification template")
)

// TemplateVersion is one stored version of the subject and body templates
// for a notification type on one channel. Version 0 is the built-in default;
// stored versions start at 1.
type TemplateVersion struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Version int    `json:"version"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// Templates renders the subject and body of a notification for a channel
// with text/template (option missingkey=error). Each (type, channel) has a
// built-in default in Portuguese; stored versions override it, the highest
// version winning. A version, once set, is never rewritten.
//
// The zero value (and a nil *Templates) renders the built-in defaults.
// Templates is safe for concurrent use.
//
// Templates see the Notification's fields (.Type, .Severity, .Title,
// .Message, .EntityType, .EntityID, .CreatedAt, .Data) and .Product, and
// these functions: upper, lower, bytes (human size: bytes 1536 → "1.5 KiB"),
// duration (a time.Duration, seconds as a number, or a Go duration string →
// "1m30s"), datetime (a time.Time → "02/01/2006 15:04:05 UTC") and
// default (default "x" value → value, or "x" when value is empty).
// Optional data keys read by the defaults: job_name, datasource_name,
// storage, size_bytes, duration_seconds, error, execution_id,
// consecutive_failures.
//
// Templates come from API callers, so each render is bounded (see
// MaxTemplateOutput and the other limits): a loop or function over a limit
// stops the render with an error matching ErrTemplateLimit, and
// {{define}}, {{template}} and {{block}} are refused.
type Templates struct {
	mu       sync.RWMutex
	versions map[templateKey]map[int]*parsedTemplate
}

type templateKey struct{ typ, channel string }

type parsedTemplate struct {
	v       TemplateVersion
	subject *template.Template
	body    *template.Template
}

// TemplateData is what a template is executed with.
type TemplateData struct {
	Notification
	Product string // "DataGuardian"
}

// NewTemplates returns Templates holding only the built-in defaults.
func NewTemplates() *Templates { return &Templates{} }

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func validChannel(channel string) error {
	switch channel {
	case ChannelEmail, ChannelWhatsApp, ChannelWebhook:
		return nil
	}
	return fmt.Errorf("%w: unknown channel %q; use %q, %q or %q", ErrTemplate, channel, ChannelEmail, ChannelWhatsApp, ChannelWebhook)
}

// Set stores version of the templates for (typ, channel) after checking that
// both parse and render a sample notification within the limits
// (MaxTemplateSource, MaxTemplateOutput, MaxTemplateRenderTime,
// MaxTemplateLoops; no {{define}}, {{template}} or {{block}}): an error
// matches ErrTemplate, and ErrTemplateLimit for a limit. Setting the same
// content again is a no-op that parses nothing; different content for an
// existing version is an error matching ErrTemplateVersionExists.
func (t *Templates) Set(typ, channel string, version int, subject, body string) error {
	return t.add(TemplateVersion{Type: typ, Channel: channel, Version: version, Subject: subject, Body: body}, true)
}

// LoadVersion adds a version stored earlier (and checked by Set when it
// was written). It is parsed with the same rules but not rendered: a
// version over a limit at send time fails there, and the channels fall
// back to the built-in default. A version already loaded with the same
// content is a no-op that parses nothing.
func (t *Templates) LoadVersion(v TemplateVersion) error {
	return t.add(v, false)
}

// Load loads every version (as stored by the engine) with LoadVersion,
// stopping at the first error.
func (t *Templates) Load(versions []TemplateVersion) error {
	for _, v := range versions {
		if err := t.LoadVersion(v); err != nil {
			return err
		}
	}
	return nil
}

func (t *Templates) add(v TemplateVersion, trial bool) error {
	if !typeName.MatchString(v.Type) {
		return fmt.Errorf("%w: type %q must be lower-case letters, digits and _", ErrTemplate, v.Type)
	}
	if err := validChannel(v.Channel); err != nil {
		return err
	}
	if v.Version < 1 {
		return fmt.Errorf("%w: version %d: versions start at 1 (0 is the built-in default)", ErrTemplate, v.Version)
	}
	if strings.TrimSpace(v.Subject) == "" {
		v.Subject = defaultSubject
	}
	k := templateKey{v.Type, v.Channel}
	t.mu.RLock()
	done, err := t.existsLocked(k, v)
	t.mu.RUnlock()
	if done {
		return err
	}
	p, err := parseVersion(v)
	if err != nil {
		return err
	}
	if trial {
		if err := p.trial(); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if done, err := t.existsLocked(k, v); done {
		return err
	}
	if t.versions == nil {
		t.versions = make(map[templateKey]map[int]*parsedTemplate)
	}
	if t.versions[k] == nil {
		t.versions[k] = make(map[int]*parsedTemplate)
	}
	t.versions[k][v.Version] = p
	return nil
}

// existsLocked reports whether v's version is loaded, with an error unless
// with the same content.
func (t *Templates) existsLocked(k templateKey, v TemplateVersion) (bool, error) {
	old, ok := t.versions[k][v.Version]
	if !ok {
		return false, nil
	}
	if old.v == v {
		return true, nil
	}
	return true, fmt.Errorf("set template %s/%s v%d: %w; create version %d instead", v.Type, v.Channel, v.Version, ErrTemplateVersionExists, t.maxVersionLocked(k)+1)
}

func (t *Templates) maxVersionLocked(k templateKey) int {
	max := 0
	for n := range t.versions[k] {
		if n > max {
			max = n
		}
	}
	return max
}

// NextVersion returns the number the next Set for (typ, channel) should use.
func (t *Templates) NextVersion(typ, channel string) int {
	if t == nil {
		return 1
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.maxVersionLocked(templateKey{typ, channel}) + 1
}

// Versions returns the stored versions for (typ, channel), oldest first; the
// built-in default is not included.
func (t *Templates) Versions(typ, channel string) []TemplateVersion {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []TemplateVersion
	for _, p := range t.versions[templateKey{typ, channel}] {
		out = append(out, p.v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// Current returns the version Render uses for (typ, channel): the highest
// stored one, else the built-in default (Version 0). ok is false for an
// unknown channel.
func (t *Templates) Current(typ, channel string) (v TemplateVersion, ok bool) {
	p := t.current(typ, channel)
	if p == nil {
		return TemplateVersion{}, false
	}
	v = p.v
	v.Type = typ
	return v, true
}

func (t *Templates) current(typ, channel string) *parsedTemplate {
	if t != nil {
		t.mu.RLock()
		k := templateKey{typ, channel}
		p := t.versions[k][t.maxVersionLocked(k)]
		t.mu.RUnlock()
		if p != nil {
			return p
		}
	}
	return builtin(typ, channel)
}

// Render renders n for channel with the current version of its template.
// The subject is a single line.
func (t *Templates) Render(n Notification, channel string) (subject, body string, err error) {
	if err := validChannel(channel); err != nil {
		return "", "", err
	}
	return t.current(n.Type, channel).render(n)
}

// RenderDefault renders n with the built-in default template, ignoring stored
// versions; channels fall back to it when a stored template fails.
func RenderDefault(n Notification, channel string) (subject, body string, err error) {
	return (*Templates)(nil).Render(n, channel)
}

// render renders with fallback: a failing stored template falls back to the
// built-in default and the error (matching ErrTemplate) is returned beside a
// usable subject and body.
func render(t *Templates, n Notification, channel string) (subject, body string, tmplErr error) {
	subject, body, err := t.Render(n, channel)
	if err == nil {
		return subject, body, nil
	}
	subject, body, err2 := RenderDefault(n, channel)
	if err2 != nil { // cannot happen with the tested defaults
		subject, body = n.Title, n.Message
	}
	return subject, body, fmt.Errorf("delivered with the default template: %w", err)
}

func (p *parsedTemplate) render(n Notification) (subject, body string, err error) {
	return p.execute(TemplateData{Notification: n, Product: "DataGuardian"}, false)
}

// trial renders a sample carrying every documented data key with a
// lenient copy (missing keys render empty), to catch execution-time
// mistakes ({{.Nme}}, wrong function arguments) and limits now.
func (p *parsedTemplate) trial() error {
	_, _, err := p.execute(TemplateData{Notification: sampleNotification(p.v.Type), Product: "DataGuardian"}, true)
	return err
}

// execute renders subject and body within one budget.
func (p *parsedTemplate) execute(data TemplateData, lenient bool) (subject, body string, err error) {
	b := newBudget()
	var out [2]string
	for i, part := range []struct {
		name string
		t    *template.Template
	}{{"subject", p.subject}, {"body", p.body}} {
		s, err := execute(part.t, b, data, lenient)
		if err != nil {
			var le *limitError
			if errors.As(err, &le) {
				return "", "", fmt.Errorf("%w: %s/%s v%d %s: %w", ErrTemplate, p.v.Type, p.v.Channel, p.v.Version, part.name, le)
			}
			return "", "", fmt.Errorf("%w: render %s/%s v%d %s: %v", ErrTemplate, p.v.Type, p.v.Channel, p.v.Version, part.name, err)
		}
		out[i] = s
	}
	subject = strings.Join(strings.Fields(out[0]), " ")
	return subject, strings.TrimSpace(out[1]), nil
}

// defaultSubject is the subject of a template stored without one (the
// subject matters to e-mail only; webhook and WhatsApp bodies stand alone).
const defaultSubject = `[{{.Product}}] {{.Title}}`

// parseVersion parses v's subject (v.Subject not empty) and body; it does
// not render them.
func parseVersion(v TemplateVersion) (*parsedTemplate, error) {
	p := &parsedTemplate{v: v}
	var err error
	if p.subject, err = parseText("subject", v.Subject); err != nil {
		return nil, fmt.Errorf("%w: %s/%s v%d subject: %w", ErrTemplate, v.Type, v.Channel, v.Version, err)
	}
	if p.body, err = parseText("body", v.Body); err != nil {
		return nil, fmt.Errorf("%w: %s/%s v%d body: %w", ErrTemplate, v.Type, v.Channel, v.Version, err)
	}
	return p, nil
}

// parseText parses one template within MaxTemplateSource and instruments it
// (see instrument) for execute.
func parseText(name, text string) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty template")
	}
	if len(text) > MaxTemplateSource {
		return nil, limitErrorf("is longer than %d KiB: shorten it", MaxTemplateSource>>10)
	}
	parses.Add(1)
	t, err := template.New(name).Option("missingkey=error").Funcs(parseFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	if err := instrument(t); err != nil {
		return nil, err
	}
	return t, nil
}

func sampleNotification(typ string) Notification {
	return Notification{
		Type: typ, Severity: Info, Title: "Exemplo", Message: "Mensagem de exemplo",
		EntityType: "execution", EntityID: "00000000-0000-0000-0000-000000000000",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Data: map[string]any{
			"job_name": "job", "datasource_name": "db", "storage": "local",
			"size_bytes": 1 << 20, "duration_seconds": 90, "error": "erro",
			"execution_id": "00000000-0000-0000-0000-000000000000", "consecutive_failures": 3,
		},
	}
}

func toFloat(v any) (float64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int:
		return float64(x), true, nil
	case int32:
		return float64(x), true, nil
	case int64:
		return float64(x), true, nil
	case uint:
		return float64(x), true, nil
	case uint32:
		return float64(x), true, nil
	case uint64:
		return float64(x), true, nil
	case float32:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	case json.Number:
		f, err := x.Float64()
		return f, err == nil, err
	case string:
		if x == "" {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil, err
	}
	return 0, false, fmt.Errorf("unsupported value of type %T", v)
}

// humanBytes formats a size in bytes with binary units: 1536 → "1.5 KiB".
func humanBytes(v any) (string, error) {
	f, ok, err := toFloat(v)
	if err != nil || !ok {
		return "", err
	}
	if math.Abs(f) < 1024 {
		return fmt.Sprintf("%.0f B", f), nil
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i], nil
}

// humanDuration formats a time.Duration, a number of seconds or a Go
// duration string, rounded to the second when longer than one.
func humanDuration(v any) (string, error) {
	var d time.Duration
	s, isString := v.(string)
	if x, ok := v.(time.Duration); ok {
		d = x
	} else if pd, err := time.ParseDuration(s); isString && err == nil {
		d = pd
	} else {
		f, ok, err := toFloat(v)
		if err != nil || !ok {
			return "", err
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d >= time.Second || d <= -time.Second {
		d = d.Round(time.Second)
	}
	return d.String(), nil
}

func datetime(v any) (string, error) {
	switch x := v.(type) {
	case time.Time:
		if x.IsZero() {
			return "", nil
		}
		return x.Format("02/01/2006 15:04:05 MST"), nil
	case string:
		return x, nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("datetime: unsupported value of type %T", v)
}

// Built-in defaults.

const (
	emailFooter = `
{{with index .Data "datasource_name"}}Fonte de dados: {{.}}
{{end}}{{with index .Data "job_name"}}Job: {{.}}
{{end}}{{with index .Data "storage"}}Armazenamento: {{.}}
{{end}}{{with index .Data "size_bytes"}}Tamanho: {{bytes .}}
{{end}}{{with index .Data "duration_seconds"}}Duração: {{duration .}}
{{end}}{{with index .Data "consecutive_failures"}}Falhas consecutivas: {{.}}
{{end}}{{with index .Data "error"}}Erro: {{.}}
{{end}}{{with index .Data "execution_id"}}Execução: {{.}}
{{end}}Severidade: {{.Severity}}
Data: {{datetime .CreatedAt}}

-- 
{{.Product}}`
	whatsappFooter = `{{with index .Data "datasource_name"}}
Fonte: {{.}}{{end}}{{with index .Data "size_bytes"}}
Tamanho: {{bytes .}}{{end}}{{with index .Data "duration_seconds"}}
Duração: {{duration .}}{{end}}{{with index .Data "error"}}
Erro: {{.}}{{end}}
{{datetime .CreatedAt}}`
)

type defaultText struct{ heading, emoji, subjectData string }

var defaultTexts = map[string]defaultText{
	BackupCompleted:    {"Backup concluído", "✅", "job_name"},
	BackupFailed:       {"Falha no backup", "❌", "job_name"},
	RestoreCompleted:   {"Restore concluído", "✅", "datasource_name"},
	RestoreFailed:      {"Falha no restore", "❌", "datasource_name"},
	ConnectionLost:     {"Conexão perdida", "⚠️", "datasource_name"},
	ConnectionRestored: {"Conexão restabelecida", "✅", "datasource_name"},
}

// DefaultTypes lists the notification types that have built-in templates.
func DefaultTypes() []string {
	return []string{BackupCompleted, BackupFailed, RestoreCompleted, RestoreFailed, ConnectionLost, ConnectionRestored}
}

func defaultVersion(typ, channel string) TemplateVersion {
	d, known := defaultTexts[typ]
	v := TemplateVersion{Type: typ, Channel: channel}
	if !known {
		v.Subject = defaultSubject
		switch channel {
		case ChannelWhatsApp:
			v.Body = "*{{.Title}}*\n{{.Message}}\n{{datetime .CreatedAt}}"
		case ChannelWebhook:
			v.Body = "{{.Title}}: {{.Message}}"
		default:
			v.Body = "{{.Title}}\n\n{{.Message}}\n" + emailFooter
		}
		return v
	}
	v.Subject = `[{{.Product}}] ` + d.heading + `{{with index .Data "` + d.subjectData + `"}}: {{.}}{{end}}`
	switch channel {
	case ChannelWhatsApp:
		v.Body = d.emoji + " *" + d.heading + "*\n{{.Title}}{{with .Message}}\n{{.}}{{end}}" + whatsappFooter
	case ChannelWebhook:
		v.Body = d.heading + ": {{.Title}}{{with .Message}} — {{.}}{{end}}"
	default:
		v.Body = d.heading + "\n\n{{.Title}}\n{{with .Message}}\n{{.}}\n{{end}}" + emailFooter
	}
	return v
}

var builtins sync.Map // templateKey → *parsedTemplate

func builtin(typ, channel string) *parsedTemplate {
	if validChannel(channel) != nil {
		return nil
	}
	if _, known := defaultTexts[typ]; !known {
		typ = "" // one generic template for every other type
	}
	k := templateKey{typ, channel}
	if p, ok := builtins.Load(k); ok {
		return p.(*parsedTemplate)
	}
	v := defaultVersion(typ, channel)
	p, err := parseVersion(v)
	if err == nil {
		err = p.trial()
	}
	if err != nil {
		panic("notify: built-in template: " + err.Error())
	}
	actual, _ := builtins.LoadOrStore(k, p)
	return actual.(*parsedTemplate)
}
