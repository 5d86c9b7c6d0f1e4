package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a token endpoint answering with the given (status, body)
// pairs in turn, recording each request's form.
type scripted struct {
	mu      sync.Mutex
	answers [][2]string
	forms   []map[string]string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]string{}
	for k := range r.PostForm {
		f[k] = r.PostForm.Get(k)
	}
	s.forms = append(s.forms, f)
	if len(s.answers) == 0 {
		http.Error(w, "script exhausted", http.StatusTeapot)
		return
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	var status int
	fmt.Sscan(a[0], &status)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(a[1]))
}

func fakeProvider(t *testing.T, answers ...[2]string) (*Provider, *scripted, *[]time.Duration) {
	t.Helper()
	s := &scripted{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p, err := NewProvider(context.Background(), Config{Provider: ProviderMicrosoft, ClientID: "cid", ClientSecret: "csecret",
		DeviceAuthURL: srv.URL + "/devicecode", TokenURL: srv.URL + "/token"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	p.sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return p, s, &waits
}

const okToken = `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}`

func TestPollHonoursSlowDown(t *testing.T) {
	p, s, waits := fakeProvider(t,
		[2]string{"400", `{"error":"authorization_pending"}`},
		[2]string{"400", `{"error":"slow_down"}`},
		[2]string{"400", `{"error":"authorization_pending"}`},
		[2]string{"200", okToken})
	da := &DeviceAuth{DeviceCode: "dc", Interval: 5 * time.Second, Expiry: time.Now().Add(time.Hour)}
	tok, err := p.PollDeviceToken(context.Background(), da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Access != "at-1" || tok.Refresh != "rt-2" {
		t.Errorf("tokens %+v, want at-1/rt-2", tok)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(*waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v (slow_down adds 5s for good)", *waits, want)
	}
	for _, f := range s.forms {
		if f["grant_type"] != "urn:ietf:params:oauth:grant-type:device_code" || f["device_code"] != "dc" || f["client_secret"] != "csecret" {
			t.Fatalf("poll form %v: want the device_code grant with the client's secret in the body", f)
		}
	}
}

func TestPollEnds(t *testing.T) {
	for _, code := range []string{"expired_token", "access_denied"} {
		p, _, _ := fakeProvider(t, [2]string{"400", `{"error":"` + code + `","error_description":"provider text"}`})
		_, err := p.PollDeviceToken(context.Background(), &DeviceAuth{DeviceCode: "dc", Interval: time.Second, Expiry: time.Now().Add(time.Hour)})
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != code || oe.Kind != KindPermanent {
			t.Errorf("%s: err = %v, want permanent %s", code, err, code)
		}
	}
	// Expired locally: no request.
	p, s, _ := fakeProvider(t)
	_, err := p.PollDeviceToken(context.Background(), &DeviceAuth{DeviceCode: "dc", Interval: time.Second, Expiry: time.Now().Add(-time.Second)})
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "expired_token" || len(s.forms) != 0 {
		t.Errorf("err = %v after %d requests, want expired_token without a request", err, len(s.forms))
	}
}

func TestPollRetriesServerErrors(t *testing.T) {
	p, _, waits := fakeProvider(t,
		[2]string{"503", `<html>busy</html>`},
		[2]string{"200", okToken})
	da := &DeviceAuth{DeviceCode: "dc", Interval: 2 * time.Second, Expiry: time.Now().Add(time.Hour)}
	if _, err := p.PollDeviceToken(context.Background(), da); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{2 * time.Second, 4 * time.Second}; fmt.Sprint(*waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
}

func TestStartDeviceAuth(t *testing.T) {
	// Google's older field name, and an interval given as a string.
	p, s, _ := fakeProvider(t, [2]string{"200", `{"device_code":"dc","user_code":"ABCD-EFGH","verification_url":"https://example.com/device","expires_in":"900","interval":"7"}`})
	da, err := p.StartDeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if da.VerificationURI != "https://example.com/device" || da.UserCode != "ABCD-EFGH" || da.Interval != 7*time.Second {
		t.Errorf("got %+v", da)
	}
	if got := s.forms[0]["scope"]; got != "https://outlook.office.com/IMAP.AccessAsUser.All offline_access" {
		t.Errorf("scope = %q, want Microsoft's delegated default", got)
	}
}

func TestRefreshErrorClassification(t *testing.T) {
	const desc = "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."
	cases := []struct {
		status, body string
		kind         Kind
		result       string
	}{
		{"400", `{"error":"invalid_grant","error_description":"` + desc + `"}`, KindReenroll, ResultInvalidGrant},
		{"401", `{"error":"invalid_client","error_description":"` + desc + `"}`, KindPermanent, ResultTemporary},
		{"500", `{"error":"server_error","error_description":"` + desc + `"}`, KindTemporary, ResultTemporary},
		{"503", `<html>` + desc + `</html>`, KindTemporary, ResultTemporary},
		{"429", `{"error":"temporarily_unavailable"}`, KindTemporary, ResultTemporary},
		{"200", `{"token_type":"Bearer"}`, KindTemporary, ResultTemporary},
		{"200", `{"access_token":"x","token_type":"mac"}`, KindPermanent, ResultTemporary},
	}
	for _, c := range cases {
		p, _, _ := fakeProvider(t, [2]string{c.status, c.body})
		store := NewMemoryGrants()
		store.PutGrant(context.Background(), alice, Tokens{Refresh: "rt-SECRET"})
		obs := &countObserver{}
		var logs strings.Builder
		ts := NewTokenSource(p, store, Options{Observer: obs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		_, err := ts.AccessToken(context.Background(), alice)
		var oe *Error
		if !errors.As(err, &oe) || oe.Kind != c.kind {
			t.Errorf("%s %s: err = %v, want kind %v", c.status, c.body, err, c.kind)
			continue
		}
		if strings.Contains(err.Error(), "AADSTS") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: message %q carries provider text or the token", c.status, err.Error())
		}
		if strings.Contains(logs.String(), "SECRET") {
			t.Errorf("%s: the log carries the refresh token: %s", c.status, logs.String())
		}
		if strings.HasPrefix(c.body, "{") && strings.Contains(c.body, "AADSTS") && !strings.Contains(logs.String(), "AADSTS70008") {
			t.Errorf("%s: the provider's description is missing from the log: %s", c.status, logs.String())
		}
		if obs.get(c.result) != 1 {
			t.Errorf("%s: observer %s = %d, want 1", c.status, c.result, obs.get(c.result))
		}
		st, _ := store.Status(alice)
		if (st.NeedsReenroll != "") != (c.kind == KindReenroll) {
			t.Errorf("%s: needs re-enrolment %q, want marked only for invalid_grant", c.status, st.NeedsReenroll)
		}
	}
}

func TestUnrotatedRefreshTokenKept(t *testing.T) {
	p, s, _ := fakeProvider(t, [2]string{"200", `{"access_token":"at-9","token_type":"bearer","expires_in":"3599"}`})
	store := NewMemoryGrants()
	store.PutGrant(context.Background(), alice, Tokens{Refresh: "rt-1"})
	tok, err := NewTokenSource(p, store, Options{}).AccessToken(context.Background(), alice)
	if err != nil || tok != "at-9" {
		t.Fatalf("got %q, %v; want at-9", tok, err)
	}
	st, _ := store.Status(alice)
	if st.Tokens.Refresh != "rt-1" || st.Tokens.Access != "at-9" {
		t.Errorf("stored %+v, want the old refresh token kept and the new access token", st.Tokens)
	}
	if f := s.forms[0]; f["grant_type"] != "refresh_token" || f["refresh_token"] != "rt-1" {
		t.Errorf("form %v, want the refresh_token grant with rt-1", f)
	}
}

func TestPresets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("  s3cret\n"), 0o600)

	p, err := NewProvider(ctx, Config{Provider: ProviderMicrosoft, Tenant: "contoso.onmicrosoft.com", ClientID: "c", ClientSecretFile: secret})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeviceAuthURL() != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode" ||
		p.TokenURL() != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Errorf("microsoft endpoints %s %s", p.DeviceAuthURL(), p.TokenURL())
	}
	if p.clientSecret != "s3cret" || fmt.Sprint(p.appScopes) != "[https://outlook.office365.com/.default]" {
		t.Errorf("secret %q app scopes %v", p.clientSecret, p.appScopes)
	}
	p, err = NewProvider(ctx, Config{Provider: ProviderGoogle, ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeviceAuthURL() != "https://oauth2.googleapis.com/device/code" || p.TokenURL() != "https://oauth2.googleapis.com/token" ||
		fmt.Sprint(p.scopes) != "[https://mail.google.com/]" {
		t.Errorf("google: %s %s %v", p.DeviceAuthURL(), p.TokenURL(), p.scopes)
	}
	for _, bad := range []Config{
		{Provider: "yahoo", ClientID: "c"},
		{Provider: ProviderGoogle},
		{Provider: ProviderOIDC, ClientID: "c"},
		{Provider: ProviderGoogle, ClientID: "c", ClientSecret: "x", ClientSecretFile: secret},
		{Provider: ProviderGoogle, ClientID: "c", ClientSecretFile: filepath.Join(dir, "missing")},
		{Provider: ProviderMicrosoft, ClientID: "c", Tenant: "a/b"},
		{Provider: ProviderGoogle, ClientID: "c", ClientAuth: "jwt"},
	} {
		if _, err := NewProvider(ctx, bad); err == nil {
			t.Errorf("NewProvider(%+v) succeeded, want an error", bad)
		}
	}
}

// A token living less than twice the margin is still cached, for half its
// life.
func TestShortLivedTokenCached(t *testing.T) {
	p, s, _ := fakeProvider(t,
		[2]string{"200", `{"access_token":"at-1","token_type":"Bearer","expires_in":30}`},
		[2]string{"200", `{"access_token":"at-2","token_type":"Bearer","expires_in":30}`})
	clk := newClock()
	p.now = clk.Now
	store := NewMemoryGrants()
	store.PutGrant(context.Background(), alice, Tokens{Refresh: "rt"})
	ts := NewTokenSource(p, store, Options{Now: clk.Now, Margin: time.Minute})
	for i, want := range []struct {
		advance time.Duration
		token   string
	}{{0, "at-1"}, {10 * time.Second, "at-1"}, {10 * time.Second, "at-2"}} {
		clk.Add(want.advance)
		tok, err := ts.AccessToken(context.Background(), alice)
		if err != nil || tok != want.token {
			t.Fatalf("call %d: %q, %v; want %s", i, tok, err, want.token)
		}
	}
	if len(s.forms) != 2 {
		t.Errorf("%d token requests, want 2", len(s.forms))
	}
}

func TestAuthCode(t *testing.T) {
	p, s, _ := fakeProvider(t, [2]string{"200", okToken})
	ac, err := p.StartAuthCode("http://127.0.0.1:8765/")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ac.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "login.microsoftonline.com" || u.Path != "/common/oauth2/v2.0/authorize" {
		t.Errorf("authorization URL %s", ac.URL)
	}
	sum := sha256.Sum256([]byte(ac.Verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) || q.Get("code_challenge_method") != "S256" ||
		q.Get("state") != ac.State || q.Get("redirect_uri") != ac.RedirectURI || q.Get("response_type") != "code" || strings.Contains(ac.URL, ac.Verifier) {
		t.Errorf("authorization request %v: want PKCE S256, state and redirect URI, and no verifier", q)
	}
	ctx := context.Background()
	for _, bad := range []string{
		"http://127.0.0.1:8765/?code=c&state=other",
		"http://127.0.0.1:8765/?error=access_denied&error_description=no&state=" + ac.State,
		"http://127.0.0.1:8765/?state=" + ac.State,
	} {
		if _, err := p.ExchangeCode(ctx, ac, bad); err == nil || IsTemporary(err) {
			t.Errorf("ExchangeCode(%s): err = %v, want a permanent error", bad, err)
		}
	}
	if len(s.forms) != 0 {
		t.Fatalf("%d token requests for refused redirects, want 0", len(s.forms))
	}
	store := NewMemoryGrants()
	if err := p.EnrollAuthCode(ctx, store, alice, ac, "  http://127.0.0.1:8765/?code=the-code&state="+ac.State+"&session_state=x \n"); err != nil {
		t.Fatal(err)
	}
	f := s.forms[0]
	if f["grant_type"] != "authorization_code" || f["code"] != "the-code" || f["code_verifier"] != ac.Verifier || f["redirect_uri"] != ac.RedirectURI {
		t.Errorf("token request %v", f)
	}
	if st, _ := store.Status(alice); st.Tokens.Refresh != "rt-2" {
		t.Errorf("stored %+v, want the refresh token", st.Tokens)
	}
}

// TestAuthCodeGoogle: Google's authorization request asks for offline
// access with consent, so that a refresh token comes back.
func TestAuthCodeGoogle(t *testing.T) {
	g, err := NewProvider(context.Background(), Config{Provider: ProviderGoogle, ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	gac, _ := g.StartAuthCode("http://127.0.0.1:1/")
	gu, _ := url.Parse(gac.URL)
	if gu.Host != "accounts.google.com" || gu.Query().Get("access_type") != "offline" || gu.Query().Get("prompt") != "consent" ||
		gu.Query().Get("scope") != "https://mail.google.com/" {
		t.Errorf("google authorization URL %s: want offline access with consent for the Gmail scope", gac.URL)
	}
}

// A grant without a refresh token (stored by hand, or by a provider that
// sent none) is marked for re-enrolment without asking the provider.
func TestGrantWithoutRefreshToken(t *testing.T) {
	p, s, _ := fakeProvider(t)
	store := NewMemoryGrants()
	store.PutGrant(context.Background(), alice, Tokens{Access: "old", AccessExpiry: time.Now().Add(-time.Minute)})
	_, err := NewTokenSource(p, store, Options{}).AccessToken(context.Background(), alice)
	if !IsReenroll(err) {
		t.Fatalf("err = %v, want re-enrolment", err)
	}
	if st, _ := store.Status(alice); st.NeedsReenroll == "" {
		t.Error("grant not marked for re-enrolment")
	}
	if len(s.forms) != 0 {
		t.Errorf("%d token requests, want 0", len(s.forms))
	}
}
