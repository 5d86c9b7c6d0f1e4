package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/vault"
)

// TestVaultDemo runs examples/vault-demo.toml as the README walk-through
// does (on free ports and in a temporary directory): enrol the demo user
// by approving the device code on the demo provider's page with the
// credentials the log shows, add a device, download with its password.
func TestVaultDemo(t *testing.T) {
	data, err := os.ReadFile("../examples/vault-demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "demo.key")
	if err := vault.GenerateKeyFile(key); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"/tmp/popbridge-demo.key", key,
		"/tmp/popbridge-demo-vault.db", filepath.Join(dir, "vault.db"),
		"127.0.0.1:1110", "127.0.0.1:0",
		"127.0.0.1:1143", "127.0.0.1:0",
		"127.0.0.1:1180", freePort(t),
	).Replace(string(data))
	cfg, err := parseConfig("vault-demo.toml", []byte(text))
	if err != nil {
		t.Fatalf("examples/vault-demo.toml: %v", err)
	}
	logs := &logBuffer{}
	gw, err := Start(context.Background(), cfg, Options{Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	if !strings.Contains(logs.String(), "sign_in_user=demo sign_in_password=demo") {
		t.Errorf("the log does not show the demo provider's sign-in:\n%s", logs)
	}
	e := &vaultEnv{gw: gw, cfg: cfg, logs: logs}

	// enroll, approving as the person at the browser would.
	out := &logBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- RunAdmin(context.Background(), cfg, []string{"enroll", "demo"}, strings.NewReader(""), out, out)
	}()
	var m []string
	for i := 0; m == nil; i++ {
		if i == 400 {
			t.Fatalf("enroll printed no URL and code: %q", out.String())
		}
		time.Sleep(25 * time.Millisecond)
		m = verifyRE.FindStringSubmatch(out.String())
	}
	if err := oidctest.ApproveDevice(context.Background(), m[1], m[2], "demo", "demo", true); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("enroll: exit %d: %s", code, out)
	}
	code, o, _ := e.admin(t, "device", "add", "demo", "laptop")
	pm := devicePwRE.FindStringSubmatch(o)
	if code != 0 || pm == nil {
		t.Fatalf("device add: %d %q", code, o)
	}
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	if r := c.Cmd("PASS " + pm[1]); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("demo login with the device password: %q", r)
	}
	if r := c.Cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR 1: %q", r)
	}
	c.Multi()
	c.Cmd("QUIT")
	c = dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("the demo IMAP password in vault mode: %q, want -ERR [AUTH]", r)
	}
	c.Cmd("QUIT")
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
