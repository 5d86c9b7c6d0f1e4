package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestInstalledBinary runs the binary the Debian package installed (path
// in POPBRIDGE_INSTALLED_BINARY, which .ci/run sets after dpkg -i) in
// front of a private Dovecot for one session: the configuration checks,
// the message is served byte for byte, and a DELE confirmed by QUIT
// expunges it upstream while the other message stays as it was.
func TestInstalledBinary(t *testing.T) {
	bin := os.Getenv("POPBRIDGE_INSTALLED_BINARY")
	if bin == "" {
		t.Skip("POPBRIDGE_INSTALLED_BINARY is not set: .ci/run sets it after installing the Debian package")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("POPBRIDGE_INSTALLED_BINARY=%s is not an executable file (err %v)", bin, err)
	}
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
	msgs := testmail.Ordinary(2)
	for _, m := range msgs {
		d.Deliver("u", "INBOX", m.Raw)
	}
	before := d.Snapshot(t, "u", "INBOX")

	dir := t.TempDir()
	g, err := tryStartGateway(t, bin, dir, d.IMAPAddr(), policy{Delete: "expunge", Seen: "quit"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-check-config", "-config", filepath.Join(dir, "popbridge.toml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Errorf("-check-config: %v: %s", err, out)
	}

	p := dialPOP3(t, g.addr)
	p.login("u", "pw")
	if s := p.ok("STAT"); !strings.HasPrefix(s, "+OK 2 ") {
		t.Errorf("STAT: got %q, want 2 messages", s)
	}
	if got, want := p.retr(1), msgs[0].Served; !bytes.Equal(got, want) {
		t.Errorf("RETR 1: got %d octets, want %d (%q)", len(got), len(want), got)
	}
	p.ok("DELE 1")
	p.quit()

	after := d.Snapshot(t, "u", "INBOX")
	if len(after) != 1 || after[0].UID != before[1].UID || after[0].SHA256 != before[1].SHA256 {
		t.Errorf("upstream INBOX after DELE 1 and QUIT: got %v, want only %v", after, before[1])
	}
}
