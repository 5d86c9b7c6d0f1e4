package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/pop3front"
)

// The whole path against a real Dovecot whose oauth2 passdb introspects
// tokens at the test provider: enrol by device flow, take a token from
// the TokenSource, log in with imapback's OAUTHBEARER and XOAUTH2; an
// expired token is refused, a refreshed one works, a revoked grant is
// refused at the upstream and needs re-enrolment at the provider.
func TestDovecotBearerLogin(t *testing.T) {
	op := startOP(t, oidctest.Options{})
	d := dovecottest.StartWith(t, dovecottest.Options{OAuth2: &dovecottest.OAuth2{
		IntrospectionURL: op.IntrospectionURL(),
		ClientID:         oidctest.ResourceID,
		ClientSecret:     oidctest.ResourceSecret,
	},
		// Failed logins are delayed 2 s by default; this test makes four.
		// (Dovecot also delays further logins from an address that failed,
		// so each login below comes from its own client address, forwarded
		// with ID.)
		ExtraConfig: "auth_failure_delay = 0",
	}, dovecottest.User{Name: alice, Password: "unused-password"})
	d.Deliver(alice, "INBOX", []byte("From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"))

	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	ts := NewTokenSource(p, store, Options{Now: clk.Now})
	ctx := context.Background()

	backend := func(mech imapback.OAuthMechanism) *imapback.Backend {
		b, err := imapback.New(imapback.Config{Address: d.IMAPAddr(), Security: imapback.SecurityNone,
			OAuthMechanism: mech, ForwardClientAddress: true, DialTimeout: 5 * time.Second, CommandTimeout: 10 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	clients := 0
	req := func(user string) *pop3front.LoginRequest {
		clients++
		return &pop3front.LoginRequest{Username: user, Mechanism: "USER",
			Client: &net.TCPAddr{IP: net.IPv4(192, 0, 2, byte(clients)), Port: 40000},
			Local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110}}
	}
	login := func(b *imapback.Backend, token string) error {
		md, err := b.LoginWith(ctx, req(alice), imapback.LoginOptions{BearerToken: token})
		if err != nil {
			return err
		}
		defer md.Close()
		if n := len(md.Messages()); n != 1 {
			t.Errorf("maildrop has %d messages, want 1", n)
		}
		return nil
	}
	mechs := []imapback.OAuthMechanism{imapback.OAuthAuto, imapback.OAuthOAuthBearer, imapback.OAuthXOAuth2}

	tok, err := ts.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mechs {
		if err := login(backend(m), tok); err != nil {
			t.Errorf("%s with a valid token: %v", m, err)
		}
	}
	// A token for someone else's mailbox is refused.
	_, err = backend(imapback.OAuthAuto).LoginWith(ctx, req("bob@example.org"), imapback.LoginOptions{BearerToken: tok})
	if !errors.Is(err, imapback.ErrTokenRejected) {
		t.Errorf("alice's token for bob: err = %v, want ErrTokenRejected", err)
	}

	// Expired at the provider: refused, with the error challenge answered.
	op.ExpireAccessTokens()
	for _, m := range mechs[1:] {
		if err := login(backend(m), tok); !errors.Is(err, imapback.ErrTokenRejected) {
			t.Errorf("%s with an expired token: err = %v, want ErrTokenRejected", m, err)
		}
	}
	// Our clock reaches the expiry too: the source refreshes, and the new
	// token works.
	clk.Add(time.Hour)
	tok2, err := ts.AccessToken(ctx, alice)
	if err != nil || tok2 == tok {
		t.Fatalf("refresh: err %v, new token %v", err, tok2 != tok)
	}
	if err := login(backend(imapback.OAuthAuto), tok2); err != nil {
		t.Errorf("refreshed token: %v", err)
	}

	// Revoked: the live access token dies at once, the refresh fails.
	op.RevokeUser(alice)
	if err := login(backend(imapback.OAuthXOAuth2), tok2); !errors.Is(err, imapback.ErrTokenRejected) {
		t.Errorf("revoked token: err = %v, want ErrTokenRejected", err)
	}
	clk.Add(time.Hour)
	if _, err := ts.AccessToken(ctx, alice); !IsReenroll(err) {
		t.Errorf("refresh after revocation: err = %v, want re-enrolment", err)
	}

	// Every refused token ended with NO, never BAD for a malformed
	// answer to the error challenge.
	logText, err := os.ReadFile(d.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logText), "nvalid base64") {
		t.Error("Dovecot logged an invalid answer to the error challenge")
	}
	// Dovecot logs asynchronously, so the refusals are not counted
	// exactly; the log must show some, or the check above saw nothing.
	if !strings.Contains(string(logText), "(auth failed,") {
		t.Error("Dovecot logged no refused token")
	}
}

// Dovecot validating signed JWT access tokens itself with the provider's
// key (introspection_mode = local): no call to the provider per login, so
// a token from another provider is refused but a revoked one is accepted
// until it expires.
func TestDovecotLocalJWT(t *testing.T) {
	op := startOP(t, oidctest.Options{JWTAccessTokens: true})
	kid, alg, pemKey := op.SigningKey()
	d := dovecottest.StartWith(t, dovecottest.Options{
		OAuth2:      &dovecottest.OAuth2{Local: &dovecottest.JWTKey{ID: kid, Alg: alg, PEM: pemKey}},
		ExtraConfig: "auth_failure_delay = 0",
	}, dovecottest.User{Name: alice, Password: "unused-password"})

	clk := newClock()
	p := newOIDCProvider(t, op, clk, false)
	store := NewMemoryGrants()
	enrol(t, op, p, store)
	tok, err := NewTokenSource(p, store, Options{Now: clk.Now}).AccessToken(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("access token is not a JWT")
	}

	// Another provider's token for the same user: another key.
	other := startOP(t, oidctest.Options{JWTAccessTokens: true})
	po := newOIDCProvider(t, other, clk, false)
	so := NewMemoryGrants()
	enrol(t, other, po, so)
	otherTok, err := NewTokenSource(po, so, Options{Now: clk.Now}).AccessToken(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}

	b, err := imapback.New(imapback.Config{Address: d.IMAPAddr(), Security: imapback.SecurityNone, ForwardClientAddress: true,
		DialTimeout: 5 * time.Second, CommandTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	login := func(token string) error {
		n++
		md, err := b.LoginWith(context.Background(), &pop3front.LoginRequest{Username: alice,
			Client: &net.TCPAddr{IP: net.IPv4(192, 0, 2, byte(n)), Port: 40000}, Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110}},
			imapback.LoginOptions{BearerToken: token})
		if err == nil {
			md.Close()
		}
		return err
	}
	if err := login(tok); err != nil {
		t.Fatalf("JWT from the provider: %v", err)
	}
	if err := login(otherTok); !errors.Is(err, imapback.ErrTokenRejected) {
		t.Errorf("JWT signed by another key: err = %v, want ErrTokenRejected", err)
	}
	// The provider's key ID with a payload it did not sign: the same
	// claims, one space added.
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "{", "{ ", 1))) + "." + parts[2]
	if err := login(forged); !errors.Is(err, pop3front.ErrAuthFailed) {
		t.Errorf("forged JWT: err = %v, want a failed login", err)
	}
	op.RevokeUser(alice)
	if err := login(tok); err != nil {
		t.Errorf("revoked JWT before its expiry: err = %v, want accepted (local validation cannot see revocation)", err)
	}
}
