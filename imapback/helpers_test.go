package imapback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/syncbuf"
	"github.com/popbridge/popbridge/pop3front"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wire is a concurrency-safe recorder of what the upstream read.
type wire struct{ syncbuf.Buffer }

// lines returns the recorded command lines matching re.
func (w *wire) lines(re string) []string {
	rx := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.SplitAfter(w.String(), "\n") {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// plainExpunge matches a plain EXPUNGE command, not UID EXPUNGE.
const plainExpunge = `(?i)^\S+ EXPUNGE\r?\n?$`

const (
	testUser = "alice"
	testPass = "secret"
)

// seed returns n small, distinct CRLF messages.
func seed(n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Appendf(nil, "From: sender%d@example.org\r\nTo: alice@example.org\r\nSubject: message %d\r\n\r\nBody of message %d.\r\n.\r\n..dots\r\nline %s\r\n", i, i, i, strings.Repeat("x", i)))
	}
	return out
}

type env struct {
	t    *testing.T
	srv  *memupstream.Server
	wire *wire
	msgs [][]byte
}

// newEnv starts an in-memory upstream with user alice and msgs in INBOX;
// flags[i] (if any) are set on message i.
func newEnv(t *testing.T, profile memupstream.Profile, msgs [][]byte, flags map[int][]imap.Flag) *env {
	t.Helper()
	w := &wire{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Profile: profile, Wire: w, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddUser(testUser, testPass); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if err := srv.Append(testUser, "INBOX", m, flags[i]...); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, srv: srv, wire: w, msgs: msgs}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) backend(p Policy, mod ...func(*Config)) *Backend {
	e.t.Helper()
	cfg := Config{
		Address:        e.srv.Addr(),
		Security:       SecurityNone,
		Policy:         p,
		DialTimeout:    2 * time.Second,
		CommandTimeout: 2 * time.Second,
		Logger:         testLogger(e.t),
	}
	for _, f := range mod {
		f(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) login(b *Backend) pop3front.Maildrop {
	e.t.Helper()
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Mechanism: "USER"})
	if err != nil {
		e.t.Fatalf("Login: %v", err)
	}
	e.t.Cleanup(func() { md.Close() })
	return md
}

// retr reads message index whole.
func retr(t *testing.T, md pop3front.Maildrop, index int) ([]byte, error) {
	t.Helper()
	r, err := md.Open(context.Background(), index, pop3front.Section{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// msgState is what the oracle sees of one message.
type msgState struct {
	flags []string // lower case, sorted
	body  string
}

func (s msgState) has(f imap.Flag) bool {
	return slices.Contains(s.flags, strings.ToLower(string(f)))
}

// state reads a mailbox over a second IMAP connection (EXAMINE, no
// change). A missing mailbox is nil.
func (e *env) state(mailbox string) map[imap.UID]msgState {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.srv.Addr(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatal(err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil
		}
		e.t.Fatal(err)
	}
	out := map[imap.UID]msgState{}
	if sel.NumMessages == 0 {
		return out
	}
	bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bufs {
		var fl []string
		for _, f := range b.Flags {
			fl = append(fl, strings.ToLower(string(f)))
		}
		slices.Sort(fl)
		out[b.UID] = msgState{flags: fl, body: string(b.BodySection[0].Bytes)}
	}
	c.Logout().Wait()
	return out
}

// imapDo runs f on a second, read-write connection (another device).
func (e *env) imapDo(f func(c *imapclient.Client) error) {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.srv.Addr(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatal(err)
	}
	if err := f(c); err != nil {
		e.t.Fatal(err)
	}
	c.Logout().Wait()
}

func wantCode(t *testing.T, err error, code string) *pop3front.Error {
	t.Helper()
	var pe *pop3front.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error = %v, want *pop3front.Error with code %s", err, code)
	}
	return pe
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newBufLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
