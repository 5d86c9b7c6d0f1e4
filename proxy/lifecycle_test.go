package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds ./proxy once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the gateway binary; skipped in -short")
	}
	bin := filepath.Join(t.TempDir(), "popbridge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs the binary with a config and waits for its POP3 port.
func startProcess(t *testing.T, bin, config, pop3 string) (*exec.Cmd, *logBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd := exec.Command(bin, "-config", path)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", pop3, time.Second)
		if err == nil {
			c.Close()
			return cmd, logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not listen on %s: %v\n%s", pop3, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	pop3 := freePort(t)
	cmd, logs := startProcess(t, bin, fmt.Sprintf(`
[pop3]
listen = %q
[demo]
imap_listen = %q
[limits]
shutdown_grace = "1500ms"
`, pop3, freePort(t)), pop3)

	quitter := dialPOP3(t, pop3) // will QUIT during the grace period
	quitter.Cmd("USER demo")
	quitter.Cmd("PASS demo")
	idle := dialPOP3(t, pop3) // logged in, never QUITs: closed at the end of grace
	idle.Cmd("USER demo")
	idle.Cmd("PASS demo")
	idle.Cmd("DELE 1")
	preauth := dialPOP3(t, pop3) // still in AUTHORIZATION

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := preauth.Line(); l != "-ERR [SYS/TEMP] Server shutting down\r\n" {
		t.Errorf("pre-auth session got %q, want %q", l, "-ERR [SYS/TEMP] Server shutting down\r\n")
	}
	if r := quitter.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT during grace = %q, want prefix %q", r, "+OK")
	}
	// The idle session is cut without any +OK for its pending DELE.
	idle.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, _ := bufio.NewReader(idle.R).ReadString('\n')
	if strings.HasPrefix(rest, "+OK") {
		t.Errorf("idle session got %q after shutdown", rest)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("exited after %v: the grace period was not given", took)
	}
	if c, err := net.DialTimeout("tcp", pop3, 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("still accepting after shutdown")
	}
}

func TestCheckConfigBinary(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "-check-config", "-config", filepath.Join("..", "proxy.toml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Errorf("check shipped config: %v: %s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[policy]\ndelete = \"shred\"\n"), 0o600)
	out, err = exec.Command(bin, "-check-config", "-config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("bad config: err %v, want exit 2", err)
	}
	if !strings.Contains(string(out), "bad.toml:2: policy.delete") {
		t.Errorf("bad config output = %q", out)
	}
}
