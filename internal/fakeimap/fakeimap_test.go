package fakeimap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recTB records failures instead of failing the real test.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Helper() {}
func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}
func (r *recTB) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

const caps = "IMAP4rev1 UIDPLUS"

func TestScriptWithGoIMAP(t *testing.T) {
	body := []byte("Subject: hi\r\n\r\nhello\r\n")
	m := Msg{UID: 4, Body: body, Flags: `\Seen`}
	srv := Start(t, S(Prelude(caps, 9, m), FetchBody(1, m), Logout()))
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.UIDValidity != 9 || sel.NumMessages != 1 {
		t.Fatalf("EXAMINE: %+v %v", sel, err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	snap, err := c.Fetch(all, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true}).Collect()
	if err != nil || len(snap) != 1 || snap[0].UID != 4 || snap[0].RFC822Size != int64(len(body)) {
		t.Fatalf("snapshot: %+v %v", snap, err)
	}
	got, err := c.Fetch(imap.UIDSetNum(4), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(got) != 1 || string(got[0].BodySection[0].Bytes) != string(body) {
		t.Fatalf("fetch: %+v %v", got, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if !srv.WaitDone(0, 5*time.Second) {
		t.Fatal("script did not end")
	}
	rec := srv.Received(0)
	if len(rec) != 5 || !strings.HasSuffix(rec[0], `LOGIN "u" "p"`) {
		t.Fatalf("received %q", rec)
	}
}

// dialRaw connects and reads the greeting.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

func TestUnexpectedInputFails(t *testing.T) {
	rec := &recTB{TB: t}
	srv := StartTimeout(rec, 2*time.Second, S(Greeting(caps), Login(caps), Expect(`LOGOUT`)))
	c, r := dialRaw(t, srv.Addr())
	r.ReadString('\n')
	fmt.Fprintf(c, "a1 LOGIN u p\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("login reply %q, want prefix %q", l, "a1 OK")
	}
	fmt.Fprintf(c, "a2 UID STORE 1 +FLAGS (\\Deleted)\r\n")
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("connection not closed after unexpected input: %v, want %v", err, io.EOF)
	}
	srv.Close()
	if f := rec.failures(); !strings.Contains(f, `unexpected input "a2 UID STORE`) {
		t.Fatalf("failures: %q, want it to contain %q", f, `unexpected input "a2 UID STORE`)
	}
}

func TestUnexpectedConnectionFails(t *testing.T) {
	rec := &recTB{TB: t}
	srv := Start(rec)
	_, r := dialRaw(t, srv.Addr())
	r.ReadString('\n')
	srv.Close()
	if f := rec.failures(); !strings.Contains(f, "unexpected connection 0") {
		t.Fatalf("failures: %q, want it to contain %q", f, "unexpected connection 0")
	}
}

func TestShortLiteralAndClientLiteral(t *testing.T) {
	body := []byte("0123456789")
	srv := Start(t, S(
		Greeting(caps),
		Expect(`LOGIN u \{3\}pwd`),
		SendTagged("OK logged in"),
		Expect(`UID FETCH 1 .*`),
		ShortLiteral(`* 1 FETCH (UID 1 BODY[] `, 20, body),
		Hang(),
	))
	c, r := dialRaw(t, srv.Addr())
	r.ReadString('\n')
	fmt.Fprintf(c, "a1 LOGIN u {3}\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("continuation %q, want prefix %q", l, "+ ")
	}
	fmt.Fprintf(c, "pwd\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("login reply %q, want prefix %q", l, "a1 OK")
	}
	fmt.Fprintf(c, "a2 UID FETCH 1 (BODY.PEEK[])\r\n")
	r.ReadString('\n')
	got := make([]byte, 10)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != string(body) {
		t.Fatalf("%q %v", got, err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		t.Fatal("more than the short literal")
	}
	c.Close()
	if !srv.WaitDone(0, 5*time.Second) {
		t.Fatal("Hang did not end at close")
	}
}

func TestUIDSet(t *testing.T) {
	if got := UIDSet(1, 2, 3, 5, 7, 8); got != "1:3,5,7:8" {
		t.Fatal(got)
	}
}
