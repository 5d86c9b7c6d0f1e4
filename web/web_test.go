package web

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/vault"
)

var client = netip.MustParseAddr("192.0.2.7")

func TestSignInEnrols(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	resp, page := b.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="/login"`) {
		t.Fatalf("start page without session: got HTTP %d without a sign-in link:\n%s", resp.StatusCode, page)
	}
	resp, page = b.signIn(alice, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Your devices</h1>") || !strings.Contains(page, alice) {
		t.Fatalf("after sign-in: got HTTP %d at %s, want alice's page:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if got := resp.Request.URL.Path; got != "/" {
		t.Errorf("landed on %q, want /", got)
	}
	u, err := e.store.GetUser(context.Background(), alice)
	if err != nil {
		t.Fatalf("user after sign-in: %v", err)
	}
	if !u.HasGrant || u.NeedsReenrollment {
		t.Errorf("grant after sign-in: HasGrant=%v NeedsReenrollment=%v, want a stored grant", u.HasGrant, u.NeedsReenrollment)
	}
	if !strings.Contains(page, "Mailbox access: granted") {
		t.Errorf("page does not say the mailbox access is granted:\n%s", page)
	}
	if got := e.obs.get("signin enrolled"); got != 1 {
		t.Errorf("signin enrolled: got %d, want 1", got)
	}
	// The stored grant works: the refresh token is one the provider issued.
	if n := e.op.RefreshTokens(alice); n != 1 {
		t.Errorf("refresh tokens at the provider: got %d, want 1", n)
	}

	// The callback's response set the session cookie with every attribute.
	var setCookie []string
	for _, x := range e.traffic {
		if strings.Contains(x.url, "/callback?") {
			setCookie = x.head.Values("Set-Cookie")
		}
	}
	var sess string
	for _, c := range setCookie {
		if strings.HasPrefix(c, "__Host-session=") {
			sess = c
		}
	}
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sess, want) {
			t.Errorf("session cookie %q lacks %s", sess, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signIn(alice, "")
	for _, path := range []string{"/", "/admin", "/nothing", "/static/style.css"} {
		resp, _ := b.get(path)
		for k, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-store",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %s: got %q, want %q", path, k, got, want)
			}
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: CSP without frame-ancestors", path)
		}
	}
}

// createDevice posts the form and returns the one-time password shown.
func createDevice(t *testing.T, b *browser, name string) string {
	t.Helper()
	resp, page := b.post("/devices", url.Values{"csrf": {b.csrf()}, "name": {name}})
	m := passwordRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("create %q: got HTTP %d without a password:\n%s", name, resp.StatusCode, page)
	}
	return m[1]
}

func TestCreateAndRevokeDevice(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signIn(alice, "")
	pw := createDevice(t, b, "office scanner")
	ctx := context.Background()
	if _, err := e.store.Authenticate(ctx, alice, pw, client); err != nil {
		t.Fatalf("Authenticate with the shown password: %v", err)
	}
	_, page := b.get("/")
	if strings.Contains(page, pw) {
		t.Fatal("the device password is shown again after its one-time display")
	}
	if !strings.Contains(page, "office scanner") || !strings.Contains(page, "192.0.2.7") {
		t.Errorf("device list lacks the device or its last address:\n%s", page)
	}
	id := e.deviceID(alice, "office scanner")
	resp, page := b.post("/devices/revoke", url.Values{"csrf": {b.csrf()}, "id": {strconv.FormatInt(id, 10)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Revoked office scanner") {
		t.Fatalf("revoke: got HTTP %d:\n%s", resp.StatusCode, page)
	}
	if _, err := e.store.Authenticate(ctx, alice, pw, client); !errors.Is(err, vault.ErrUnknownDevice) {
		t.Fatalf("Authenticate after revoke: got %v, want ErrUnknownDevice", err)
	}
	if got := e.obs.get("create ok") + e.obs.get("revoke ok"); got != 2 {
		t.Errorf("create ok + revoke ok: got %d, want 2", got)
	}
	// A bad name is refused with a message, not a password.
	_, page = b.post("/devices", url.Values{"csrf": {b.csrf()}, "name": {"x"}, "allow": {"not-a-net"}})
	if passwordRE.MatchString(page) || !strings.Contains(page, "The device was not added") {
		t.Errorf("bad network: want a refusal:\n%s", page)
	}
}

func TestAdminView(t *testing.T) {
	e := newEnv(t, nil)
	ab := e.browser()
	ab.signIn(alice, "")
	createDevice(t, ab, "phone")
	bb := e.browser()
	bb.signIn(bob, "")
	createDevice(t, bb, "laptop")

	// Not an admin: no view, no operations.
	resp, _ := ab.get("/admin")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice GET /admin: got HTTP %d, want 403", resp.StatusCode)
	}
	resp, _ = ab.post("/admin/remove", url.Values{"csrf": {ab.csrf()}, "user": {bob}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice removes bob: got HTTP %d, want 403", resp.StatusCode)
	}
	if _, err := e.store.GetUser(context.Background(), bob); err != nil {
		t.Fatalf("bob after alice's attempt: %v", err)
	}

	adm := e.browser()
	resp, page := adm.signIn(admin, "/admin")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin" {
		t.Fatalf("admin sign-in with next=/admin: got HTTP %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{alice, bob, "phone", "laptop", `<span class="pill ok">ok</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("admin view lacks %q:\n%s", want, page)
		}
	}
	id := e.deviceID(alice, "phone")
	resp, page = adm.post("/admin/revoke", url.Values{"csrf": {adm.csrf()}, "user": {alice}, "id": {strconv.FormatInt(id, 10)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Revoked phone of "+alice) {
		t.Fatalf("admin revoke: got HTTP %d:\n%s", resp.StatusCode, page)
	}
	if ds, _ := e.store.ListDevices(context.Background(), alice); len(ds) != 0 {
		t.Errorf("alice's devices after admin revoke: got %d, want 0", len(ds))
	}
	resp, _ = adm.post("/admin/remove", url.Values{"csrf": {adm.csrf()}, "user": {bob}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin remove: got HTTP %d", resp.StatusCode)
	}
	if _, err := e.store.GetUser(context.Background(), bob); !errors.Is(err, vault.ErrNoUser) {
		t.Errorf("bob after removal: got %v, want ErrNoUser", err)
	}
	// Bob's session ended with his removal.
	if _, page := bb.get("/"); !strings.Contains(page, `href="/login"`) {
		t.Errorf("bob still signed in after removal")
	}
	if got := e.obs.get("admin_revoke ok") + e.obs.get("admin_remove_user ok"); got != 2 {
		t.Errorf("admin operations ok: got %d, want 2", got)
	}
}

func TestAdminByClaim(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{"mail-admins", true},
		{[]any{"staff", "mail-admins"}, true},
		{[]any{"staff"}, false},
		{"mail-admins-not", false},
		{nil, false},
		{float64(1), false},
	} {
		if got := claimHas(c.v, "mail-admins"); got != c.want {
			t.Errorf("claimHas(%v): got %v, want %v", c.v, got, c.want)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signIn(alice, "")
	tok := b.csrf()
	other := e.browser()
	other.signIn(bob, "")
	otherTok := other.csrf()

	for _, c := range []struct {
		name string
		form url.Values
		head http.Header
	}{
		{"another origin", url.Values{"csrf": {tok}, "name": {"evil"}}, http.Header{"Origin": {"https://evil.example"}}},
		{"cross-site fetch", url.Values{"csrf": {tok}, "name": {"evil"}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"same-site subdomain", url.Values{"csrf": {tok}, "name": {"evil"}}, http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"no token", url.Values{"name": {"evil"}}, http.Header{"Origin": {e.srv.URL}}},
		{"wrong token", url.Values{"csrf": {"x" + tok[1:]}, "name": {"evil"}}, http.Header{"Origin": {e.srv.URL}}},
		{"another session's token", url.Values{"csrf": {otherTok}, "name": {"evil"}}, http.Header{"Origin": {e.srv.URL}}},
	} {
		before := e.obs.get("csrf")
		resp, _ := b.postWith("/devices", c.form, c.head)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: got HTTP %d, want 403", c.name, resp.StatusCode)
		}
		if got := e.obs.get("csrf"); got != before+1 {
			t.Errorf("%s: CSRF rejections: got %d, want %d", c.name, got, before+1)
		}
	}
	if ds, _ := e.store.ListDevices(context.Background(), alice); len(ds) != 0 {
		t.Fatalf("devices after forged posts: got %d, want 0", len(ds))
	}
	// Sign-out is a form too.
	resp, _ := b.postWith("/logout", url.Values{"csrf": {tok}}, http.Header{"Origin": {"https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin sign-out: got HTTP %d, want 403", resp.StatusCode)
	}
	// Without a session nothing is accepted.
	resp, _ = e.browser().post("/devices", url.Values{"csrf": {tok}, "name": {"evil"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("post without session: got HTTP %d, want 403", resp.StatusCode)
	}
}

func TestRevokeOtherUsersDevice(t *testing.T) {
	e := newEnv(t, nil)
	bb := e.browser()
	bb.signIn(bob, "")
	bobPW := createDevice(t, bb, "laptop")
	id := strconv.FormatInt(e.deviceID(bob, "laptop"), 10)

	ab := e.browser()
	ab.signIn(alice, "")
	_, page := ab.get("/")
	if strings.Contains(page, "laptop") || strings.Contains(page, bob) {
		t.Errorf("alice's page shows bob's device:\n%s", page)
	}
	resp, _ := ab.post("/devices/revoke", url.Values{"csrf": {ab.csrf()}, "id": {id}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("alice revokes bob's device by id: got HTTP %d, want 404", resp.StatusCode)
	}
	// Extra fields naming another user are ignored.
	resp, _ = ab.post("/devices/revoke", url.Values{"csrf": {ab.csrf()}, "id": {id}, "user": {bob}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("alice revokes bob's device with user=bob: got HTTP %d, want 404", resp.StatusCode)
	}
	resp, _ = ab.post("/admin/revoke", url.Values{"csrf": {ab.csrf()}, "id": {id}, "user": {bob}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice uses the admin revoke: got HTTP %d, want 403", resp.StatusCode)
	}
	if _, err := e.store.Authenticate(context.Background(), bob, bobPW, client); err != nil {
		t.Fatalf("bob's device after alice's attempts: %v", err)
	}
	if got := e.obs.get("revoke forbidden"); got != 2 {
		t.Errorf("revoke forbidden: got %d, want 2", got)
	}
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t, nil)
	// A cookie value chosen by an attacker is never a session.
	b := e.browser()
	b.setSessionCookie("attacker-chosen-session-id")
	if _, page := b.get("/"); !strings.Contains(page, `href="/login"`) {
		t.Fatalf("planted cookie was honoured before sign-in")
	}
	b.signIn(alice, "")
	if got := b.sessionCookie(); got == "attacker-chosen-session-id" || got == "" {
		t.Fatalf("session cookie after sign-in: got %q, want a fresh id", got)
	}
	fixed := e.browser()
	fixed.setSessionCookie("attacker-chosen-session-id")
	if _, page := fixed.get("/"); strings.Contains(page, alice) {
		t.Fatal("the planted id became alice's session")
	}

	// A real session of the attacker planted in the victim's browser is
	// replaced at sign-in, not promoted, and ends.
	m := e.browser()
	m.signIn("mallory@example.org", "")
	planted := m.sessionCookie()
	v := e.browser()
	v.setSessionCookie(planted)
	_, page := v.signIn(alice, "")
	if !strings.Contains(page, alice) {
		t.Fatalf("victim not signed in as alice:\n%s", page)
	}
	if got := v.sessionCookie(); got == planted {
		t.Fatal("sign-in kept the planted session id")
	}
	if _, page := m.get("/"); strings.Contains(page, alice) || strings.Contains(page, "Your devices") {
		t.Errorf("attacker's planted session: got a signed-in page, want it ended")
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signIn(alice, "")
	if _, page := b.get("/"); !strings.Contains(page, "Your devices") {
		t.Fatal("not signed in")
	}
	e.clock.Add(int64(e.h.cfg.IdleTimeout.Seconds()) + 1)
	if _, page := b.get("/"); !strings.Contains(page, `href="/login"`) {
		t.Fatal("session alive after the idle timeout")
	}
	b.signIn(alice, "")
	for range 9 { // stay active, but pass the absolute lifetime
		e.clock.Add(int64(e.h.cfg.IdleTimeout.Seconds()) - 60)
		b.get("/")
	}
	if _, page := b.get("/"); !strings.Contains(page, `href="/login"`) {
		t.Fatal("session alive after its lifetime")
	}
}

func TestOpenRedirect(t *testing.T) {
	e := newEnv(t, nil)
	for _, next := range []string{
		"https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example", "/%5Cevil.example",
		"javascript:alert(1)", "/\t/evil.example", "http:evil.example", "evil.example", "///evil.example",
	} {
		b := e.browser()
		resp, _ := b.signIn(alice, next)
		if got := resp.Request.URL; got.Host != strings.TrimPrefix(e.srv.URL, "https://") || got.Path != "/" {
			t.Errorf("next=%q: landed on %s, want %s/", next, got, e.srv.URL)
		}
		for _, hop := range b.hops {
			if strings.Contains(hop, "evil.example") && !strings.Contains(hop, "/login?") {
				t.Errorf("next=%q: redirected to %s", next, hop)
			}
		}
	}
	// A local path is kept.
	b := e.browser()
	b.signIn(admin, "")
	resp, _ := e.browser().signIn(admin, "/admin?x=1")
	if got := resp.Request.URL.RequestURI(); got != "/admin?x=1" {
		t.Errorf("next=/admin?x=1: landed on %s", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/":                "/",
		"/admin":           "/admin",
		"/a/b?c=d":         "/a/b?c=d",
		"":                 "/",
		"//evil":           "/",
		"/\\evil":          "/",
		"/a\\b":            "/",
		"https://evil":     "/",
		"/\x00":            "/",
		"/a\r\nLocation:x": "/",
		"/%5Cevil":         "/",
		"/%2F/evil":        "/",
		"admin":            "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestCallbackRefusesForgedOrReplayed(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	// No sign-in started in this browser: a callback is refused.
	resp, _ := b.get("/callback?code=x&state=y")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a started sign-in: got HTTP %d, want 400", resp.StatusCode)
	}
	// Started, then answered with the wrong state.
	b.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = b.get("/login")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("nonce") == "" {
		t.Fatalf("authorization request: got HTTP %d to %s, want PKCE S256 and a nonce", resp.StatusCode, loc)
	}
	resp, _ = b.get("/callback?code=x&state=" + url.QueryEscape(loc.Query().Get("state")+"x"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a wrong state: got HTTP %d, want 400", resp.StatusCode)
	}
	// The attempt is used up, even with the right state now.
	resp, _ = b.get("/callback?code=x&state=" + url.QueryEscape(loc.Query().Get("state")))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: got HTTP %d, want 400", resp.StatusCode)
	}
	// A refusal at the provider.
	resp, _ = b.get("/login")
	loc, _ = url.Parse(resp.Header.Get("Location"))
	resp, page := b.get("/callback?error=access_denied&state=" + url.QueryEscape(loc.Query().Get("state")))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "access_denied") {
		t.Errorf("refused consent: got HTTP %d:\n%s", resp.StatusCode, page)
	}
	if got := e.obs.get("signin invalid"); got != 3 {
		t.Errorf("signin invalid: got %d, want 3", got)
	}
	if got := e.obs.get("signin denied"); got != 1 {
		t.Errorf("signin denied: got %d, want 1", got)
	}
}

// TestNoSecrets runs every flow and then looks for canaries in every URL
// requested, every response header and body, and the log: the client
// secret, the refresh and access tokens, and the device password (which
// may appear in exactly one response, the one that shows it).
func TestNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signIn(alice, "")
	pw := createDevice(t, b, "scanner")
	if _, err := e.store.Authenticate(context.Background(), alice, pw, client); err != nil {
		t.Fatal(err)
	}
	b.get("/")
	b.post("/devices/revoke", url.Values{"csrf": {b.csrf()}, "id": {strconv.FormatInt(e.deviceID(alice, "scanner"), 10)}})
	adm := e.browser()
	adm.signIn(admin, "/admin")
	adm.get("/admin")
	adm.post("/logout", url.Values{"csrf": {adm.csrf()}})

	var tok vault.Tokens
	if _, err := e.store.Refresh(context.Background(), alice, func(cur vault.Tokens) (vault.Tokens, error) {
		tok = cur
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if tok.Refresh == "" || tok.Access == "" {
		t.Fatalf("no stored tokens to look for: %+v", tok != vault.Tokens{})
	}
	canaries := map[string]string{
		"client secret":   oidctest.ClientSecret,
		"refresh token":   tok.Refresh,
		"access token":    tok.Access,
		"device password": pw,
	}
	shown := 0
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.traffic) < 20 {
		t.Fatalf("only %d exchanges recorded", len(e.traffic))
	}
	for _, x := range e.traffic {
		for name, c := range canaries {
			if strings.Contains(x.url, c) {
				t.Errorf("%s in a URL: %s", name, x.url)
			}
			if strings.Contains(headerText(x.head), c) || strings.Contains(headerText(x.reqHead), c) {
				t.Errorf("%s in the headers of %s", name, x.url)
			}
			if strings.Contains(x.body, c) {
				if name == "device password" && strings.HasSuffix(x.url, "/devices") && shown == 0 {
					shown++
					continue
				}
				t.Errorf("%s in the body of %s", name, x.url)
			}
		}
	}
	if shown != 1 {
		t.Errorf("responses showing the device password: got %d, want 1", shown)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "signed in") {
		t.Fatalf("log has no sign-ins, cannot check it:\n%s", logs)
	}
	for name, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("%s in the log", name)
		}
	}
}

func headerText(h http.Header) string {
	var sb strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			sb.WriteString(k + ": " + v + "\n")
		}
	}
	return sb.String()
}

func TestConfigValidate(t *testing.T) {
	ok := Config{PublicURL: "https://mail.example.org/popbridge", Issuer: "https://id.example.org"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no public URL":        func(c *Config) { c.PublicURL = "" },
		"http public URL":      func(c *Config) { c.PublicURL = "http://mail.example.org" },
		"public URL query":     func(c *Config) { c.PublicURL = "https://mail.example.org/?x=1" },
		"no issuer":            func(c *Config) { c.Issuer = "" },
		"unknown claim":        func(c *Config) { c.UserClaim = "name" },
		"admin claim no value": func(c *Config) { c.AdminClaim = "groups" },
	} {
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
	loop := Config{PublicURL: "http://127.0.0.1:8080", Issuer: "https://id.example.org"}
	if err := loop.Validate(); err != nil {
		t.Errorf("plain http on loopback: %v", err)
	}
}

// TestCallbackRefusesInjectedCode: a code the provider issued to another
// browser's sign-in (say, the attacker's own) delivered to the victim's
// callback with the victim's state does not sign the victim in as the
// attacker: the victim's PKCE verifier does not match (RFC 7636 section
// 1), and the nonce would not either.
func TestCallbackRefusesInjectedCode(t *testing.T) {
	e := newEnv(t, nil)
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	victim := e.browser()
	victim.hc.CheckRedirect = noFollow
	resp, _ := victim.get("/login")
	vloc, _ := url.Parse(resp.Header.Get("Location"))

	// The attacker signs in up to the provider's redirect and keeps the code.
	attacker := e.browser()
	var code string
	attacker.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/callback" {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}
	attacker.signIn("mallory@example.org", "")
	if code == "" {
		t.Fatal("no code captured from the attacker's sign-in")
	}
	resp, page := victim.get("/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(vloc.Query().Get("state")))
	if resp.StatusCode == http.StatusSeeOther || strings.Contains(page, "mallory") {
		t.Fatalf("injected code: got HTTP %d, signed in:\n%s", resp.StatusCode, page)
	}
	if victim.sessionCookie() != "" {
		t.Error("victim got a session cookie from an injected code")
	}
	if got := e.obs.get("signin invalid"); got != 1 {
		t.Errorf("signin invalid: got %d, want 1", got)
	}
}
