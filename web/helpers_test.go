package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/internal/syncbuf"
	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/vault/oauth"
)

// Users of the test provider. The vault user name is the email claim,
// which oidctest fills with the login name.
const (
	alice = "alice@example.org"
	bob   = "bob@example.org"
	admin = "admin@example.org"
	pass  = "correct horse"
)

// countObs counts the Observer's events.
type countObs struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *countObs) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[k]++
}
func (o *countObs) WebSignIn(r string)       { o.add("signin " + r) }
func (o *countObs) WebDeviceOp(op, r string) { o.add(op + " " + r) }
func (o *countObs) WebCSRFRejected()         { o.add("csrf") }
func (o *countObs) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[k]
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = syncbuf.Buffer

// env is a provider, a vault store, and the page served over TLS.
type env struct {
	t     *testing.T
	op    *oidctest.Server
	store vault.Store
	h     *Handler
	srv   *httptest.Server
	obs   *countObs
	logs  *syncBuffer
	clock atomic.Int64 // seconds added to the real time

	mu      sync.Mutex
	traffic []exchange // every request and response of every test browser
}

// exchange is one recorded HTTP round trip, for the canary checks.
type exchange struct {
	url     string
	reqHead http.Header
	status  int
	head    http.Header
	body    string
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, obs: &countObs{}, logs: &syncBuffer{}}
	op, err := oidctest.Start(oidctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	for _, u := range []string{alice, bob, admin, "mallory@example.org"} {
		op.AddUser(u, pass)
	}
	e.op = op

	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	if err := vault.GenerateKeyFile(kf); err != nil {
		t.Fatal(err)
	}
	key, err := vault.LoadKeyFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := vault.Open(ctx, "sqlite:"+filepath.Join(dir, "vault.db"), vault.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store = store
	prov, err := oauth.NewProvider(ctx, oauth.Config{Provider: oauth.ProviderOIDC, Issuer: op.Issuer,
		ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}

	var hp atomic.Pointer[Handler]
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hp.Load().ServeHTTP(w, r)
	}))
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	cfg := Config{
		PublicURL: e.srv.URL,
		Issuer:    op.Issuer,
		Admins:    []string{admin},
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer:  e.obs,
		Now:       func() time.Time { return time.Now().Add(time.Duration(e.clock.Load()) * time.Second) },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg, store, prov)
	if err != nil {
		t.Fatal(err)
	}
	hp.Store(h)
	e.h = h
	op.AddRedirectURI(h.RedirectURI())
	return e
}

// recorder keeps every round trip of a test browser.
type recorder struct {
	e    *env
	next http.RoundTripper
}

func (rt recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	rt.e.mu.Lock()
	rt.e.traffic = append(rt.e.traffic, exchange{url: req.URL.String(), reqHead: req.Header.Clone(),
		status: resp.StatusCode, head: resp.Header.Clone(), body: string(b)})
	rt.e.mu.Unlock()
	return resp, nil
}

// browser is a cookie-keeping client, like one browser profile.
type browser struct {
	e    *env
	jar  http.CookieJar
	hc   *http.Client
	hops []string // redirect targets followed, in order
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{e: e, jar: jar}
	b.hc = &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport: recorder{e: e, next: e.srv.Client().Transport},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			b.hops = append(b.hops, req.URL.String())
			if len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	return b
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as a browser would from the page itself.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	return b.postWith(path, form, http.Header{"Origin": {b.e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
}

func (b *browser) postWith(path string, form url.Values, head http.Header) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range head {
		req.Header[k] = v
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the signed-in page.
func (b *browser) csrf() string {
	b.e.t.Helper()
	_, page := b.get("/")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

// signIn follows the sign-in from /login?next=next through the
// provider's login form, as a person would, and returns the final page.
func (b *browser) signIn(user, next string) (*http.Response, string) {
	b.e.t.Helper()
	path := "/login"
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	resp, page := b.get(path)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		b.e.t.Fatalf("sign-in: no provider login page (HTTP %d):\n%s", resp.StatusCode, page)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	req, _ := http.NewRequest(http.MethodPost, resp.Request.URL.String(),
		strings.NewReader(url.Values{"authRequestID": {id}, "username": {user}, "password": {pass}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// sessionCookie returns the value of the browser's session cookie.
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "__Host-session" {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setSessionCookie(v string) {
	u, _ := url.Parse(b.e.srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-session", Value: v, Path: "/", Secure: true}})
}

var deviceIDRE = regexp.MustCompile(`name="id" value="(\d+)"`)

// deviceID returns the id of user's device name from the store.
func (e *env) deviceID(user, name string) int64 {
	e.t.Helper()
	ds, err := e.store.ListDevices(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range ds {
		if d.Name == name {
			return d.ID
		}
	}
	e.t.Fatalf("%s has no device %q", user, name)
	return 0
}

var passwordRE = regexp.MustCompile(`id="password" class="secret" type="text" value="([^"]+)"`)
