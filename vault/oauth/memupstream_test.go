package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/pop3front"
)

// introspect asks the provider whether token is active for user, as a
// resource server would (RFC 7662).
func introspect(op *oidctest.Server, user, token string) bool {
	req, _ := http.NewRequest(http.MethodPost, op.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidctest.ResourceID, oidctest.ResourceSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Active   bool   `json:"active"`
		Username string `json:"username"`
	}
	return json.NewDecoder(resp.Body).Decode(&r) == nil && r.Active && r.Username == user
}

// The wiring the gateway will use, against the in-memory upstream: a
// token from the TokenSource, and after ErrTokenRejected one retry after
// Invalidate.
func TestMemUpstreamBearerLogin(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{
		CheckBearer: func(user, token string) bool { return introspect(op, user, token) }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddUser(alice, "unused")
	srv.Append(alice, "INBOX", []byte("Subject: x\r\n\r\nx\r\n"))

	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	ts := NewTokenSource(p, store, Options{Now: clk.Now})
	b, err := imapback.New(imapback.Config{Address: srv.Addr(), Security: imapback.SecurityNone,
		DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	login := func() (pop3front.Maildrop, error) {
		for attempt := 0; ; attempt++ {
			tok, err := ts.AccessToken(ctx, alice)
			if err != nil {
				return nil, err
			}
			md, err := b.LoginWith(ctx, &pop3front.LoginRequest{Username: alice}, imapback.LoginOptions{BearerToken: tok})
			if errors.Is(err, imapback.ErrTokenRejected) && attempt == 0 {
				ts.Invalidate(alice, tok)
				continue
			}
			return md, err
		}
	}

	md, err := login()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	md.Close()

	// The provider expires the token before its stated expiry: the first
	// try is refused, Invalidate makes the source refresh although the
	// store still holds the token as current, and the retry logs in.
	op.ExpireAccessTokens()
	md, err = login()
	if err != nil {
		t.Fatalf("after a refusal and a refresh: %v", err)
	}
	md.Close()
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d, want 1", got)
	}
	// The new token is cached again: no further refresh.
	md, err = login()
	if err != nil {
		t.Fatal(err)
	}
	md.Close()
	if got := op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refresh requests = %d after a cached login, want 1", got)
	}

	// Revoked: the refusal leads to a refresh that needs re-enrolment.
	op.RevokeUser(alice)
	if _, err := login(); !IsReenroll(err) {
		t.Errorf("revoked: err = %v, want re-enrolment", err)
	}
}
