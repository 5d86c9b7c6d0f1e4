// Package browsertest drives a headless Chromium for the web page's
// tests, over the DevTools protocol (chromedp).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Require returns the path of Debian's chromium. Without it the test
// skips, except under CI=true where it fails. Start calls it; a test
// that starts other servers first calls it before them.
func Require(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("chromium not found (CI=true: refusing to skip)")
	}
	t.Skip("chromium not found; install it (apt-get install chromium) or run the whole suite with: sudo bash .ci/run")
	return ""
}

// Option changes how Start runs Chromium.
type Option func(*[]chromedp.ExecAllocatorOption)

// IgnoreCertificateErrors accepts any server certificate, such as the
// one httptest makes up.
func IgnoreCertificateErrors() Option {
	return func(opts *[]chromedp.ExecAllocatorOption) {
		*opts = append(*opts, chromedp.Flag("ignore-certificate-errors", true))
	}
}

// Browser is a headless Chromium with a fresh profile. It keeps a
// screenshot of every step, written out (PNG) if the test fails: to
// $POPBRIDGE_FAILURE_SHOTS, or a new temporary directory.
type Browser struct {
	t     *testing.T
	ctx   context.Context
	shots []shot
}

type shot struct {
	name string
	png  []byte
}

// Start starts Chromium for the test; it is stopped when the test ends.
func Start(t *testing.T, options ...Option) *Browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Require(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 820),
	}
	for _, o := range options {
		o(&opts)
	}
	// A bound on the whole browser session, so a hang cannot stall the
	// suite; no step's speed is asserted.
	base, cancelBase := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			b.snap("at-failure")
			b.writeShots()
		}
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// Run runs actions; on error it fails the test, naming the step.
func (b *Browser) Run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.snap(step)
		b.t.Fatalf("%s: %v", step, err)
	}
	b.snap(step)
}

// Read runs an action that reads a string; on error it fails the test,
// naming the step.
func (b *Browser) Read(step string, a chromedp.Action[string]) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.snap(step)
		b.t.Fatalf("%s: %v", step, err)
	}
	return s
}

// Text returns the text of the visible element sel (CSS).
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return b.Read("read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// SaveDocShot writes a screenshot of the page as name into the
// directory $POPBRIDGE_SCREENSHOTS, for the documentation; unset, it
// does nothing.
func (b *Browser) SaveDocShot(name string) {
	b.t.Helper()
	dir := os.Getenv("POPBRIDGE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// snap keeps a full-page PNG of the current page.
func (b *Browser) snap(name string) {
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err == nil {
		b.shots = append(b.shots, shot{name, png})
	}
}

func (b *Browser) writeShots() {
	dir := os.Getenv("POPBRIDGE_FAILURE_SHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "popbridge-web-shots-"); err != nil {
			b.t.Logf("cannot keep screenshots: %v", err)
			return
		}
	}
	for i, s := range b.shots {
		name := fmt.Sprintf("%02d-%s.png", i, strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, strings.ToLower(s.name)))
		os.WriteFile(filepath.Join(dir, name), s.png, 0o644)
	}
	b.t.Logf("screenshots of every step: %s", dir)
}
