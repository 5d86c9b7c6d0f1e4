package imapback

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

const masterCanary = "Master-Canary-9d1e"

func masterReq() *pop3front.LoginRequest {
	return &pop3front.LoginRequest{Username: "admin", Password: masterCanary, AuthzID: "alice", Mechanism: "PLAIN"}
}

func allowMaster(c *Config) { c.AllowMasterUser = true }

// TestMasterUserPlain: with AllowMasterUser, a login acting for another
// user is AUTHENTICATE PLAIN with authzid = AuthzID and authcid =
// Username (RFC 4616), never LOGIN; the password is never logged.
func TestMasterUserPlain(t *testing.T) {
	payload := base64.StdEncoding.EncodeToString([]byte("alice\x00admin\x00" + masterCanary))
	f := startFake(t, &fakeUpstream{greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] x"})
	var buf bytes.Buffer
	var mu sync.Mutex
	b := f.backend(t, allowMaster, func(c *Config) { c.Logger = newBufLogger(&buf, &mu) })
	md, err := b.Login(context.Background(), masterReq())
	if err != nil {
		t.Fatal(err)
	}
	md.Close()
	r := f.recorded()
	if !strings.Contains(r, " AUTHENTICATE PLAIN "+payload+"\r\n") || strings.Contains(strings.ToUpper(r), " LOGIN ") {
		t.Errorf("recorded %q", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), masterCanary) || strings.Contains(buf.String(), payload[:16]) {
		t.Errorf("secret logged: %s", buf.String())
	}
}

// TestMasterUserRefused: without AllowMasterUser nothing reaches the
// upstream; without AUTH=PLAIN upstream the login fails with
// ErrAuthFailed, a log line, and no credentials sent; an upstream that
// refuses the authzid (imapmemserver) is a failed login.
func TestMasterUserRefused(t *testing.T) {
	t.Run("not-allowed", func(t *testing.T) {
		f := startFake(t, &fakeUpstream{greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] x"})
		if _, err := f.backend(t).Login(context.Background(), masterReq()); err != pop3front.ErrAuthFailed {
			t.Fatalf("%v, want %v", err, pop3front.ErrAuthFailed)
		}
		if n := f.accepts.Load(); n != 0 {
			t.Errorf("upstream contacted %d times, want %d", n, 0)
		}
	})
	t.Run("no-auth-plain", func(t *testing.T) {
		f := startFake(t, &fakeUpstream{greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] x"})
		var buf bytes.Buffer
		var mu sync.Mutex
		b := f.backend(t, allowMaster, func(c *Config) { c.Logger = newBufLogger(&buf, &mu) })
		if _, err := b.Login(context.Background(), masterReq()); err != pop3front.ErrAuthFailed {
			t.Fatalf("%v, want %v", err, pop3front.ErrAuthFailed)
		}
		if r := strings.ToUpper(f.recorded()); strings.Contains(r, "LOGIN") || strings.Contains(r, "AUTHENTICATE") {
			t.Errorf("recorded %q", r)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(buf.String(), "does not advertise AUTH=PLAIN") || !strings.Contains(buf.String(), "authzid=alice") {
			t.Errorf("log: %s", buf.String())
		}
	})
	t.Run("upstream-refuses", func(t *testing.T) {
		e := newEnv(t, memupstream.ProfileFull, nil, nil)
		if err := e.srv.AddUser("admin", masterCanary); err != nil {
			t.Fatal(err)
		}
		b := e.backend(Policy{}, allowMaster)
		if _, err := b.Login(context.Background(), masterReq()); err != pop3front.ErrAuthFailed {
			t.Fatalf("%v, want %v", err, pop3front.ErrAuthFailed)
		}
		if l := e.wire.lines(`(?i)^\S+ AUTHENTICATE PLAIN `); len(l) != 1 {
			t.Errorf("wire %q", e.wire.String())
		}
		if l := e.wire.lines(`(?i)^\S+ LOGIN `); len(l) != 0 {
			t.Errorf("wire %q", l)
		}
	})
	t.Run("same-identity", func(t *testing.T) {
		// AuthzID equal to Username is an ordinary login.
		e := newEnv(t, memupstream.ProfileFull, nil, nil)
		md, err := e.backend(Policy{}, allowMaster).Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, AuthzID: testUser})
		if err != nil {
			t.Fatal(err)
		}
		md.Close()
		if l := e.wire.lines(`(?i)^\S+ LOGIN `); len(l) != 1 {
			t.Errorf("wire %q", e.wire.String())
		}
	})
}
