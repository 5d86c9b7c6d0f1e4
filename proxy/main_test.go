package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte("[pop3]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	os.WriteFile(bad, []byte("[pop3]\nlistn = \"127.0.0.1:0\"\n"), 0o600)

	var out strings.Builder
	if code := run([]string{"-check-config", "-config", good}, &out); code != 0 {
		t.Errorf("check good: exit %d: %s, want %d", code, out.String(), 0)
	}
	out.Reset()
	if code := run([]string{"-check-config", "-config", bad}, &out); code != 2 {
		t.Errorf("check bad: exit %d, want %d", code, 2)
	}
	if !strings.Contains(out.String(), "bad.toml:2: pop3.listn: unknown key") {
		t.Errorf("message = %q, want it to contain %q", out.String(), "bad.toml:2: pop3.listn: unknown key")
	}
	out.Reset()
	if code := run([]string{"-config", filepath.Join(dir, "missing.toml")}, &out); code != 2 {
		t.Errorf("missing file: exit %d, want %d", code, 2)
	}
}

// TestCheckConfigWarnsAboutNonsense: values that start but make no sense
// are warned about by -check-config, which still exits 0.
func TestCheckConfigWarnsAboutNonsense(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.toml")
	os.WriteFile(path, []byte("[pop3]\nlisten = \"127.0.0.1:0\"\nproxy_protocol = true\nproxy_trusted = [\"10.0.0.1\", \"0.0.0.0/0\"]\n"+
		"[limits]\nwrite_timeout = \"1ns\"\nauth_timeout = \"10ms\"\n[upstream]\ndial_timeout = \"1us\"\n"), 0o600)
	var out strings.Builder
	if code := run([]string{"-check-config", "-config", path}, &out); code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, out.String())
	}
	for _, want := range []string{
		"w.toml:4: pop3.proxy_trusted: warning: ",
		"w.toml:6: limits.write_timeout: warning: ",
		"w.toml:7: limits.auth_timeout: warning: ",
		"w.toml:9: upstream.dial_timeout: warning: ",
		"configuration OK",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	os.WriteFile(path, []byte("[pop3]\nlisten = \"127.0.0.1:0\"\nproxy_protocol = true\nproxy_trusted = [\"::/0\"]\n"), 0o600)
	out.Reset()
	if code := run([]string{"-check-config", "-config", path}, &out); code != 0 || !strings.Contains(out.String(), "w.toml:4: pop3.proxy_trusted: warning: ") {
		t.Errorf("::/0: exit %d, output %q, want 0 and a warning", code, out.String())
	}
	// The shipped file has nothing to warn about.
	out.Reset()
	if code := run([]string{"-check-config", "-config", filepath.Join("..", "proxy.toml")}, &out); code != 0 || strings.Contains(out.String(), "warning") {
		t.Errorf("shipped proxy.toml: exit %d, output %q", code, out.String())
	}
}
