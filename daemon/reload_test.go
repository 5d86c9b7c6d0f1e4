package daemon

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestReloadAppliesToNewSessionsOnly: a policy changed by a reload
// applies to sessions that start afterwards; a session that started
// before keeps the policy it logged in with.
func TestReloadAppliesToNewSessionsOnly(t *testing.T) {
	gw, cfg, _ := startDemoGateway(t, "flag")

	before := dialPOP3(t, gw.POP3Addr()) // logs in under delete = "flag"
	before.Cmd("USER demo")
	before.Cmd("PASS demo")

	next := *cfg
	next.Policy.Delete = "keyword"
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	after := dialPOP3(t, gw.POP3Addr())
	after.Cmd("USER demo")
	after.Cmd("PASS demo")

	if r := before.Cmd("DELE 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := before.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := after.Cmd("DELE 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := after.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	flags := imapFlags(t, gw.demo.Addr(), "demo", "demo")
	if !slices.Contains(flags[0], imap.FlagDeleted) {
		t.Errorf("message 1 (old session, flag policy): %v", flags[0])
	}
	// imapmemserver stores keywords lower-cased; IMAP keywords are
	// case-insensitive (RFC 3501 section 2.3.2).
	if slices.Contains(flags[1], imap.FlagDeleted) || !slices.ContainsFunc(flags[1], func(f imap.Flag) bool {
		return strings.EqualFold(string(f), "$POP3Deleted")
	}) {
		t.Errorf("message 2 (new session, keyword policy): %v", flags[1])
	}
}

// TestReloadMovesListener: a changed listen address is re-bound; the old
// address stops accepting while its sessions keep running.
func TestReloadMovesListener(t *testing.T) {
	gw, cfg, _ := startDemoGateway(t, "flag")
	oldAddr := gw.POP3Addr()
	running := dialPOP3(t, oldAddr)
	running.Cmd("USER demo")
	running.Cmd("PASS demo")

	next := *cfg
	next.POP3.Listen = freePort(t)
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if gw.POP3Addr() != next.POP3.Listen {
		t.Fatalf("listening on %s, want %s", gw.POP3Addr(), next.POP3.Listen)
	}
	moved := dialPOP3(t, next.POP3.Listen)
	if r := moved.Cmd("USER demo"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("new address: %q, want prefix %q", r, "+OK")
	}
	if r := running.Cmd("STAT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("session on the old address after the move: %q, want prefix %q", r, "+OK")
	}
	if c, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		c.Close()
		t.Error("old address still accepts")
	}
}

func waitLog(t *testing.T, logs *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
