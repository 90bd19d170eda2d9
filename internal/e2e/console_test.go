package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// browser starts headless Chromium (Debian's chromium, which .ci/run
// installs) and returns a context driving one tab, and the JavaScript
// errors and console errors the page reported so far. Without Chromium
// the test skips, unless DG_REQUIRE_SERVICES=1.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("DG_REQUIRE_SERVICES") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium; .ci/run does)")
		}
		t.Skip("chromium is not installed (apt-get install chromium): the console's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser before anything listens to it
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// The answers to the wrong token (401) and the wrong phrase (422)
			// the test sends are logged by the browser; they are expected.
			expected := m.Source == "network" && (strings.Contains(m.Text, "status of 401") || strings.Contains(m.Text, "status of 422"))
			if !expected && (m.IsException() || m.Type == "error" || m.Source == "security") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), problems...) }
}

// screenshot saves the page as name.png in $DG_SCREENSHOTS (or the test's
// temporary directory) and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DG_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](accessibilityCheck))
	if err != nil {
		t.Fatalf("accessibility check of %s: %v", name, err)
	}
	for _, p := range found {
		t.Errorf("%s: %s", name, p)
	}
}

// accessibilityCheck lists what a screen reader user would miss on the
// page (the cheap part of an axe audit): a language, one h1, a label for
// every visible field, a name for every button, link and picture, no
// duplicate id (labels and aria references point by id).
const accessibilityCheck = `(() => {
  const out = [];
  const visible = (el) => !el.closest("[hidden]") && el.getClientRects().length > 0;
  const named = (el) => (el.getAttribute("aria-label") || el.textContent || el.title || "").trim() !== "" ||
    (el.getAttribute("aria-labelledby") || "").split(" ").some((id) => (document.getElementById(id)?.textContent || "").trim());
  const what = (el) => el.outerHTML.slice(0, 90);
  if (!document.documentElement.lang) out.push("no lang on <html>");
  const h1 = [...document.querySelectorAll("h1")].filter(visible).length;
  if (h1 !== 1) out.push(h1 + " visible h1 elements, want 1");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (visible(el) && !(el.labels && el.labels.length) && !named(el)) out.push("a field without a label: " + what(el));
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (visible(el) && !named(el)) out.push("a control without a name: " + what(el));
  }
  for (const el of document.querySelectorAll("img, svg")) {
    if (el.closest("[aria-hidden=true]") || el.parentElement.closest("svg")) continue;
    if (el.tagName === "IMG" ? el.getAttribute("alt") === null : !(el.getAttribute("role") === "img" && named(el))) out.push("a picture without a text: " + what(el));
  }
  const ids = {};
  for (const el of document.querySelectorAll("[id]")) ids[el.id] = (ids[el.id] || 0) + 1;
  for (const [id, n] of Object.entries(ids)) if (n > 1) out.push(n + " elements with id " + id);
  return out;
})()`

// signIn signs in with token on the console's sign-in form.
func signIn(token string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SetValue(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`form.signin button[type="submit"]`)),
	)
}

// text runs steps, then returns the text of the element sel; read again
// for a moment while it is empty (a live update may be redrawing the page).
func text(ctx context.Context, sel string, steps ...chromedp.Action[chromedp.Void]) (string, error) {
	if err := chromedp.Do(ctx, steps...); err != nil {
		return "", err
	}
	for range 20 {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil || strings.TrimSpace(got) != "" {
			return got, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", nil
}

// download clicks the button sel and returns the sha256 ("sha256:<hex>")
// of the file the browser saved.
func download(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	dir := t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	done := make(chan cdpbrowser.EventDownloadProgress, 1)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for ev, err := range chromedp.BrowserEvents(lctx, cdpbrowser.DownloadProgress) {
			if err != nil {
				return
			}
			if ev.State == cdpbrowser.DownloadProgressStateCompleted || ev.State == cdpbrowser.DownloadProgressStateCanceled {
				done <- ev
				return
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	select {
	case ev := <-done:
		if ev.State != cdpbrowser.DownloadProgressStateCompleted {
			t.Fatalf("download %s", ev.State)
		}
		b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
		if err != nil {
			t.Fatalf("the downloaded file: %v", err)
		}
		sum := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(sum[:])
	case <-ctx.Done():
		t.Fatalf("no download finished: %v", ctx.Err())
		return ""
	}
}

// count is the number of elements the CSS selector sel matches.
func count(ctx context.Context, sel string) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// The console in a real browser against a server process: sign-in (a
// wrong token is refused with a message), the dashboard, the datasources
// with their status badges updated live from the event stream, the
// Backups tab with every copy's status and a restore confirmed with the
// phrase (a wrong one shows the API's message) whose log is followed live
// and whose data came back, and a read-only token that sees no control it
// may not use. No script error and no blocked resource (the strict
// Content-Security-Policy) on the way.
func TestConsole(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	app := sqliteApp(t, 10)
	wantRows, wantSum := content(t, app)
	var ds httpapi.Datasource
	admin.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "orders-db", "type": "sqlite", "path": app}, &ds)
	var locs []httpapi.StorageLocation
	admin.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	var job httpapi.BackupJob
	admin.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "nightly", "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[0].ID}}, &job)
	var run httpapi.Execution
	admin.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &run)
	if x := admin.waitExecution(run.ID); x.Status != "completed" {
		t.Fatalf("backup: %+v", x)
	}
	reader := apiToken(admin, httpapi.PermRead)

	res := srv.Send(t, "GET", "/", "", nil)
	if res.Code != http.StatusOK || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET /: %d, CSP %q", res.Code, res.Header.Get("Content-Security-Policy"))
	}

	ctx, problems := browser(t)
	got, err := text(ctx, "form.signin .error",
		chromedp.Navigate(srv.URL+"/"),
		signIn("not-a-token"),
		chromedp.WaitVisible(chromedp.CSS("form.signin .error:not(:empty)")))
	if err != nil || !strings.Contains(got, "not valid") {
		t.Fatalf("a wrong token: %q, %v", got, err)
	}
	screenshot(t, ctx, "signin")

	got, err = text(ctx, "main", signIn(admin.token), chromedp.WaitVisible(chromedp.CSS("#dash-title")))
	if err != nil || !strings.Contains(got, "Datasources") || !strings.Contains(got, "nightly") {
		t.Fatalf("dashboard: %q, %v", got, err)
	}
	screenshot(t, ctx, "dashboard")

	got, err = text(ctx, "main table",
		chromedp.Click(chromedp.CSS(`nav a[href="#/datasources"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ds-title")))
	buttons, cerr := count(ctx, `button[aria-label^="Check "]`)
	if err != nil || cerr != nil || !strings.Contains(got, "orders-db") || buttons != 1 {
		t.Fatalf("datasources as admin: %q, %d check buttons, %v %v", got, buttons, err, cerr)
	}

	// One datasource: a check now draws its latency chart; its edit form
	// comes filled in (never the password), its type fixed.
	err = chromedp.Do(ctx,
		chromedp.Click(`//td/a[.="orders-db"]`),
		chromedp.WaitVisible(chromedp.CSS("#dd-title")),
		chromedp.Click(`//button[text()="Check now"]`),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")))
	if err != nil {
		t.Fatalf("datasource page: %v", err)
	}
	screenshot(t, ctx, "datasource")
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(`//a[text()="Edit"]`),
		chromedp.Navigate(srv.URL+"/#/datasources/"+ds.ID+"/edit"), // the Edit link's target (a click could land on a page being redrawn)
		chromedp.WaitVisible(chromedp.CSS("#dn-title")))
	path, verr := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#df-path")))
	typeFixed, derr := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("df-type").disabled`))
	if err != nil || verr != nil || derr != nil || path != app || !typeFixed {
		t.Fatalf("edit form: path %q, type fixed %v (%v %v %v)", path, typeFixed, err, verr, derr)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`nav a[href="#/datasources"]`)), chromedp.WaitVisible(chromedp.CSS("#ds-title"))); err != nil {
		t.Fatal(err)
	}

	// A new datasource through the form: the API's field error shows next
	// to the field it names, then a good path is accepted.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="#/datasources/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#dn-title")),
		chromedp.SetValue(chromedp.CSS("#df-name"), "files-src"),
		chromedp.SetValue(chromedp.CSS("#df-type"), "files"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error { // as a person picking it would
			_, err := chromedp.Evaluate[bool](`document.getElementById("df-type").dispatchEvent(new Event("change"))`)(ctx, tg)
			return err
		}),
		chromedp.SetValue(chromedp.CSS("#df-path"), "relative/dir"),
		chromedp.Click(chromedp.CSS(`form.stacked button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#df-path-error:not(:empty)")))
	fieldError, terr := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#df-path-error")))
	if err != nil || terr != nil || !strings.Contains(fieldError, "absolute") {
		t.Fatalf("a relative path: field error %q, %v %v", fieldError, err, terr)
	}
	if hostShown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("df-host").offsetParent !== null`)); err != nil || hostShown {
		t.Fatalf("a files datasource's form shows the host field (%v)", err)
	}
	screenshot(t, ctx, "datasource-form")
	got, err = text(ctx, "main table",
		chromedp.SetValue(chromedp.CSS("#df-path"), t.TempDir()),
		chromedp.Click(chromedp.CSS(`form.stacked button[type="submit"]`)),
		chromedp.WaitVisible(`//td[.="files-src"]`))
	if err != nil || !strings.Contains(got, "files-src") {
		t.Fatalf("the new datasource: %q, %v", got, err)
	}

	// Backup jobs: run one now and follow it to completion.
	got, err = text(ctx, "main",
		chromedp.Click(chromedp.CSS(`nav a[href="#/jobs"]`)),
		chromedp.WaitVisible(chromedp.CSS("#jobs-title")),
		chromedp.Click(chromedp.CSS(`button[aria-label="Run nightly now"]`)),
		chromedp.WaitVisible(`//h1[@id="ex-title"]/span[text()="completed"]`))
	if err != nil || !strings.Contains(got, "backup completed") {
		t.Fatalf("run now, followed live: %q, %v", got, err)
	}

	// A new backup job: the schedule read back in words as it is typed, a
	// schedule the API refuses shown at its field, then the job created.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="#/jobs"]`)),
		chromedp.WaitVisible(chromedp.CSS("#jobs-title")),
		chromedp.Click(chromedp.CSS(`a[href="#/jobs/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#jn-title")),
		chromedp.SetValue(chromedp.CSS("#jf-name"), "weekly"),
		chromedp.SetValue(chromedp.CSS("#jf-datasource_id"), ds.ID),
		chromedp.SendKeys(chromedp.CSS("#jf-schedule"), "0 2 * * 0"))
	words, werr := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#jf-schedule + .hint")))
	if err != nil || werr != nil || words != "every Sunday at 02:00 (UTC)" {
		t.Fatalf("schedule in words: %q (%v %v)", words, err, werr)
	}
	got, err = text(ctx, "#jf-schedule ~ .field-error",
		chromedp.SetValue(chromedp.CSS("#jf-schedule"), "@every 1s"),
		chromedp.Click(`//button[text()="Create job"]`),
		chromedp.WaitVisible(chromedp.CSS("#jf-schedule ~ .field-error:not(:empty)")))
	if err != nil || got == "" {
		t.Fatalf("a refused schedule: %q, %v", got, err)
	}
	got, err = text(ctx, "#je-title",
		chromedp.SetValue(chromedp.CSS("#jf-schedule"), "0 2 * * 0"),
		chromedp.Click(`//button[text()="Create job"]`),
		chromedp.WaitVisible(chromedp.CSS("#je-title")))
	if err != nil || got != "weekly" {
		t.Fatalf("the new job: %q, %v", got, err)
	}

	// The Backups tab: the datasource, its backup, the copy available.
	got, err = text(ctx, "main table",
		chromedp.Click(chromedp.CSS(`nav a[href="#/backups"]`)),
		chromedp.WaitVisible(chromedp.CSS("#bk-title")),
		chromedp.Click(chromedp.CSS(`main table a`)),
		chromedp.WaitVisible(chromedp.CSS("#dsb-title")))
	if err != nil || !strings.Contains(got, "available") || !strings.Contains(got, locs[0].Name) {
		t.Fatalf("backups of the datasource: %q, %v", got, err)
	}
	screenshot(t, ctx, "backups")

	// Download the newest backup: the browser saves its file, byte for
	// byte the backup (the link carries a ticket, not the token).
	var shown []httpapi.Backup
	admin.must(http.StatusOK, "GET", "/api/backups/datasources/"+ds.ID, nil, &shown)
	if sum := download(t, ctx, `main button[aria-label^="Download"]`); len(shown) == 0 || sum != shown[0].Checksum {
		t.Fatalf("downloaded sha256 %s, want the newest backup's (%d shown)", sum, len(shown))
	}

	// Damage the database, then restore the backup over it: a wrong phrase
	// first, the API's message shown in the dialog.
	mustExec(t, app, `DELETE FROM orders`)
	got, err = text(ctx, "dialog.restore .error",
		chromedp.Click(chromedp.CSS(`main button[aria-label^="Restore"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog.restore #rs-phrase")),
		chromedp.SendKeys(chromedp.CSS("#rs-phrase"), "restaurar"),
		chromedp.Click(chromedp.CSS(`dialog.restore button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog.restore .error:not(:empty)")))
	if err != nil || !strings.Contains(got, "confirmation phrase does not match") {
		t.Fatalf("a wrong phrase: %q, %v", got, err)
	}
	screenshot(t, ctx, "restore-dialog")
	got, err = text(ctx, "main",
		chromedp.SetValue(chromedp.CSS("#rs-phrase"), "RESTAURAR"),
		chromedp.Click(chromedp.CSS(`dialog.restore button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ex-title")),
		chromedp.WaitVisible(`//h1[@id="ex-title"]/span[text()="completed"]`))
	if err != nil || !strings.Contains(got, "[RESTORE]") {
		t.Fatalf("the restore, followed live: %q, %v", got, err)
	}
	screenshot(t, ctx, "restore-log")
	if n, sum := content(t, app); n != wantRows || sum != wantSum {
		t.Fatalf("after the restore: %d rows (%s), want %d (%s)", n, sum, wantRows, wantSum)
	}

	// Notifications: the bell counts the unread ones; mark all read.
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("a.bell .count")),
		chromedp.Click(chromedp.CSS("a.bell")),
		chromedp.WaitVisible(chromedp.CSS("#nt-title")),
		chromedp.WaitVisible(chromedp.CSS("ul.notifications li.unread")))
	if err != nil {
		t.Fatalf("notifications: %v", err)
	}
	screenshot(t, ctx, "notifications")
	err = chromedp.Do(ctx,
		chromedp.Click(`//button[text()="Mark all read"]`),
		chromedp.WaitNotPresent(chromedp.CSS("ul.notifications li.unread")),
		chromedp.WaitNotPresent(chromedp.CSS("a.bell .count")))
	if err != nil {
		t.Fatalf("mark all read: %v", err)
	}

	// API tokens: a new one's secret is shown once and works; revoked, it
	// no longer does.
	secret, err := text(ctx, "code.secret",
		chromedp.Click(chromedp.CSS(`nav a[href="#/tokens"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tk-title")),
		chromedp.SetValue(chromedp.CSS("#nt-name"), "ci-reader"),
		chromedp.Click(chromedp.CSS("#perm-read")),
		chromedp.Click(`//button[text()="Create token"]`),
		chromedp.WaitVisible(chromedp.CSS("code.secret")))
	if err != nil || secret == "" {
		t.Fatalf("new token: %q, %v", secret, err)
	}
	var me httpapi.APIToken
	client{t, srv, secret}.must(http.StatusOK, "GET", "/api/tokens/me", nil, &me)
	if me.Name != "ci-reader" || len(me.Permissions) != 1 || me.Permissions[0] != httpapi.PermRead {
		t.Fatalf("the token made in the console: %+v", me)
	}
	screenshot(t, ctx, "tokens")
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(`//td[starts-with(text(),"ci-reader")]`),
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke ci-reader"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Revoke ci-reader"]`)))
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	client{t, srv, secret}.must(http.StatusUnauthorized, "GET", "/api/tokens/me", nil, nil)

	// Settings: a webhook with a secret; the secret is never shown again,
	// and a new URL without it is refused at the secret's field. A
	// template's new version: a broken one refused with the API's message.
	var tmpl struct {
		ID string `json:"id"`
	}
	admin.must(http.StatusCreated, "POST", "/api/system/notification-templates",
		map[string]any{"type": "backup_failed", "channel": "webhook", "body": "{{.Title}}"}, &tmpl)
	got, err = text(ctx, "#st-title ~ form p[role=status]",
		chromedp.Click(chromedp.CSS(`nav a[href="#/settings"]`)),
		chromedp.WaitVisible(chromedp.CSS("#st-title")),
		chromedp.Click(chromedp.CSS("#cs-webhook-enabled")),
		chromedp.SetValue(chromedp.CSS("#cs-webhook-url"), "http://127.0.0.1:9/hook"),
		chromedp.SetValue(chromedp.CSS("#cs-webhook-secret"), "wh-s3cret-0123456789abcdef"),
		chromedp.Click(`//button[text()="Save channels"]`),
		chromedp.WaitVisible(`//form//p[(@role="status" and text()="Saved.") or (@class="error" and text()!="")]`))
	if err != nil || got != "Saved." {
		msg, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Text(chromedp.CSS("#st-title ~ form p.error")))
		t.Fatalf("save the webhook: %q, %v (%s)", got, err, msg)
	}
	var channels struct {
		Webhook struct {
			Enabled bool   `json:"enabled"`
			URL     string `json:"url"`
			Secret  string `json:"secret"`
		} `json:"webhook"`
	}
	admin.must(http.StatusOK, "GET", "/api/system/settings/notifications", nil, &channels)
	if !channels.Webhook.Enabled || channels.Webhook.URL != "http://127.0.0.1:9/hook" || channels.Webhook.Secret != "********" {
		t.Fatalf("stored webhook: %+v", channels.Webhook)
	}
	got, err = text(ctx, "#cs-webhook-secret + .field-error",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#cs-webhook-url")),
		chromedp.SetValue(chromedp.CSS("#cs-webhook-url"), "http://127.0.0.1:9/elsewhere"),
		chromedp.Click(`//button[text()="Save channels"]`),
		chromedp.WaitVisible(chromedp.CSS("#cs-webhook-secret + .field-error:not(:empty)")))
	if err != nil || got == "" {
		t.Fatalf("a new URL without the secret: %q, %v", got, err)
	}
	if shown, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#cs-webhook-secret"))); err != nil || shown != "" {
		t.Fatalf("the stored secret is shown: %q (%v)", shown, err)
	}
	got, err = text(ctx, "article.template p[role=status]",
		chromedp.SetValue(chromedp.CSS(`textarea[aria-label="backup_failed · webhook body"]`), "{{.Title"),
		chromedp.Click(`//button[text()="Save as a new version"]`),
		chromedp.WaitVisible(chromedp.CSS("article.template p[role=status]:not(:empty)")))
	if err != nil || !strings.Contains(got, "template") {
		t.Fatalf("a broken template: %q, %v", got, err)
	}
	got, err = text(ctx, "article.template p[role=status]",
		chromedp.SetValue(chromedp.CSS(`textarea[aria-label="backup_failed · webhook body"]`), "failed: {{.Title}}"),
		chromedp.Click(`//button[text()="Save as a new version"]`),
		chromedp.WaitVisible(`//article//p[@role="status" and starts-with(text(),"Saved as version")]`))
	if err != nil || got != "Saved as version 2." {
		t.Fatalf("a new template version: %q, %v", got, err)
	}
	screenshot(t, ctx, "settings")

	// Signed in with a read-only token: the same lists, no control.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("header button")), // sign out
		signIn(reader.token),
		chromedp.WaitVisible(chromedp.CSS("#dash-title")),
		chromedp.Click(chromedp.CSS(`nav a[href="#/datasources"]`)),
		chromedp.WaitVisible(`//td[.="orders-db"]`))
	buttons, cerr = count(ctx, "main button")
	if err != nil || cerr != nil || buttons != 0 {
		t.Fatalf("datasources as a read-only token: %d buttons, %v %v", buttons, err, cerr)
	}
	if links, err := count(ctx, `nav a[href="#/tokens"], a[href="#/datasources/new"]`); err != nil || links != 0 {
		t.Fatalf("a read-only token sees %d links to what it may not do (%v)", links, err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/#/backups/"+ds.ID),
		chromedp.WaitVisible(chromedp.CSS("#dsb-title")))
	buttons, cerr = count(ctx, "main button")
	if err != nil || cerr != nil || buttons != 0 {
		t.Fatalf("backups as a read-only token: %d buttons, %v %v", buttons, err, cerr)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("a.bell")),
		chromedp.WaitVisible(chromedp.CSS("ul.notifications li")))
	buttons, cerr = count(ctx, "main button")
	if err != nil || cerr != nil || buttons != 0 {
		t.Fatalf("notifications as a read-only token: %d buttons, %v %v", buttons, err, cerr)
	}

	// A health check run through the API shows in the open page without a
	// reload: the console follows the event stream.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`nav a[href="#/datasources"]`)),
		chromedp.WaitVisible(`//td[.="orders-db"]`)); err != nil {
		t.Fatal(err)
	}
	admin.must(http.StatusOK, "POST", "/api/datasources/"+ds.ID+"/health-check", nil, nil)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`//span[contains(@class,"badge") and text()="healthy"]`)); err != nil {
		t.Fatalf("the badge did not turn healthy live: %v", err)
	}
	screenshot(t, ctx, "datasources")

	// On a phone-width screen in the dark theme: nothing wider than the
	// screen, the dark colors applied.
	_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx, chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/#/backups/"+ds.ID),
		chromedp.WaitVisible(chromedp.CSS("#dsb-title")))
	if err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil || overflow {
		t.Errorf("the page is wider than a phone's screen (%v)", err)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(23, 24, 26)" {
		t.Errorf("dark theme: body background %q (%v)", bg, err)
	}
	screenshot(t, ctx, "phone-dark")

	if p := problems(); len(p) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(p, "\n"))
	}
}

// TestConsoleVerify: a token holding backups.restore_verify but not
// backups.restore opens the Restore dialog in verification mode only
// (it cannot turn it off), confirms with VERIFICAR RESTORE (RESTAURAR is
// refused with the API's message), and follows the verification of a
// PostgreSQL backup live to completed; the database itself is untouched
// and no verification database is left behind.
func TestConsoleVerify(t *testing.T) {
	t.Parallel()
	dsn := testsvc.NewPostgresDatabase(t)
	psql := func(sql string) string {
		t.Helper()
		out, err := exec.Command("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v: %s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	psql(`CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 500) g`)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	var ds httpapi.Datasource
	admin.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "shop", "type": "postgres",
		"host": u.Hostname(), "port": port, "database": strings.TrimPrefix(u.Path, "/"), "username": u.User.Username()}, &ds)
	var locs []httpapi.StorageLocation
	admin.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	var job httpapi.BackupJob
	admin.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "shop-nightly", "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[0].ID}}, &job)
	runBackup(admin, job.ID)
	verifier := apiToken(admin, httpapi.PermRead, httpapi.PermRestoreVerify)

	ctx, problems := browser(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		signIn(verifier.token),
		chromedp.WaitVisible(chromedp.CSS("#dash-title")),
		chromedp.Navigate(srv.URL+"/#/backups/"+ds.ID),
		chromedp.WaitVisible(chromedp.CSS("#dsb-title")),
		chromedp.Click(chromedp.CSS(`main button[aria-label^="Restore"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog.restore #rs-phrase")))
	if err != nil {
		t.Fatalf("the Restore dialog: %v", err)
	}
	mode, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[document.getElementById("rs-verify").checked, document.getElementById("rs-verify").disabled]`))
	if err != nil || len(mode) != 2 || !mode[0] || !mode[1] {
		t.Fatalf("verification mode checked and fixed: %v (%v)", mode, err)
	}
	if n, err := count(ctx, "main button, dialog button"); err != nil || n != 3 { // Restore, Cancel, the dialog's Restore
		t.Errorf("%d buttons for a verifier (%v): no Download", n, err)
	}
	got, err := text(ctx, "dialog.restore .error",
		chromedp.SendKeys(chromedp.CSS("#rs-phrase"), "RESTAURAR"),
		chromedp.Click(chromedp.CSS(`dialog.restore button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("dialog.restore .error:not(:empty)")))
	if err != nil || !strings.Contains(got, "VERIFICAR RESTORE") {
		t.Fatalf("the restore phrase for a verification: %q, %v", got, err)
	}
	got, err = text(ctx, "main",
		chromedp.SetValue(chromedp.CSS("#rs-phrase"), "VERIFICAR RESTORE"),
		chromedp.Click(chromedp.CSS(`dialog.restore button[type="submit"]`)),
		chromedp.WaitVisible(`//h1[@id="ex-title"]/span[text()="completed"]`))
	if err != nil || !strings.HasPrefix(got, "verify") {
		t.Fatalf("the verification, followed live: %q, %v", got, err)
	}
	screenshot(t, ctx, "verify-log")
	if n := psql(`SELECT count(*) FROM orders`); n != "500" {
		t.Errorf("the source after its verification: %s rows", n)
	}
	if left := psql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'dg_verify_%'`); left != "0" {
		t.Errorf("%s verification databases left", left)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}

// TestConsolePaging: a list longer than a page shows its first page and a
// "Show more" that appends the next one by the API's Link header, until
// the list is whole; a choice among datasources (the new job form) offers
// every one of them, not the first page only.
func TestConsolePaging(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	const n = 57 // a page is 50
	for i := range n {
		admin.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": fmt.Sprintf("src-%02d", i),
			"type": "files", "path": t.TempDir()}, nil)
	}
	ctx, problems := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		signIn(admin.token),
		chromedp.WaitVisible(chromedp.CSS("#dash-title")),
		chromedp.Navigate(srv.URL+"/#/datasources"),
		chromedp.WaitVisible(`//td/a[.="src-49"]`))
	rows, cerr := count(ctx, "main tbody tr")
	if err != nil || cerr != nil || rows != 50 {
		t.Fatalf("first page: %d rows (%v %v)", rows, err, cerr)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("button.more")),
		chromedp.WaitVisible(fmt.Sprintf(`//td/a[.="src-%02d"]`, n-1)),
		chromedp.WaitNotPresent(chromedp.CSS("button.more")))
	rows, cerr = count(ctx, "main tbody tr")
	if err != nil || cerr != nil || rows != n {
		t.Fatalf("after Show more: %d rows, want %d (%v %v)", rows, n, err, cerr)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/#/jobs/new"),
		chromedp.WaitVisible(chromedp.CSS("#jn-title")))
	options, cerr := count(ctx, "#jf-datasource_id option")
	if err != nil || cerr != nil || options != n {
		t.Fatalf("the new job form offers %d datasources, want %d (%v %v)", options, n, err, cerr)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser problems: %v", p)
	}
}
