package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runCmd runs the command line with its own output buffers.
func runCmd(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := runIO(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestAdminCommands: keygen, then the device and user commands on the
// store a vault configuration names, as an admin runs them beside the
// daemon.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "vault.key")
	if code, out, errOut := runCmd("keygen", key); code != 0 || !strings.Contains(out, key) {
		t.Fatalf("keygen: exit %d, %q %q", code, out, errOut)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if code, _, _ := runCmd("keygen", key); code != 1 {
		t.Errorf("keygen over an existing key: exit %d, want 1", code)
	}

	secret := filepath.Join(dir, "master.secret")
	os.WriteFile(secret, []byte("master-pw\n"), 0o600)
	cfg := filepath.Join(dir, "proxy.toml")
	os.WriteFile(cfg, []byte(`[upstream]
address = "127.0.0.1:143"
[auth]
mode = "vault"
store = "sqlite:`+filepath.Join(dir, "vault.db")+`"
key_file = "`+key+`"
upstream_auth = "master"
master_user = "admin"
master_password_file = "`+secret+`"
`), 0o600)

	code, out, errOut := runCmd("-config", cfg, "device", "add", "alice", "phone", "--allow", "192.0.2.0/24")
	pw := regexp.MustCompile(`[0-9a-z]{5}(-[0-9a-z]{5}){3}`).FindString(out)
	if code != 0 || pw == "" {
		t.Fatalf("device add: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = runCmd("-config", cfg, "device", "list")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "phone") || !strings.Contains(out, "192.0.2.0/24") {
		t.Errorf("device list: exit %d, %q", code, out)
	}
	if strings.Contains(out, pw) {
		t.Error("device list shows the password")
	}
	if code, out, _ = runCmd("-config", cfg, "user", "list"); code != 0 || !strings.Contains(out, "alice") {
		t.Errorf("user list: exit %d, %q", code, out)
	}
	if code, _, errOut = runCmd("-config", cfg, "enroll", "alice"); code != 1 || !strings.Contains(errOut, "no enrolment") {
		t.Errorf("enroll with master users: exit %d, %q", code, errOut)
	}
	if code, _, _ = runCmd("-config", cfg, "device", "revoke", "alice", "phone"); code != 0 {
		t.Errorf("device revoke: exit %d", code)
	}
	if code, _, _ = runCmd("-config", cfg, "user", "remove", "alice"); code != 0 {
		t.Errorf("user remove: exit %d", code)
	}
	if code, _, _ = runCmd("-config", cfg, "device", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}

	plain := filepath.Join(dir, "plain.toml")
	os.WriteFile(plain, []byte("[upstream]\naddress = \"127.0.0.1:143\"\n"), 0o600)
	if code, _, errOut = runCmd("-config", plain, "user", "list"); code != 2 || !strings.Contains(errOut, `mode = "vault"`) {
		t.Errorf("admin command in passthrough mode: exit %d, %q", code, errOut)
	}
	if code, _, _ = runCmd("-config", plain, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
