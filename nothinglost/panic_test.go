package nothinglost

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/pop3front"
)

// panicBackend makes the maildrop of user "boom" panic when message 2 is
// opened.
type panicBackend struct{ pop3front.Backend }

func (b panicBackend) Login(ctx context.Context, req *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	md, err := b.Backend.Login(ctx, req)
	if err != nil || req.Username != "boom" {
		return md, err
	}
	return panicMaildrop{md}, nil
}

type panicMaildrop struct{ pop3front.Maildrop }

func (m panicMaildrop) Open(ctx context.Context, i int, s pop3front.Section) (io.ReadCloser, error) {
	if i == 1 {
		panic("test panic in Open")
	}
	return m.Maildrop.Open(ctx, i, s)
}

// TestFPanicIsolated: a panic in one session (after DELEs) closes that
// session only, without an UPDATE; another session of another user, open
// at the same time, goes on and commits; the process survives and
// leaks nothing (goleak in TestMain).
func TestFPanicIsolated(t *testing.T) {
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, u := range []string{"boom", "calm"} {
		srv.AddUser(u, "pw")
		for i := range 3 {
			srv.Append(u, "INBOX", []byte("Subject: "+itoa(i)+"\r\n\r\nbody "+u+"\r\n"))
		}
	}
	acct := func(u string) oracle.Account { return oracle.Account{Addr: srv.Addr(), User: u, Password: "pw"} }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, _, err := oracle.Take(ctx, acct("boom"), "INBOX")
	must(t, err)

	g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge}, func(o *gwtest.Options) {
		o.Wrap = func(b pop3front.Backend) pop3front.Backend { return panicBackend{b} }
	})
	calm := dial(t, g.Addr())
	must(t, calm.Login("calm", "pw"))
	boom := dial(t, g.Addr())
	must(t, boom.Login("boom", "pw"))
	must(t, boom.Send("DELE 1\r\nDELE 3\r\nRETR 2\r\nQUIT\r\n"))
	rest, _ := readAll(boom)
	// The DELE replies may or may not have been flushed before the
	// panic; QUIT is never answered.
	if strings.Count(rest, "+OK") > 2 {
		t.Fatalf("panicking session answered %q", rest)
	}
	after, _, err := oracle.Take(ctx, acct("boom"), "INBOX")
	must(t, err)
	checkOracle(t, oracle.CheckUnchanged(before, after))

	if _, err := calm.OK("DELE 1"); err != nil {
		t.Fatal(err)
	}
	if l, _ := calm.Quit(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("other session's QUIT: %q, want prefix %q", l, "+OK")
	}
	calmAfter, _, err := oracle.Take(ctx, acct("calm"), "INBOX")
	must(t, err)
	if len(calmAfter) != 2 {
		t.Fatalf("other session's DELE not applied: %v", calmAfter)
	}
	again := dial(t, g.Addr())
	must(t, again.Login("boom", "pw"))
	if l, _ := again.Quit(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("a new session after the panic: %q, want prefix %q", l, "+OK")
	}
}
