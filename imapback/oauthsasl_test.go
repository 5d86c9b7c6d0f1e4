package imapback

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

const goodToken = "eyJhbGciOi.Jfoo-bar_baz~+/=="

// bearerEnv starts an upstream that accepts goodToken for alice (or, with
// offer false, offers no OAuth mechanism) and returns a backend for it.
func bearerEnv(t *testing.T, offer bool, mech OAuthMechanism) (*Backend, *wire) {
	t.Helper()
	w := &wire{}
	opts := memupstream.Options{Wire: w, Logger: testLogger(t)}
	if offer {
		opts.CheckBearer = func(user, token string) bool { return user == testUser && token == goodToken }
	}
	srv, err := memupstream.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddUser(testUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := srv.Append(testUser, "INBOX", seed(1)[0]); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Address: srv.Addr(), Security: SecurityNone, OAuthMechanism: mech,
		DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return b, w
}

func bearerLogin(b *Backend, token string) (pop3front.Maildrop, error) {
	return b.LoginWith(context.Background(), &pop3front.LoginRequest{Username: testUser, Mechanism: "USER"}, LoginOptions{BearerToken: token})
}

func TestBearerLogin(t *testing.T) {
	for _, tc := range []struct {
		mech OAuthMechanism
		sent string
	}{
		{OAuthAuto, "AUTHENTICATE OAUTHBEARER"},
		{"", "AUTHENTICATE OAUTHBEARER"},
		{OAuthOAuthBearer, "AUTHENTICATE OAUTHBEARER"},
		{OAuthXOAuth2, "AUTHENTICATE XOAUTH2"},
	} {
		t.Run(string(tc.mech), func(t *testing.T) {
			b, w := bearerEnv(t, true, tc.mech)
			md, err := bearerLogin(b, goodToken)
			if err != nil {
				t.Fatal(err)
			}
			defer md.Close()
			if n := len(md.Messages()); n != 1 {
				t.Errorf("maildrop has %d messages, want 1", n)
			}
			if got := w.lines(tc.sent); len(got) != 1 {
				t.Errorf("%q sent %d times, want once; wire:\n%s", tc.sent, len(got), w.String())
			}
			if len(w.lines(` LOGIN `)) != 0 {
				t.Error("LOGIN sent for a bearer login")
			}
		})
	}
}

// A refused token: the client answers the error challenge as the
// mechanism requires, the server ends the command with NO, and the login
// fails as bad credentials (ErrTokenRejected).
func TestBearerRejected(t *testing.T) {
	for _, tc := range []struct {
		mech   OAuthMechanism
		answer string // base64 of the answer to the error challenge
	}{
		{OAuthOAuthBearer, "AQ=="}, // %x01, RFC 7628 section 3.2.3
		{OAuthXOAuth2, "AQ=="},     // %x01 too: imapclient cannot send an empty line
	} {
		t.Run(string(tc.mech), func(t *testing.T) {
			b, w := bearerEnv(t, true, tc.mech)
			_, err := bearerLogin(b, "expired-token")
			if !errors.Is(err, ErrTokenRejected) || !errors.Is(err, pop3front.ErrAuthFailed) {
				t.Fatalf("err = %v, want ErrTokenRejected (an ErrAuthFailed)", err)
			}
			if got := w.lines(`^` + tc.answer + `\r\n$`); len(got) != 1 {
				t.Errorf("answer %q to the error challenge sent %d times, want once; wire:\n%s", tc.answer, len(got), w.String())
			}
		})
	}
}

func TestBearerNotAdvertised(t *testing.T) {
	b, w := bearerEnv(t, false, OAuthAuto)
	_, err := bearerLogin(b, goodToken)
	var pe *pop3front.Error
	if !errors.As(err, &pe) || pe.Code != pop3front.CodeSysTemp {
		t.Fatalf("err = %v, want a temporary system error", err)
	}
	if len(w.lines(`AUTHENTICATE`)) != 0 {
		t.Error("AUTHENTICATE sent although no OAuth mechanism is advertised")
	}
}

func TestBearerTokenChecked(t *testing.T) {
	b, w := bearerEnv(t, true, OAuthAuto)
	for _, tok := range []string{"a b", "a\x01auth=Bearer x", "tok\r\n", "=abc", strings.Repeat("a", maxBearerToken+1)} {
		if _, err := bearerLogin(b, tok); err == nil || errors.Is(err, pop3front.ErrAuthFailed) {
			t.Errorf("token %.20q: err = %v, want a refusal before contacting the upstream", tok, err)
		}
	}
	if len(w.lines(`AUTHENTICATE`)) != 0 {
		t.Error("AUTHENTICATE sent for a malformed token")
	}
	// A master-user request cannot carry a bearer token.
	_, err := b.LoginWith(context.Background(), &pop3front.LoginRequest{Username: "admin", AuthzID: testUser}, LoginOptions{BearerToken: goodToken})
	if !errors.Is(err, pop3front.ErrAuthFailed) {
		t.Errorf("master request with a token: err = %v, want ErrAuthFailed", err)
	}
}

func TestOAuthClientMessages(t *testing.T) {
	mech, ir, _ := NewOAuthBearerClient("a,b=c@example.org", "T0k", "imap.example.org", 993).Start()
	if want := "n,a=a=2Cb=3Dc@example.org,\x01host=imap.example.org\x01port=993\x01auth=Bearer T0k\x01\x01"; mech != "OAUTHBEARER" || string(ir) != want {
		t.Errorf("OAUTHBEARER %s %q, want %q", mech, ir, want)
	}
	mech, ir, _ = NewXOAuth2Client("u@example.org", "T0k").Start()
	if want := "user=u@example.org\x01auth=Bearer T0k\x01\x01"; mech != "XOAUTH2" || string(ir) != want {
		t.Errorf("XOAUTH2 %s %q, want %q", mech, ir, want)
	}
	// The error challenge is answered once; a second challenge aborts.
	c := NewOAuthBearerClient("u", "t", "", 0).(*oauthClient)
	resp, err := c.Next([]byte(`{"status":"invalid_token","schemes":"bearer"}`))
	if err != nil || string(resp) != "\x01" || c.ServerError().Status != "invalid_token" {
		t.Errorf("answer %q, %v, status %+v; want %%x01 and invalid_token", resp, err, c.ServerError())
	}
	if _, err := c.Next([]byte("x")); err == nil {
		t.Error("a second challenge was answered")
	}
	x := NewXOAuth2Client("u", "t").(*oauthClient)
	if resp, err := x.Next([]byte(`{"status":"401"}`)); err != nil || string(resp) != "\x01" || x.ServerError().Status != "401" {
		t.Errorf("XOAUTH2 answer %q, %v; want %%x01", resp, err)
	}
}

// Neither the log nor the wire trace carries the token (or its base64
// form inside the SASL message), accepted or refused.
func TestBearerTokenNotLogged(t *testing.T) {
	const canary = "Canary-Token-7f3a9c"
	var buf bytes.Buffer
	var mu sync.Mutex
	w := &wire{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Wire: w,
		CheckBearer: func(user, token string) bool { return token == canary+"ok" }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddUser(testUser, testPass)
	log := newBufLogger(&buf, &mu)
	b, err := New(Config{Address: srv.Addr(), Security: SecurityNone, Logger: log, DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second,
		Trace: &pop3front.WireTrace{User: "*", Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range []OAuthMechanism{OAuthOAuthBearer, OAuthXOAuth2} {
		b.cfg.OAuthMechanism = mech
		if md, err := bearerLogin(b, canary+"ok"); err != nil {
			t.Fatalf("%s: %v", mech, err)
		} else {
			md.Close()
		}
		if _, err := bearerLogin(b, canary+"no"); !errors.Is(err, ErrTokenRejected) {
			t.Fatalf("%s: err = %v, want ErrTokenRejected", mech, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	logged := buf.String()
	if !strings.Contains(logged, "AUTHENTICATE") || !strings.Contains(logged, "refused the bearer token") {
		t.Fatalf("no trace or refusal logged: %s", logged)
	}
	if strings.Contains(logged, canary) {
		t.Errorf("token logged: %s", logged)
	}
	// Nor the SASL messages in base64, as sent.
	host, portStr, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(portStr)
	for _, c := range []sasl.Client{NewOAuthBearerClient(testUser, canary+"ok", host, port), NewXOAuth2Client(testUser, canary+"ok")} {
		_, ir, _ := c.Start()
		enc := base64.StdEncoding.EncodeToString(ir)
		if !strings.Contains(w.String(), enc) {
			t.Fatalf("the server did not see %q: the check below would prove nothing", enc)
		}
		if strings.Contains(logged, enc[len(enc)-16:]) {
			t.Errorf("base64 of the SASL message logged: %s", logged)
		}
	}
	if !strings.Contains(w.String(), "AUTHENTICATE OAUTHBEARER") {
		t.Error("the server saw no AUTHENTICATE")
	}
}
