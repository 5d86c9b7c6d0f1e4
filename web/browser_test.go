package web

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/popbridge/popbridge/vault"
)

// chromiumPath finds Debian's chromium; without it the browser tests
// skip, except under CI=true where they fail.
func chromiumPath(t *testing.T) string {
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

// chrome is a headless Chromium with a fresh profile, driven over the
// DevTools protocol. It keeps a screenshot of every page it was shown,
// written out (PNG) if the test fails.
type chrome struct {
	t     *testing.T
	ctx   context.Context
	shots []shot
}

type shot struct {
	name string
	png  []byte
}

func startChrome(t *testing.T) *chrome {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
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
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		// The test server's certificate is made up by httptest.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 820),
	}
	// A bound on the whole browser session, so a hang cannot stall the
	// suite; no step's speed is asserted.
	base, cancelBase := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	c := &chrome{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			c.snap("at-failure")
			c.writeShots()
		}
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return c
}

// run runs actions; on error it fails the test, naming the step.
func (c *chrome) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		c.snap(step)
		c.t.Fatalf("%s: %v", step, err)
	}
	c.snap(step)
}

// read runs an action that reads a string.
func (c *chrome) read(step string, a chromedp.Action[string]) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, a)
	if err != nil {
		c.snap(step)
		c.t.Fatalf("%s: %v", step, err)
	}
	return s
}

// snap keeps a full-page PNG of the current page.
func (c *chrome) snap(name string) []byte {
	b, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return nil
	}
	c.shots = append(c.shots, shot{name, b})
	return b
}

func (c *chrome) writeShots() {
	dir := os.Getenv("POPBRIDGE_FAILURE_SHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "popbridge-web-shots-"); err != nil {
			c.t.Logf("cannot keep screenshots: %v", err)
			return
		}
	}
	for i, s := range c.shots {
		name := fmt.Sprintf("%02d-%s.png", i, strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, strings.ToLower(s.name)))
		os.WriteFile(filepath.Join(dir, name), s.png, 0o644)
	}
	c.t.Logf("screenshots of every page: %s", dir)
}

// saveDocShot writes a screenshot for the README when
// POPBRIDGE_SCREENSHOTS names a directory.
func (c *chrome) saveDocShot(name string) {
	c.t.Helper()
	dir := os.Getenv("POPBRIDGE_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// deviceLogin checks a device password the way a mail client uses it,
// from a client address, by asking the vault, which the gateway's POP3
// login consults. The same flow through the daemon, with curl logging
// in over POP3 against a real Dovecot, is daemon's
// TestWebDeviceDovecotEndToEnd.
func (e *env) deviceLogin(user, password string) error {
	_, err := e.store.Authenticate(context.Background(), user, password, netip.MustParseAddr("198.51.100.23"))
	return err
}

// signInChrome signs in at the provider's own login page.
func (c *chrome) signIn(e *env, user string) {
	c.t.Helper()
	c.run("start page", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`a.button.primary`)))
	c.run("provider login page "+user,
		chromedp.Click(chromedp.CSS(`a.button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), pass))
	c.run("signed in "+user,
		chromedp.Click(chromedp.CSS(`button`)),
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signout`)))
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	return c.read("read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

func TestBrowserUserAndAdminFlows(t *testing.T) {
	e := newEnv(t, nil)
	c := startChrome(t)
	ctx := context.Background()

	// Sign in, which enrols.
	c.signIn(e, alice)
	if got := c.text("h1"); got != "Your devices" {
		t.Fatalf("page after sign-in: heading %q, want Your devices", got)
	}
	u, err := e.store.GetUser(ctx, alice)
	if err != nil || !u.HasGrant {
		t.Fatalf("enrolment by sign-in: user %+v, %v; want a stored grant", u, err)
	}
	if got := c.text(".health"); !strings.Contains(got, "Mailbox access: granted") {
		t.Errorf("grant status: got %q", got)
	}

	// Create device passwords; read the one shown.
	c.run("create phone",
		chromedp.SendKeys(chromedp.CSS(`#name`), "phone"),
		chromedp.Click(chromedp.CSS(`form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)))
	phonePW := c.read("read phone password", chromedp.Value(chromedp.CSS(`#password`)))
	c.run("create scanner",
		chromedp.SendKeys(chromedp.CSS(`#name`), "office scanner"),
		chromedp.SendKeys(chromedp.CSS(`#allow`), "198.51.100.0/24"),
		chromedp.Click(chromedp.CSS(`form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)))
	pw := c.read("read scanner password", chromedp.Value(chromedp.CSS(`#password`)))
	if pw == "" || pw == phonePW {
		t.Fatalf("device passwords: got %q and %q, want two different ones", phonePW, pw)
	}
	if err := e.deviceLogin(alice, pw); err != nil {
		t.Fatalf("login with the password from the page: %v", err)
	}
	c.saveDocShot("web-user.png")

	// Shown once: a reload shows the device, with its last use, but not
	// the password.
	c.run("reload", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`table`)))
	html := c.read("reload", chromedp.OuterHTML(chromedp.CSS(`html`)))
	if strings.Contains(html, pw) {
		t.Fatal("the password is on the page again after a reload")
	}
	if !strings.Contains(html, "198.51.100.23") {
		t.Errorf("device list lacks the last login's address 198.51.100.23")
	}

	// Revoke it in the page; the next login fails.
	c.run("revoke scanner",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke office scanner"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := c.text(".notice"); !strings.Contains(got, "Revoked office scanner") {
		t.Errorf("notice after revoke: got %q", got)
	}
	if err := e.deviceLogin(alice, pw); !errors.Is(err, vault.ErrUnknownDevice) && !errors.Is(err, vault.ErrWrongPassword) {
		t.Fatalf("login after revoke: got %v, want a refused login", err)
	}
	if err := e.deviceLogin(alice, phonePW); err != nil {
		t.Fatalf("the other device after revoke: %v", err)
	}

	// Other users for the admin view: one healthy, one whose grant was
	// refused.
	if _, _, err := e.store.AddDevice(ctx, bob, "laptop", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutGrant(ctx, bob, vault.Tokens{Refresh: "bob-refresh"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutGrant(ctx, "carol@example.org", vault.Tokens{Refresh: "carol-refresh"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.MarkNeedsReenrollment(ctx, "carol@example.org", "invalid_grant"); err != nil {
		t.Fatal(err)
	}

	// Sign out, then in as the admin.
	c.run("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`a.button.primary`)))
	c.signIn(e, admin)
	c.run("admin view", chromedp.Click(chromedp.CSS(`a[href="/admin"]`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	html = c.read("admin view", chromedp.OuterHTML(chromedp.CSS(`html`)))
	for _, want := range []string{alice, bob, "carol@example.org", "needs re-enrolment", "phone", "laptop"} {
		if !strings.Contains(html, want) {
			t.Errorf("admin view lacks %q", want)
		}
	}
	c.saveDocShot("web-admin.png")
	c.run("admin revokes alice's phone",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke phone of `+alice+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := c.text(".notice"); !strings.Contains(got, "Revoked phone of "+alice) {
		t.Errorf("notice after admin revoke: got %q", got)
	}
	if err := e.deviceLogin(alice, phonePW); err == nil {
		t.Fatal("alice's phone still logs in after the admin revoked it")
	}
	// Remove carol, through the disclosure.
	c.run("admin removes carol",
		chromedp.Click(`//tr[th[text()="carol@example.org"]]//summary`),
		chromedp.Click(`//tr[th[text()="carol@example.org"]]//button`),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if _, err := e.store.GetUser(ctx, "carol@example.org"); !errors.Is(err, vault.ErrNoUser) {
		t.Errorf("carol after removal: got %v, want ErrNoUser", err)
	}
	if got := e.obs.get("admin_revoke ok") + e.obs.get("admin_remove_user ok"); got != 2 {
		t.Errorf("admin operations counted: got %d, want 2", got)
	}
}
