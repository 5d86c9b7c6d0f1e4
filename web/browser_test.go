package web

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/popbridge/popbridge/internal/browsertest"
	"github.com/popbridge/popbridge/vault"
)

// deviceLogin checks a device password the way a mail client uses it,
// from a client address, by asking the vault, which the gateway's POP3
// login consults. The same flow through the daemon, with curl logging
// in over POP3 against a real Dovecot, is daemon's
// TestWebDeviceDovecotEndToEnd.
func (e *env) deviceLogin(user, password string) error {
	_, err := e.store.Authenticate(context.Background(), user, password, netip.MustParseAddr("198.51.100.23"))
	return err
}

// signIn signs in at the provider's own login page.
func signIn(t *testing.T, c *browsertest.Browser, e *env, user string) {
	t.Helper()
	c.Run("start page", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`a.button.primary`)))
	c.Run("provider login page "+user,
		chromedp.Click(chromedp.CSS(`a.button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), pass))
	c.Run("signed in "+user,
		chromedp.Click(chromedp.CSS(`button`)),
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signout`)))
}

func TestBrowserUserAndAdminFlows(t *testing.T) {
	e := newEnv(t, nil)
	c := browsertest.Start(t, browsertest.IgnoreCertificateErrors())
	ctx := context.Background()

	// Sign in, which enrols.
	signIn(t, c, e, alice)
	if got := c.Text("h1"); got != "Your devices" {
		t.Fatalf("page after sign-in: heading %q, want Your devices", got)
	}
	u, err := e.store.GetUser(ctx, alice)
	if err != nil || !u.HasGrant {
		t.Fatalf("enrolment by sign-in: user %+v, %v; want a stored grant", u, err)
	}
	if got := c.Text(".health"); !strings.Contains(got, "Mailbox access: granted") {
		t.Errorf("grant status: got %q", got)
	}

	// Create device passwords; read the one shown.
	c.Run("create phone",
		chromedp.SendKeys(chromedp.CSS(`#name`), "phone"),
		chromedp.Click(chromedp.CSS(`form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)))
	phonePW := c.Read("read phone password", chromedp.Value(chromedp.CSS(`#password`)))
	c.Run("create scanner",
		chromedp.SendKeys(chromedp.CSS(`#name`), "office scanner"),
		chromedp.SendKeys(chromedp.CSS(`#allow`), "198.51.100.0/24"),
		chromedp.Click(chromedp.CSS(`form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)))
	pw := c.Read("read scanner password", chromedp.Value(chromedp.CSS(`#password`)))
	if pw == "" || pw == phonePW {
		t.Fatalf("device passwords: got %q and %q, want two different ones", phonePW, pw)
	}
	if err := e.deviceLogin(alice, pw); err != nil {
		t.Fatalf("login with the password from the page: %v", err)
	}
	c.SaveDocShot("web-user.png")

	// Shown once: a reload shows the device, with its last use, but not
	// the password.
	c.Run("reload", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`table`)))
	html := c.Read("reload", chromedp.OuterHTML(chromedp.CSS(`html`)))
	if strings.Contains(html, pw) {
		t.Fatal("the password is on the page again after a reload")
	}
	if !strings.Contains(html, "198.51.100.23") {
		t.Errorf("device list lacks the last login's address 198.51.100.23")
	}

	// Revoke it in the page; the next login fails.
	c.Run("revoke scanner",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke office scanner"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := c.Text(".notice"); !strings.Contains(got, "Revoked office scanner") {
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
	c.Run("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`a.button.primary`)))
	signIn(t, c, e, admin)
	c.Run("admin view", chromedp.Click(chromedp.CSS(`a[href="/admin"]`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	html = c.Read("admin view", chromedp.OuterHTML(chromedp.CSS(`html`)))
	for _, want := range []string{alice, bob, "carol@example.org", "needs re-enrolment", "phone", "laptop"} {
		if !strings.Contains(html, want) {
			t.Errorf("admin view lacks %q", want)
		}
	}
	c.SaveDocShot("web-admin.png")
	c.Run("admin revokes alice's phone",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke phone of `+alice+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := c.Text(".notice"); !strings.Contains(got, "Revoked phone of "+alice) {
		t.Errorf("notice after admin revoke: got %q", got)
	}
	if err := e.deviceLogin(alice, phonePW); err == nil {
		t.Fatal("alice's phone still logs in after the admin revoked it")
	}
	// Remove carol, through the disclosure.
	c.Run("admin removes carol",
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
