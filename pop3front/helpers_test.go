package pop3front

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/popbridge/popbridge/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink safe for concurrent sessions.
type syncBuffer = syncbuf.Buffer

// testServer runs srv on a loopback listener until the test ends.
func testServer(t testing.TB, srv *Server) string {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Every test client is 127.0.0.1: keep the failed-login penalty real
	// but short, unless the test sets its own.
	if srv.Limits.AuthPenaltyInitial == 0 {
		srv.Limits.AuthPenaltyInitial = time.Millisecond
		srv.Limits.AuthPenaltyMax = 4 * time.Millisecond
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// startFake serves a fresh fake backend and returns both.
func startFake(t testing.TB, mod func(*Server)) (*fakeBackend, string) {
	be := newFake()
	srv := &Server{Backend: be}
	if mod != nil {
		mod(srv)
	}
	return be, testServer(t, srv)
}

type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t testing.TB, addr string) *client {
	t.Helper()
	return dialFrom(t, addr, "")
}

// line reads one line, CRLF included.
func (cl *client) line() string {
	cl.t.Helper()
	l, err := cl.r.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

// cmd sends one command line and returns its whole reply.
func (cl *client) cmd(line string) string {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, line+"\r\n"); err != nil {
		cl.t.Fatal(err)
	}
	rep, err := readReply(cl.r, line, false)
	if err != nil {
		cl.t.Fatalf("%s: %v (got %q)", line, err, rep)
	}
	return rep
}

// login runs USER/PASS for the fake's user.
func (cl *client) login() {
	cl.t.Helper()
	cl.cmd("USER alice")
	if r := cl.cmd("PASS secret"); r != "+OK Logged in.\r\n" {
		cl.t.Fatalf("PASS: %q, want %q", r, "+OK Logged in.\r\n")
	}
}

// expectClosed asserts the server closes the connection with nothing
// more to read.
func (cl *client) expectClosed() {
	cl.t.Helper()
	rest, err := io.ReadAll(cl.r)
	if err != nil && !isReset(err) {
		cl.t.Fatalf("waiting for close: %v", err)
	}
	if len(rest) > 0 {
		cl.t.Fatalf("unexpected bytes before close: %q", rest)
	}
	cl.c.Close() // as a client does: the server stops lingering
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// expectsMulti reports whether a "+OK" reply to the command line is a
// multi-line response (RFC 1939 section 3, RFC 2449, RFC 5034).
func expectsMulti(line string) bool {
	name, rest, _ := strings.Cut(line, " ")
	hasArgs := strings.Trim(rest, " ") != ""
	switch strings.ToUpper(name) {
	case "CAPA", "RETR", "TOP":
		return true
	case "LIST", "UIDL", "AUTH":
		return !hasArgs
	}
	return false
}

// readReply reads the reply to line: the status line, and the body up to
// and including the terminator when it is multi-line. sasl says line was
// a SASL response, whose reply is never multi-line.
func readReply(r *bufio.Reader, line string, sasl bool) (string, error) {
	status, err := r.ReadString('\n')
	if err != nil {
		return status, err
	}
	if !strings.HasPrefix(status, "+OK") || sasl || !expectsMulti(line) {
		return status, nil
	}
	var b strings.Builder
	b.WriteString(status)
	for {
		l, err := r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return b.String(), err
		}
		if l == ".\r\n" {
			return b.String(), nil
		}
	}
}

// oneAtATime runs script (CRLF lines) waiting for each reply before the
// next command, as a non-pipelining client does, and returns everything
// read, greeting included, until the server closed.
func oneAtATime(t testing.TB, addr, script string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var out strings.Builder
	g, _ := r.ReadString('\n')
	out.WriteString(g)
	sasl := false
	for _, line := range strings.SplitAfter(script, "\n") {
		if line == "" {
			break
		}
		if _, err := io.WriteString(c, line); err != nil {
			break
		}
		cmd := strings.TrimRight(line, "\r\n")
		rep, err := readReply(r, cmd, sasl)
		out.WriteString(rep)
		if err != nil {
			break
		}
		sasl = strings.HasPrefix(rep, "+ ")
		if strings.EqualFold(cmd, "QUIT") {
			break
		}
	}
	rest, _ := io.ReadAll(r)
	out.Write(rest)
	return out.String()
}

// pipelined writes script in chunks of size chunk (0: all at once) and
// returns everything read until the server closed.
func pipelined(t testing.TB, addr, script string, chunk int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if chunk <= 0 {
			c.Write([]byte(script))
			return
		}
		for i := 0; i < len(script); i += chunk {
			if _, err := c.Write([]byte(script[i:min(i+chunk, len(script))])); err != nil {
				return
			}
		}
	}()
	out, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Errorf("read: %v", err)
	}
	wg.Wait()
	return string(out)
}

// waitCalls waits until the fake's last recorded call is last (sessions
// end asynchronously after the client saw EOF).
func waitCalls(t testing.TB, be *fakeBackend, last string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := be.Calls()
		if len(calls) > 0 && calls[len(calls)-1] == last {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls %q: want last %q", calls, last)
		}
		time.Sleep(time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// eventually polls cond for up to five seconds (sessions finish their
// bookkeeping after the client already saw EOF).
func eventually(t testing.TB, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
