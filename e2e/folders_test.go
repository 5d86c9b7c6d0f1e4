package e2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
	"github.com/popbridge/popbridge/pop3front"
)

// poplibDeleteScript downloads every message with Python's poplib, DELEs
// the message numbers given after the output directory, and QUITs.
const poplibDeleteScript = `
import os, poplib, sys
addr, user, password, out = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=60)
p.user(user)
p.pass_(password)
count, _ = p.stat()
for i in range(1, count + 1):
    _, lines, _ = p.retr(i)
    with open(os.path.join(out, "%04d" % i), "wb") as f:
        f.write(b"".join(line + b"\r\n" for line in lines))
for n in sys.argv[5:]:
    p.dele(int(n))
p.quit()
`

// TestFoldersOnDovecot: INBOX and Junk as one maildrop (Config.Folders)
// on the real Dovecot; poplib downloads everything byte-exact and DELEs
// a message in each folder; the oracle sees each change in its folder.
func TestFoldersOnDovecot(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "p"})
	msgs := testmail.Ordinary(5)
	var want [][]byte
	for _, m := range msgs[:3] {
		d.Deliver("u", "INBOX", m.Raw)
		want = append(want, m.Raw)
	}
	for _, m := range msgs[3:] {
		d.Deliver("u", "Junk", m.Raw)
		want = append(want, m.Raw)
	}
	inbox0, junk0 := states(d.Snapshot(t, "u", "INBOX")), states(d.Snapshot(t, "u", "Junk"))

	b, err := imapback.New(imapback.Config{
		Address:  d.IMAPAddr(),
		Security: imapback.SecurityNone,
		Folders:  []string{"INBOX", "Junk", "Spam"}, // Spam does not exist: skipped
		Policy:   imapback.Policy{Delete: imapback.DeleteFlag},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &pop3front.Server{Backend: b, Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()

	// UIDLs: INBOX's as without folders, Junk's tagged; all unique.
	uidls := uidlSet(t, ln.Addr().String(), "u", "p")
	if len(uidls) != 5 {
		t.Fatalf("UIDLs %q, want 5", uidls)
	}
	seen := map[string]bool{}
	for i, u := range uidls {
		if seen[u] || len(u) > 70 {
			t.Errorf("UIDL %q breaks invariant 5", u)
		}
		seen[u] = true
		if (i < 3) != (len(u) == 16) {
			t.Errorf("UIDL %d %q: INBOX ones plain, Junk ones tagged", i+1, u)
		}
	}

	dir := t.TempDir()
	run(t, exec.Command("python3", "-c", poplibDeleteScript, ln.Addr().String(), "u", "p", dir, "2", "5"))
	got := readDir(t, dir)
	if len(got) != len(want) {
		t.Fatalf("downloaded %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d differs: %q", i+1, strings.SplitN(string(got[i]), "\n", 2)[0])
		}
	}

	// The oracle: \Seen on every message RETR'd, \Deleted on INBOX 2 and
	// Junk 2 (message 5) only.
	var wantIn, wantJunk []dovecottest.MsgState
	for uid := uint32(1); uid <= 3; uid++ {
		st := withFlags(inbox0[uid], `\Seen`)
		if uid == 2 {
			st = withFlags(st, `\Deleted`)
		}
		wantIn = append(wantIn, st)
	}
	for uid := uint32(1); uid <= 2; uid++ {
		st := withFlags(junk0[uid], `\Seen`)
		if uid == 2 {
			st = withFlags(st, `\Deleted`)
		}
		wantJunk = append(wantJunk, st)
	}
	checkSnapshot(t, d, "u", "INBOX", wantIn)
	checkSnapshot(t, d, "u", "Junk", wantJunk)
	if after := uidlSet(t, ln.Addr().String(), "u", "p"); len(after) != 3 {
		t.Errorf("after QUIT: %q, want 3 listed", after)
	}
}
