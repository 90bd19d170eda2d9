// Command consoleload measures the web console in headless Chromium
// against a running server: for the dashboard and the Backups tab, the
// first contentful paint, the time until the page shows the API's data
// (the console marks each render "dg:render") and the bytes transferred.
// bench/console.sh seeds the server and runs it; it exits 1 when a page
// takes more than -target to show its data.
//
// The token is read from the file -token-file, never from argv.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// pageTimes is what the page's Performance API says of one load.
type pageTimes struct {
	FCP      float64 `json:"fcp"`
	Rendered float64 `json:"rendered"`
	Bytes    float64 `json:"bytes"`
	Rows     int     `json:"rows"`
}

const measure = `new Promise((resolve) => {
  const done = () => {
    const r = performance.getEntriesByName("dg:render");
    if (!r.length) return setTimeout(done, 5);
    const paint = performance.getEntriesByName("first-contentful-paint");
    const nav = performance.getEntriesByType("navigation")[0];
    const bytes = performance.getEntriesByType("resource").reduce((n, e) => n + e.transferSize, nav ? nav.transferSize : 0);
    resolve({fcp: paint.length ? paint[0].startTime : -1, rendered: r[0].startTime, bytes,
      rows: document.querySelectorAll("main tr").length});
  };
  done();
})`

func main() {
	base := flag.String("url", "", "the server's base URL")
	tokenFile := flag.String("token-file", "", "a file holding an admin token")
	runs := flag.Int("runs", 5, "loads of each page")
	target := flag.Duration("target", time.Second, "the most a page may take to show its data")
	flag.Parse()
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(err)
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		fail(fmt.Errorf("chromium is needed (apt-get install chromium): %w", err))
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Sign in once: the token goes to the tab's sessionStorage as the
	// sign-in form would put it. The first load, with an empty cache,
	// tells what the console's own files weigh on the wire.
	err = chromedp.Do(ctx, chromedp.Navigate(*base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if err != nil {
		fail(fmt.Errorf("load the console: %w", err))
	}
	cold, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("resource").reduce((n, e) => n + e.transferSize, performance.getEntriesByType("navigation")[0].transferSize)`))
	if err != nil {
		fail(err)
	}
	fmt.Printf("  console files, first load: %.1f KiB transferred\n", cold/1024)
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#token"), strings.TrimSpace(string(tok))),
		chromedp.Click(chromedp.CSS(`form.signin button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#dash-title")))
	if err != nil {
		fail(fmt.Errorf("sign in: %w", err))
	}
	missed := false
	for _, page := range []struct{ name, hash string }{{"dashboard", "#/"}, {"backups", "#/backups"}} {
		var worst pageTimes
		var all []string
		for range *runs {
			// A new load of the page each time (the browser's cache holds
			// the assets after the first, as it would for a person).
			if err := chromedp.Do(ctx, chromedp.Navigate(*base+"/"+page.hash), chromedp.Reload()); err != nil {
				fail(err)
			}
			t, err := chromedp.Run(ctx, chromedp.Evaluate[pageTimes](measure, chromedp.EvalAwaitPromise))
			if err != nil {
				fail(err)
			}
			if t.Rendered > worst.Rendered {
				worst = t
			}
			all = append(all, fmt.Sprintf("%.0f", t.Rendered))
		}
		ok := "ok"
		if worst.Rendered > float64(target.Milliseconds()) {
			ok, missed = "MISSED", true
		}
		fmt.Printf("  %-10s worst of %d loads: first paint %4.0f ms, data shown %4.0f ms (target <= %v) %s; %d table rows, %.1f KiB transferred (each load: %s ms)\n",
			page.name, *runs, worst.FCP, worst.Rendered, *target, ok, worst.Rows, worst.Bytes/1024, strings.Join(all, " "))
	}
	if missed {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "consoleload:", err)
	os.Exit(1)
}
