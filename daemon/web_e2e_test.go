package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/popbridge/popbridge/internal/browsertest"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/vault"
)

// TestWebDeviceDovecotEndToEnd goes through the daemon's own wiring of
// the page: a vault-mode gateway over a real Dovecot whose oauth2 passdb
// introspects tokens at the test provider, [web] on plain HTTP loopback.
// In headless Chromium a person signs in at the provider (which enrols:
// the grant is stored), creates a device password and reads it off the
// page; curl downloads message 1 with it through the gateway, byte for
// byte as delivered; the device is revoked in the page and curl's next
// login is refused with [AUTH].
func TestWebDeviceDovecotEndToEnd(t *testing.T) {
	curl := requireCurl(t)
	browsertest.Require(t) // before Dovecot and the provider start
	op := startProvider(t)
	d := dovecottest.StartWith(t, dovecottest.Options{OAuth2: &dovecottest.OAuth2{
		IntrospectionURL: op.IntrospectionURL(),
		ClientID:         oidctest.ResourceID,
		ClientSecret:     oidctest.ResourceSecret,
	}, ExtraConfig: "auth_failure_delay = 0"}, dovecottest.User{Name: vaultUser, Password: upstreamPW})
	// A line starting with a dot: stuffed by the gateway, unstuffed by curl.
	msg := []byte("From: b@example.org\r\nTo: alice@example.org\r\nSubject: from the web page\r\n\r\nfirst line\r\n.dot line\r\nlast line\r\n")
	d.Deliver(vaultUser, "INBOX", msg)

	webAddr := freePort(t)
	publicURL := "http://" + webAddr
	e := startVaultGateway(t, op, d.IMAPAddr(), func(c *Config) {
		c.Upstream.Security = "none"
		c.Web = WebConfig{Listen: webAddr, PlainHTTP: true, PublicURL: publicURL}
	})
	if got := e.gw.WebAddr(); got != webAddr {
		t.Fatalf("web page address: got %q, want %q", got, webAddr)
	}
	// The provider knows the page's redirect URI, as an admin registers it.
	op.AddRedirectURI(publicURL + "/callback")

	b := browsertest.Start(t)
	ctx := context.Background()

	// Sign in at the provider's login page; the first sign-in enrols.
	b.Run("start page", chromedp.Navigate(publicURL+"/"), chromedp.WaitVisible(chromedp.CSS(`a.button.primary`)))
	b.Run("provider login page",
		chromedp.Click(chromedp.CSS(`a.button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), vaultUser),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), vaultUserPW))
	b.Run("signed in",
		chromedp.Click(chromedp.CSS(`button`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signout`)))
	if got := b.Text("h1"); got != "Your devices" {
		t.Fatalf("page after sign-in: heading %q, want Your devices", got)
	}
	u, err := e.gw.vault.store.GetUser(ctx, vaultUser)
	if err != nil || !u.HasGrant {
		t.Fatalf("enrolment by sign-in: user %+v, %v; want a stored grant", u, err)
	}

	// A device password, shown once.
	b.Run("create phone",
		chromedp.SendKeys(chromedp.CSS(`#name`), "phone"),
		chromedp.Click(chromedp.CSS(`form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`#password`)))
	pw := b.Read("read the password", chromedp.Value(chromedp.CSS(`#password`)))
	if !devicePwRE.MatchString("  " + pw) {
		t.Fatalf("device password on the page: got %q, want XXXXX-XXXXX-XXXXX-XXXXX", pw)
	}

	// A real POP3 client downloads with it through the gateway (Dovecot
	// accepts the enrolled grant's access token).
	retr := func(pass string) ([]byte, string, error) {
		u := url.URL{Scheme: "pop3", User: url.UserPassword(vaultUser, pass), Host: e.gw.POP3Addr(), Path: "/1"}
		cmd := exec.Command(curl, "--silent", "--show-error", "--verbose", "--max-time", "30", u.String())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return out, stderr.String(), err
	}
	got, stderr, err := retr(pw)
	if err != nil {
		t.Fatalf("curl RETR 1 with the page's device password: %v\n%s", err, stderr)
	}
	if string(got) != string(msg) {
		t.Fatalf("curl RETR 1: got %q, want %q (as delivered)", got, msg)
	}
	if strings.Contains(stderr, pw) || strings.Contains(e.logs.String(), pw) {
		t.Error("the device password appears in curl's trace of the wire or the gateway's log")
	}

	// Revoke it in the page; the next login is refused.
	b.Run("revoke phone",
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke phone"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := b.Text(".notice"); !strings.Contains(got, "Revoked phone") {
		t.Errorf("notice after revoke: got %q, want Revoked phone", got)
	}
	got, stderr, err = retr(pw)
	if err == nil {
		t.Fatalf("curl RETR 1 after revoke: succeeded with %q, want a refused login", got)
	}
	if !strings.Contains(stderr, "< -ERR [AUTH] ") {
		t.Fatalf("curl after revoke: %v; want a -ERR [AUTH] reply in:\n%s", err, stderr)
	}
}

// TestWebVaultDemo: with the vault demo's issuer, the page signs in at
// the demo provider, where its redirect URI is registered: /login leads
// to the provider's login page, not to its refusal of an unknown
// redirect URI. A reload that changes [web] is reported as needing a
// restart.
func TestWebVaultDemo(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "demo.key")
	if err := vault.GenerateKeyFile(key); err != nil {
		t.Fatal(err)
	}
	webAddr := freePort(t)
	text := `[pop3]
listen = "127.0.0.1:0"
[upstream]
address = "demo"
[demo]
imap_listen = "127.0.0.1:0"
[auth]
mode = "vault"
store = "sqlite:` + filepath.Join(dir, "vault.db") + `"
key_file = "` + key + `"
[auth.oauth2]
provider = "oidc"
issuer = "demo"
demo_listen = "` + freePort(t) + `"
[web]
listen = "` + webAddr + `"
plain_http = true
public_url = "http://` + webAddr + `"
`
	cfg, err := parseConfig("web-demo.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	gw, err := Start(context.Background(), cfg, Options{Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + webAddr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.Request.URL.Host, cfg.Auth.OAuth2.DemoListen; got != want {
		t.Errorf("/login led to host %q, want the demo provider at %q", got, want)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="username"`) {
		t.Fatalf("/login: got HTTP %d at %s:\n%s\nwant the demo provider's login page", resp.StatusCode, resp.Request.URL, body)
	}

	next := *cfg
	next.Web.Admins = []string{"demo"}
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `needs a restart; keeping the running value" key=web`) {
		t.Errorf("no warning that [web] needs a restart:\n%s", logs)
	}
}

// TestWebConfigNeedsVault: [web] listen outside vault mode is refused
// with the file's line.
func TestWebConfigNeedsVault(t *testing.T) {
	_, err := parseConfig("x.toml", []byte("[upstream]\naddress = \"demo\"\n[web]\nlisten = \"127.0.0.1:8080\"\nplain_http = true\npublic_url = \"https://mail.example.org\"\n"))
	if err == nil || !strings.Contains(err.Error(), `x.toml:4: web.listen: needs [auth] mode = "vault"`) {
		t.Fatalf("got %v, want x.toml:4: web.listen: needs [auth] mode = \"vault\"", err)
	}
}
