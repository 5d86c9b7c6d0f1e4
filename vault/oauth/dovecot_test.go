package oauth

import (
	"context"
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
	// (Dovecot logs asynchronously: the last refusal may not be logged
	// yet, so its count is not checked.)
	if n := strings.Count(string(logText), "(auth failed,"); n < 3 {
		t.Errorf("Dovecot logged %d refused tokens, want at least the first 3", n)
	}
}
