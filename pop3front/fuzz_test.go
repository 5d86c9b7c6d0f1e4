package pop3front

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// memConn is a net.Conn over fixed input; writes are collected.
type memConn struct {
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *memConn) Close() error                     { c.closed = true; return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

var fuzzSeeds = []string{
	pipelineScript,
	"USER alice\r\nPASS secret\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nQUIT\r\n",
	"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nLIST\r\nUIDL\r\nRETR 3\r\nQUIT\r\n",
	"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nDELE 2\r\nRSET\r\nQUIT\r\n",
	"AUTH\r\nAUTH PLAIN\r\n*\r\nCAPA\r\nQUIT\r\n",
	"USER alice\r\nPASS secret\r\nLIST 0\r\nLIST 01\r\nTOP 1 -1\r\nRETR 4294967296\r\nDELE 1x\r\nQUIT\r\n",
	"user alice\npass secret\nstat\nretr 2\nquit\n",
	"USER alice\r\nPASS secret\r\nDELE 1\r\nDELE 2\r\n",
	"USER a\x00\r\nFOO\r\nBAR\r\n",
	"USER alice\r\nPASS secret\r\nTOP 4 0\r\nNOOP\r\nQUIT\r\nDELE 1\r\n",
}

// FuzzSession drives whole sessions with arbitrary client bytes against
// the fake backend and checks the wire and store invariants: no panic,
// every reply starts "+OK", "-ERR" or "+ " (SASL) and is followed by a
// complete body exactly when it is multi-line, status lines fit 512
// octets, nothing follows QUIT, and Commit is called only for QUIT in
// TRANSACTION.
func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		var panicked any
		testHookPanic = func(v any) { panicked = v }
		defer func() { testHookPanic = nil }()

		be := newFake()
		be.Msgs = append(be.Msgs, "A: .\n\n.\r\n..\rend", "")
		srv := &Server{Backend: be, Logger: discardLogger(), Limits: Limits{MaxBadCommands: 10, AuthPenaltyInitial: -1}}
		conn := &memConn{in: bytes.NewReader(input)}
		srv.ServeConn(conn)
		if panicked != nil {
			t.Fatalf("panic: %v", panicked)
		}
		if !conn.closed {
			t.Fatal("connection not closed")
		}
		quit := checkTranscript(t, input, conn.out.Bytes())
		if c := be.Commits(); len(c) > 0 && !quit {
			t.Fatalf("Commit %+v without QUIT in TRANSACTION", c)
		}
		if calls := be.Calls(); len(calls) > 0 && calls[len(calls)-1] != "close" && !strings.HasPrefix(calls[len(calls)-1], "login") {
			t.Fatalf("maildrop not closed last: %q", calls)
		}
	})
}

// checkTranscript walks the client's lines and the server's output in
// step and reports whether QUIT was answered in TRANSACTION.
func checkTranscript(t *testing.T, input, output []byte) (quitInTrans bool) {
	t.Helper()
	// One buffer for all the output, so Buffered() == 0 means "no more".
	r := bufio.NewReaderSize(bytes.NewReader(output), len(output)+16)
	g, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	authed, sasl := false, false
	lines := strings.SplitAfter(string(input), "\n")
	for _, raw := range lines {
		if !strings.HasSuffix(raw, "\n") || r.Buffered() == 0 {
			break
		}
		line := strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		rep, err := readReply(r, line, sasl)
		if err != nil {
			t.Fatalf("reply to %q: %v (%q)", line, err, rep)
		}
		status, _, _ := strings.Cut(rep, "\r\n")
		if len(status)+2 > maxReplyLine {
			t.Fatalf("status line of %d octets", len(status)+2)
		}
		if !strings.HasSuffix(rep, "\r\n") || !(strings.HasPrefix(status, "+OK") || strings.HasPrefix(status, "-ERR") || strings.HasPrefix(status, "+ ")) {
			t.Fatalf("reply to %q: %q", line, rep)
		}
		name, args, _ := strings.Cut(line, " ")
		name = strings.ToUpper(name)
		if !sasl && authed && name == "QUIT" && strings.Trim(args, " ") == "" {
			quitInTrans = true
			if r.Buffered() != 0 {
				rest, _ := io.ReadAll(r)
				t.Fatalf("output after QUIT: %q", rest)
			}
			return
		}
		if strings.HasPrefix(status, "+OK") && !authed && (sasl || name == "PASS" || name == "AUTH" && strings.Trim(args, " ") != "") {
			authed = true
		}
		sasl = strings.HasPrefix(status, "+ ")
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 && string(rest) != "-ERR Line too long\r\n" {
		t.Fatalf("unexpected trailing output %q", rest)
	}
	return
}
