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
		t.Errorf("check good: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-check-config", "-config", bad}, &out); code != 2 {
		t.Errorf("check bad: exit %d", code)
	}
	if !strings.Contains(out.String(), "bad.toml:2: pop3.listn: unknown key") {
		t.Errorf("message = %q", out.String())
	}
	out.Reset()
	if code := run([]string{"-config", filepath.Join(dir, "missing.toml")}, &out); code != 2 {
		t.Errorf("missing file: exit %d", code)
	}
}
