package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/oidctest"
)

const alice = "alice@example.org"

func TestDeviceEnrolment(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	ctx := context.Background()

	da, err := p.StartDeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(da.VerificationURI, op.Issuer+"/") || da.UserCode == "" {
		t.Fatalf("verification URI %q, user code %q: want a page of %s and a code", da.VerificationURI, da.UserCode, op.Issuer)
	}
	if !strings.Contains(da.VerificationURIComplete, "user_code=") {
		t.Errorf("verification_uri_complete = %q, want it to carry the user code", da.VerificationURIComplete)
	}
	if da.Interval != time.Second {
		t.Errorf("interval = %v, want the provider's 1s", da.Interval)
	}

	// The user approves only after the device has polled twice.
	var waits []time.Duration
	polls := 0
	p.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		polls++
		if polls == 3 {
			return oidctest.ApproveDevice(ctx, da.VerificationURI, da.UserCode, alice, "alice-pw", true)
		}
		return nil
	}
	store := NewMemoryGrants()
	if err := p.EnrollDevice(ctx, store, alice, da); err != nil {
		t.Fatal(err)
	}
	if got := op.TokenCalls(oidctest.GrantDeviceCode); got != 3 {
		t.Errorf("device token requests = %d, want 3 (two pending, then the tokens)", got)
	}
	for i, w := range waits {
		if w != time.Second {
			t.Errorf("wait %d = %v, want the interval 1s", i, w)
		}
	}
	st, ok := store.Status(alice)
	if !ok || st.Tokens.Refresh == "" || st.Tokens.Access == "" || !st.Tokens.AccessExpiry.After(clk.Now()) {
		t.Fatalf("stored grant %+v (ok %v): want refresh and access tokens with a future expiry", st.Tokens, ok)
	}
	if op.RefreshTokens(alice) != 1 {
		t.Errorf("provider holds %d refresh tokens for alice, want 1", op.RefreshTokens(alice))
	}
}

func TestDeviceDenied(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	p := newOIDCProvider(t, op, newClock(), false)
	ctx := context.Background()
	da, err := p.StartDeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := oidctest.ApproveDevice(ctx, da.VerificationURI, da.UserCode, alice, "alice-pw", false); err != nil {
		t.Fatal(err)
	}
	store := NewMemoryGrants()
	err = p.EnrollDevice(ctx, store, alice, da)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "access_denied" || oe.Kind != KindPermanent {
		t.Fatalf("err = %v, want a permanent access_denied *Error", err)
	}
	if _, ok := store.Status(alice); ok {
		t.Error("a denied enrolment stored a grant")
	}
}

func TestDeviceWrongPassword(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	p := newOIDCProvider(t, op, newClock(), false)
	ctx := context.Background()
	da, err := p.StartDeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := oidctest.ApproveDevice(ctx, da.VerificationURI, da.UserCode, alice, "wrong", true); err == nil {
		t.Fatal("approving with a wrong password succeeded")
	}
}

func TestAccessTokenCached(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	st, _ := store.Status(alice)

	obs := &countObserver{}
	ts := NewTokenSource(p, store, Options{Now: clk.Now, Observer: obs})
	for i := 0; i < 3; i++ {
		tok, err := ts.AccessToken(context.Background(), alice)
		if err != nil {
			t.Fatal(err)
		}
		if tok != st.Tokens.Access {
			t.Fatalf("call %d: got a token other than the enrolled one, want the enrolled one while it is fresh", i)
		}
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 0 {
		t.Errorf("refresh requests = %d, want 0 while the enrolled token is fresh", got)
	}
	if obs.get(ResultOK) != 0 {
		t.Errorf("observer saw %d refreshes, want 0", obs.get(ResultOK))
	}
}

func TestRefreshAtExpiryRotates(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	before, _ := store.Status(alice)

	obs := &countObserver{}
	ts := NewTokenSource(p, store, Options{Now: clk.Now, Observer: obs, Margin: time.Minute})
	ctx := context.Background()
	if _, err := ts.AccessToken(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// Within the margin of expiry: time to refresh.
	clk.Add(before.Tokens.AccessExpiry.Sub(clk.Now()) - 30*time.Second)
	tok, err := ts.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Fatalf("refresh requests = %d, want 1", got)
	}
	after, _ := store.Status(alice)
	if tok == before.Tokens.Access || after.Tokens.Access != tok {
		t.Error("the refreshed access token is not new or not stored")
	}
	if after.Tokens.Refresh == before.Tokens.Refresh || after.Tokens.Refresh == "" {
		t.Error("the rotated refresh token was not saved")
	}
	if after.RecordedRefresh != 1 || after.LastRefreshErr != nil {
		t.Errorf("RecordRefresh calls %d (last err %v), want 1 success", after.RecordedRefresh, after.LastRefreshErr)
	}
	if obs.get(ResultOK) != 1 {
		t.Errorf("observer ok = %d, want 1", obs.get(ResultOK))
	}
	// Cached again.
	if tok2, err := ts.AccessToken(ctx, alice); err != nil || tok2 != tok {
		t.Errorf("next call: err %v, same token %v; want the cached token", err, tok2 == tok)
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d after a cached call, want 1", got)
	}

	// The old refresh token is dead at the provider; the saved one works.
	if _, err := p.refresh(ctx, before.Tokens.Refresh); !IsReenroll(err) {
		t.Errorf("refresh with the rotated-away token: err = %v, want invalid_grant", err)
	}
	clk.Add(2 * time.Hour)
	if _, err := ts.AccessToken(ctx, alice); err != nil {
		t.Fatalf("second refresh with the saved token: %v", err)
	}
}

func TestConcurrentRefreshOnce(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	clk.Add(time.Hour) // every token expired

	ts := NewTokenSource(p, store, Options{Now: clk.Now})
	const n = 20
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = ts.AccessToken(context.Background(), alice)
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if toks[i] != toks[0] {
			t.Fatalf("call %d got another token than call 0", i)
		}
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests at the provider = %d, want exactly 1", got)
	}
}

// Two gateway instances share a store: the second finds the token the
// first just stored and does not ask the provider.
func TestSecondInstanceUsesStoredToken(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	a := NewTokenSource(p, store, Options{Now: clk.Now})
	b := NewTokenSource(p, store, Options{Now: clk.Now})
	ctx := context.Background()
	// Both have cached the enrolled token.
	for _, ts := range []*TokenSource{a, b} {
		if _, err := ts.AccessToken(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Hour)
	ta, err := a.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if ta != tb {
		t.Error("the second instance got another token, want the one the first stored")
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d, want 1 for two instances", got)
	}
}

func TestRevokedGrantNeedsReenrolment(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	if n := op.RevokeUser(alice); n != 1 {
		t.Fatalf("revoked %d refresh tokens, want 1", n)
	}
	clk.Add(time.Hour)
	obs := &countObserver{}
	ts := NewTokenSource(p, store, Options{Now: clk.Now, Observer: obs})
	_, err := ts.AccessToken(context.Background(), alice)
	if !IsReenroll(err) || IsTemporary(err) {
		t.Fatalf("err = %v, want a re-enrolment error", err)
	}
	if !errors.Is(err, ErrReenroll) {
		t.Error("errors.Is(err, ErrReenroll) = false")
	}
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("err = %#v, want code invalid_grant", err)
	}
	if oe.Description != "" && strings.Contains(err.Error(), oe.Description) {
		t.Errorf("message %q contains the provider's description %q", err.Error(), oe.Description)
	}
	st, _ := store.Status(alice)
	if st.NeedsReenroll == "" {
		t.Error("MarkNeedsReenrollment was not called")
	}
	if obs.get(ResultInvalidGrant) != 1 {
		t.Errorf("observer invalid_grant = %d, want 1", obs.get(ResultInvalidGrant))
	}
	// Marked: later calls do not ask the provider again.
	if _, err := ts.AccessToken(context.Background(), alice); !IsReenroll(err) {
		t.Errorf("after marking: err = %v, want re-enrolment", err)
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d, want 1", got)
	}
}

func TestProviderUnreachableIsTemporary(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	op.Close()
	clk.Add(time.Hour)
	obs := &countObserver{}
	ts := NewTokenSource(p, store, Options{Now: clk.Now, Observer: obs})
	_, err := ts.AccessToken(context.Background(), alice)
	if !IsTemporary(err) || IsReenroll(err) {
		t.Fatalf("err = %v, want temporary", err)
	}
	st, _ := store.Status(alice)
	if st.NeedsReenroll != "" {
		t.Error("an unreachable provider marked the grant for re-enrolment")
	}
	if st.LastRefreshErr == nil {
		t.Error("the failure was not recorded")
	}
	if obs.get(ResultTemporary) != 1 {
		t.Errorf("observer temporary_error = %d, want 1", obs.get(ResultTemporary))
	}
}

func TestNoGrantNeedsEnrolment(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	p := newOIDCProvider(t, op, newClock(), false)
	ts := NewTokenSource(p, NewMemoryGrants(), Options{})
	if _, err := ts.AccessToken(context.Background(), "nobody@example.org"); !IsReenroll(err) {
		t.Fatalf("err = %v, want re-enrolment", err)
	}
}

func TestClientCredentialsCached(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, true)
	obs := &countObserver{}
	ts := NewAppTokenSource(p, Options{Now: clk.Now, Observer: obs})
	ctx := context.Background()

	const n = 10
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = ts.AccessToken(ctx, fmt.Sprintf("user%d@example.org", i))
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || toks[i] == "" || toks[i] != toks[0] {
			t.Fatalf("call %d: err %v, same token as call 0: %v", i, errs[i], toks[i] == toks[0])
		}
	}
	if got := op.TokenCalls(oidctest.GrantClientCredentials); got != 1 {
		t.Errorf("client-credentials requests = %d, want 1", got)
	}
	clk.Add(10 * time.Minute)
	tok, err := ts.AccessToken(ctx, "user0@example.org")
	if err != nil || tok == toks[0] {
		t.Fatalf("after expiry: err %v, new token %v; want a new token", err, tok != toks[0])
	}
	if got := op.TokenCalls(oidctest.GrantClientCredentials); got != 2 {
		t.Errorf("client-credentials requests = %d after expiry, want 2", got)
	}
	if obs.get(ResultOK) != 2 {
		t.Errorf("observer ok = %d, want 2", obs.get(ResultOK))
	}
}

func TestAuthCodeEnrolment(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	ctx := context.Background()
	store := NewMemoryGrants()

	// PKCE is checked: a wrong verifier gets no tokens.
	ac, err := p.StartAuthCode(oidctest.RedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	landed, err := oidctest.AuthorizeInBrowser(ctx, ac.URL, alice, "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	wrong := *ac
	wrong.Verifier = "not-the-verifier-not-the-verifier-not-the-verifier"
	if err := p.EnrollAuthCode(ctx, store, alice, &wrong, landed); err == nil || IsTemporary(err) {
		t.Fatalf("wrong PKCE verifier: err = %v, want a permanent error", err)
	}

	ac, err = p.StartAuthCode(oidctest.RedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	landed, err = oidctest.AuthorizeInBrowser(ctx, ac.URL, alice, "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EnrollAuthCode(ctx, store, alice, ac, landed); err != nil {
		t.Fatal(err)
	}
	// The code is single-use.
	if _, err := p.ExchangeCode(ctx, ac, landed); err == nil {
		t.Error("a used code was exchanged again")
	}
	if got := op.TokenCalls(oidctest.GrantAuthorizationCode); got != 3 {
		t.Errorf("code exchanges = %d, want 3", got)
	}
	clk.Add(time.Hour)
	if _, err := NewTokenSource(p, store, Options{Now: clk.Now}).AccessToken(ctx, alice); err != nil {
		t.Fatalf("refresh with the code grant's refresh token: %v", err)
	}
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d, want 1", got)
	}
}
