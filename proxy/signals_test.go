package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
)

// TestSIGHUPBadConfigKeepsRunning: the real binary refuses a broken file
// on SIGHUP, says why, and keeps serving with the old configuration; a
// good file then changes the log level.
func TestSIGHUPBadConfigKeepsRunning(t *testing.T) {
	bin := buildBinary(t)
	pop3 := freePort(t)
	base := fmt.Sprintf("[pop3]\nlisten = %q\n[demo]\nimap_listen = %q\n", pop3, freePort(t))
	cmd, logs := startProcess(t, bin, base, pop3)
	path := cmd.Args[len(cmd.Args)-1]

	os.WriteFile(path, []byte(base+"[policy]\ndelete = \"shred\"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "configuration reload refused")
	if !strings.Contains(logs.String(), filepath.Base(path)+":6: policy.delete") {
		t.Errorf("refusal does not name file, line and key:\n%s", logs)
	}
	c := dialPOP3(t, pop3)
	c.Cmd("USER demo")
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("login after a refused reload: %q, want prefix %q", r, "+OK")
	}
	c.Cmd("QUIT")

	os.WriteFile(path, []byte(base+"[log]\nlevel = \"debug\"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "log_level=debug")
	c = dialPOP3(t, pop3)
	c.Cmd("USER demo")
	c.Cmd("PASS demo")
	c.Cmd("QUIT")
	waitLog(t, logs, "level=DEBUG")
}

// TestSIGHUPReloadsCertificate: the real binary swaps its certificate on
// SIGHUP and keeps serving the sessions it has.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	bin := buildBinary(t)
	ca, dir := testpki.New(), t.TempDir()
	cert, key := ca.WriteLeaf(t, dir, 7)
	pop3, pop3s := freePort(t), freePort(t)
	cmd, logs := startProcess(t, bin, fmt.Sprintf(`
[pop3]
listen = %q
listen_tls = %q
[tls]
cert = %q
key = %q
[demo]
imap_listen = %q
`, pop3, pop3s, cert, key, freePort(t)), pop3)

	old, serial := dialPOP3S(t, pop3s, ca)
	if serial != 7 {
		t.Fatalf("serial %d, want %d", serial, 7)
	}
	old.Cmd("USER demo")
	old.Cmd("PASS demo")
	ca.WriteLeaf(t, dir, 8)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, serial := dialPOP3S(t, pop3s, ca); serial == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not reloaded:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := old.Cmd("STAT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("session across SIGHUP: %q, want prefix %q", r, "+OK")
	}
	if !strings.Contains(logs.String(), "configuration reloaded") || !strings.Contains(logs.String(), `tls_subject="CN=pop3.test"`) {
		t.Errorf("no reload log line:\n%s", logs)
	}
}
