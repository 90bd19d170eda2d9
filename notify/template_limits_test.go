package notify

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// nest wraps arg in n calls of f: f (f (… arg)).
func nest(f string, n int, arg string) string {
	return strings.Repeat(f+" (", n-1) + f + " " + arg + strings.Repeat(")", n-1)
}

// big60k is a template prelude setting $b to a 60,000-character string.
const big60k = `{{$a := printf "%01000d" 0}}{{$b := print` +
	` $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a` +
	` $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a}}`

// setWithin runs Set, failing the test if it has not returned after a
// generous 20 s (the limits stop every case in well under a second).
func setWithin(t *testing.T, tm *Templates, subject, body string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- tm.Set(BackupFailed, ChannelEmail, 1, subject, body) }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("Set still running after 20 s")
		return nil
	}
}

// TestTemplateLimitsRefuseAttacks: every template that would render
// without bound is refused by Set with an error matching ErrTemplateLimit
// (or ErrTemplate) whose message names the limit.
func TestTemplateLimitsRefuseAttacks(t *testing.T) {
	const (
		output = "renders more than 64 KiB"
		slow   = "takes longer than 100ms to render: simplify loops"
		loops  = "simplify loops" // the iteration or the time limit, whichever comes first
	)
	for _, tc := range []struct {
		name, subject, body string
		limit               bool     // matches ErrTemplateLimit (else only ErrTemplate)
		want                []string // the message has one of these
	}{
		{"nested range", "", `{{range 10000}}{{range 10000}}x{{end}}{{end}}`, true, []string{output, slow}},
		{"nested range in the subject", `{{range 10000}}{{range 10000}}x{{end}}{{end}}`, "b", true, []string{"subject: " + output, "subject: " + slow}},
		{"empty huge range", "", `{{range 100000000}}{{end}}`, true, []string{loops}},
		{"empty nested ranges", "", `{{range 100000}}{{range 100000}}{{end}}{{end}}`, true, []string{loops}},
		{"huge range in an else", "", `{{range 0}}{{else}}{{range 100000000}}{{end}}{{end}}`, true, []string{loops}},
		{"huge range in if and with", "", `{{if 1}}{{with 2}}{{range 100000000}}{{end}}{{end}}{{end}}`, true, []string{loops}},
		{"slow loop body", "", big60k + `{{range 90000}}{{$_ := upper $b}}{{end}}`, true, []string{slow}},
		{"printf width", "", `{{printf "%0100000000d" 1}}`, true, []string{"printf width is over 1000"}},
		{"printf width of a million", "", `{{printf "%01000000d" 1}}`, true, []string{"printf width is over 1000"}},
		{"printf precision", "", `{{printf "%.5000f" 1.0}}`, true, []string{"printf precision is over 1000"}},
		{"printf width from an argument", "", `{{printf "%*d" 100000000 1}}`, true, []string{"printf width from an argument"}},
		{"printf repeating an argument", "", `{{$s := printf "%0999d" 0}}{{printf "` + strings.Repeat("%[1]s", 100) + `" $s}}`, true, []string{output + " in printf"}},
		{"print amplification", "", big60k + `{{print $b $b}}`, true, []string{output + " in print"}},
		{"println amplification", "", big60k + `{{println $b $b}}`, true, []string{output + " in println"}},
		{"html amplification", "", `{{` + nest("html", 300, `"`+strings.Repeat("&", 2000)+`"`) + `}}`, true, []string{output + " in html"}},
		{"js doubling", "", `{{` + nest("js", 60, `"\\"`) + `}}`, true, []string{output + " in js"}},
		{"urlquery amplification", "", `{{` + nest("urlquery", 200, `"`+strings.Repeat("%", 4000)+`"`) + `}}`, true, []string{output + " in urlquery"}},
		{"upper growing a string", "", `{{$a := print "` + strings.Repeat("ɐ", 500) + `"}}{{upper (print` + strings.Repeat(" $a", 60) + `)}}`, true, []string{output + " in upper"}},
		{"source too long", "", strings.Repeat("x", MaxTemplateSource+1), true, []string{"is longer than 16 KiB"}},
		{"recursive define", "", `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, false, []string{"{{define}}, {{template}} and {{block}} are not supported"}},
		{"self reference", "", `{{template "body"}}`, false, []string{"{{define}}, {{template}} and {{block}} are not supported"}},
		{"block", "", `{{block "b" .}}x{{end}}`, false, []string{"{{define}}, {{template}} and {{block}} are not supported"}},
		{"template in a range", "", `{{range 3}}{{template "body"}}{{end}}`, false, []string{"{{define}}, {{template}} and {{block}} are not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := NewTemplates()
			err := setWithin(t, tm, tc.subject, tc.body)
			if !errors.Is(err, ErrTemplate) || tc.limit && !errors.Is(err, ErrTemplateLimit) {
				t.Fatalf("Set = %v, want ErrTemplate (limit %v)", err, tc.limit)
			}
			found := false
			for _, w := range tc.want {
				found = found || strings.Contains(err.Error(), w)
			}
			if !found {
				t.Errorf("Set = %v\nwant a message with one of %q", err, tc.want)
			}
			if len(tm.Versions(BackupFailed, ChannelEmail)) != 0 {
				t.Error("a refused template was stored")
			}
		})
	}
}

// TestTemplateLimitsLegitimateTemplates: templates within the limits
// render as before, including the guarded builtins.
func TestTemplateLimitsLegitimateTemplates(t *testing.T) {
	tm := NewTemplates()
	body := `{{range $k, $v := .Data}}{{$k}}={{$v}};{{end}}
{{printf "%s=%d %5.1f%% %[1]q" "a" 3 2.5}}
{{print "x" 1 2}}|{{println "y"}}|{{html "<b>&"}}|{{js "it's"}}|{{urlquery "a b&c"}}
{{range 200}}.{{end}}
{{upper .Title}} {{bytes 1536}} {{duration 90}} {{default "none" .Message}}` + strings.Repeat(" ", MaxTemplateSource-300)
	if err := tm.Set(BackupFailed, ChannelWebhook, 1, "{{.Title}}", body); err != nil {
		t.Fatal(err)
	}
	n := Notification{Type: BackupFailed, Title: "job", Data: map[string]any{"b": 2, "a": "1"}}
	_, got, err := tm.Render(n, ChannelWebhook)
	if err != nil {
		t.Fatal(err)
	}
	want := "a=1;b=2;\n" + `a=3   2.5% "a"` + "\n" + `x1 2|y` + "\n" + `|&lt;b&gt;&amp;|it\'s|a+b%26c` + "\n" +
		strings.Repeat(".", 200) + "\nJOB 1.5 KiB 1m30s none"
	if got != want {
		t.Fatalf("render =\n%s\nwant\n%s", got, want)
	}
	// Output right up to the limit is fine.
	if err := tm.Set(BackupFailed, ChannelWebhook, 2, "", fmt.Sprintf(`{{range %d}}%s{{end}}`, MaxTemplateOutput>>10, strings.Repeat("x", 1<<10))); err != nil {
		t.Fatalf("output of exactly MaxTemplateOutput: %v", err)
	}
}

// TestTemplateLimitsAtSend: a template within the limits on the sample
// data but over them on a real notification (or a stored row loaded
// without a trial render) fails its render with ErrTemplateLimit, and the
// channels deliver the built-in default.
func TestTemplateLimitsAtSend(t *testing.T) {
	tm := NewTemplates()
	if err := tm.Set(BackupFailed, ChannelWebhook, 1, "", `{{`+nest("html", 100, ".Title")+`}}`); err != nil {
		t.Fatalf("harmless on the sample: %v", err)
	}
	n := Notification{Type: BackupFailed, Title: strings.Repeat("&", 1000), Message: "m"}
	if _, _, err := tm.Render(n, ChannelWebhook); !errors.Is(err, ErrTemplateLimit) || !strings.Contains(err.Error(), "renders more than 64 KiB in html") {
		t.Fatalf("Render = %v, want ErrTemplateLimit", err)
	}
	_, body, err := render(tm, n, ChannelWebhook)
	if !errors.Is(err, ErrTemplateLimit) || !strings.HasPrefix(body, "Falha no backup: ") {
		t.Fatalf("render with fallback = %q, %v", body, err)
	}
	// A stored row is loaded without rendering, whatever it does.
	if err := tm.LoadVersion(TemplateVersion{Type: BackupFailed, Channel: ChannelWebhook, Version: 2,
		Body: `{{range 10000}}{{range 10000}}x{{end}}{{end}}`}); err != nil {
		t.Fatalf("LoadVersion: %v", err)
	}
	start := time.Now()
	_, body, err = render(tm, Notification{Type: BackupFailed, Title: "T"}, ChannelWebhook)
	if !errors.Is(err, ErrTemplateLimit) || body != "Falha no backup: T" {
		t.Fatalf("render of the stored row = %q, %v", body, err)
	}
	t.Logf("render stopped after %v", time.Since(start))
	// Loading still refuses what cannot be parsed or recurses.
	for _, body := range []string{`{{template "body"}}`, strings.Repeat("x", MaxTemplateSource+1), "{{.Title"} {
		if err := tm.LoadVersion(TemplateVersion{Type: BackupFailed, Channel: ChannelWebhook, Version: 3, Body: body}); !errors.Is(err, ErrTemplate) {
			t.Errorf("LoadVersion(%.20q) = %v", body, err)
		}
	}
}

// TestTemplatesLoadDoesNotRender: loading stored versions parses each once
// and renders none; loading them again (the engine reloads every stored
// row at each template write and every settingsPoll) parses nothing.
func TestTemplatesLoadDoesNotRender(t *testing.T) {
	// A legitimate but slow template: loops close to the limits.
	slowBody := big60k + `{{range 1000}}{{$_ := upper $b}}{{end}}{{.Title}}`
	var vs []TemplateVersion
	for i := 1; i <= 1000; i++ {
		vs = append(vs, TemplateVersion{Type: BackupFailed, Channel: ChannelEmail, Version: i, Body: slowBody})
	}
	vs = append(vs, TemplateVersion{Type: BackupFailed, Channel: ChannelWebhook, Version: 1, Body: `{{range 100000000}}{{end}}`})
	tm := NewTemplates()
	p0, e0 := parses.Load(), executions.Load()
	if err := tm.Load(vs); err != nil {
		t.Fatal(err)
	}
	if p, e := parses.Load()-p0, executions.Load()-e0; p != 2*int64(len(vs)) || e != 0 {
		t.Fatalf("first load: %d parses, %d executions; want %d parses, none executed", p, e, 2*len(vs))
	}
	p0, e0 = parses.Load(), executions.Load()
	if err := tm.Load(vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs[:10] {
		if err := tm.Set(v.Type, v.Channel, v.Version, v.Subject, v.Body); err != nil {
			t.Fatalf("Set of a loaded version: %v", err)
		}
	}
	if p, e := parses.Load()-p0, executions.Load()-e0; p != 0 || e != 0 {
		t.Fatalf("reload: %d parses, %d executions; want none", p, e)
	}
	// A changed version is still refused before parsing.
	changed := vs[0]
	changed.Body = "other"
	if err := tm.LoadVersion(changed); !errors.Is(err, ErrTemplateVersionExists) {
		t.Fatalf("changed version: %v", err)
	}
	if p := parses.Load() - p0; p != 0 {
		t.Fatalf("a changed version was parsed")
	}
	if v, _ := tm.Current(BackupFailed, ChannelEmail); v.Version != 1000 {
		t.Fatalf("current = %d", v.Version)
	}
}

// TestTemplateWithoutSubjectReloads: a version stored without a subject
// loads again as the same content (it used to differ from its default
// subject and be refused as a rewrite).
func TestTemplateWithoutSubjectReloads(t *testing.T) {
	tm := NewTemplates()
	v := TemplateVersion{Type: BackupFailed, Channel: ChannelWebhook, Version: 1, Body: "b"}
	if err := tm.Set(v.Type, v.Channel, v.Version, v.Subject, v.Body); err != nil {
		t.Fatal(err)
	}
	if err := tm.LoadVersion(v); err != nil {
		t.Fatalf("reload of a version without subject: %v", err)
	}
}

// BenchmarkTemplatesReload is the engine's reload of 1,000 stored
// versions already loaded.
func BenchmarkTemplatesReload(b *testing.B) {
	var vs []TemplateVersion
	for i := 1; i <= 1000; i++ {
		vs = append(vs, TemplateVersion{Type: BackupFailed, Channel: ChannelEmail, Version: i, Body: big60k + `{{range 1000}}{{$_ := upper $b}}{{end}}`})
	}
	tm := NewTemplates()
	if err := tm.Load(vs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tm.Load(vs); err != nil {
			b.Fatal(err)
		}
	}
}
