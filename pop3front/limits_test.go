package pop3front

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLineLength(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		n     int // total command line length, CRLF not counted
		ok    bool
	}{
		{"255 always accepted", 0, 255, true},
		{"1024 accepted", 0, 1024, true},
		{"1025 rejected", 0, 1025, false},
		{"4000 rejected", 0, 4000, false},
		{"limit raised to 255", 10, 255, true},
		{"256 over a 255 limit", 10, 256, false},
		{"custom 5000", 5000, 5000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, addr := startFake(t, func(s *Server) { s.Limits.MaxLineLength = c.limit })
			cl := dial(t, addr)
			line := "USER " + strings.Repeat("u", c.n-5)
			got := cl.cmd(line)
			if c.ok {
				if got != "+OK Send PASS.\r\n" {
					t.Fatalf("got %q, want %q", got, "+OK Send PASS.\r\n")
				}
				return
			}
			if got != "-ERR Line too long\r\n" {
				t.Fatalf("got %q, want %q", got, "-ERR Line too long\r\n")
			}
			cl.expectClosed()
		})
	}
}

// TestLongLineByteByByte: a megabyte without a line end, one octet per
// write, is refused after a bounded amount.
func TestLongLineByteByByte(t *testing.T) {
	_, addr := startFake(t, nil)
	cl := dial(t, addr)
	done := make(chan int)
	go func() {
		one := []byte{'x'}
		n := 0
		for ; n < 1<<20; n++ {
			if _, err := cl.c.Write(one); err != nil {
				break
			}
		}
		done <- n
	}()
	if got := cl.line(); got != "-ERR Line too long\r\n" {
		t.Fatalf("got %q, want %q", got, "-ERR Line too long\r\n")
	}
	cl.expectClosed()
	if n := <-done; n >= 1<<20 {
		t.Errorf("server read the whole megabyte")
	}
}

// TestLineReaderBounded: the reader consumes at most its buffer before
// it gives up on a line.
func TestLineReaderBounded(t *testing.T) {
	src := &countingReader{}
	lr := newLineReader(bufio.NewReaderSize(iotestOneByte{src}, readBufferSize(1024)), 1024)
	if _, err := lr.readLine(); err != errLineTooLong {
		t.Fatalf("err %v, want %v", err, errLineTooLong)
	}
	if src.n > readBufferSize(1024) {
		t.Errorf("read %d octets for one refused line", src.n)
	}
	lr = newLineReader(bufio.NewReader(strings.NewReader("A\r\nB\nC\r\nD")), 10)
	for _, want := range []string{"A", "B", "C"} {
		if l, err := lr.readLine(); err != nil || string(l) != want {
			t.Fatalf("got %q %v, want %q", l, err, want)
		}
	}
	if _, err := lr.readLine(); err != io.EOF {
		t.Fatalf("partial last line: err %v, want EOF", err)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}

type iotestOneByte struct{ r io.Reader }

func (r iotestOneByte) Read(p []byte) (int, error) { return r.r.Read(p[:1]) }

func TestBadCommandLimit(t *testing.T) {
	t.Run("before login", func(t *testing.T) {
		_, addr := startFake(t, nil)
		cl := dial(t, addr)
		runSteps(t, cl, []step{
			{"FOO", "-ERR Unknown command.\r\n"},
			{"STAT", "-ERR Not logged in.\r\n"},
			{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN LOGIN\r\n.\r\n"},
			{"USER\x00x", "-ERR Too many bad commands\r\n"},
		})
		cl.expectClosed()
	})
	t.Run("failed logins count", func(t *testing.T) {
		be, addr := startFake(t, nil)
		cl := dial(t, addr)
		runSteps(t, cl, []step{
			{"USER alice", "+OK Send PASS.\r\n"},
			{"PASS a", "-ERR [AUTH] Authentication failed.\r\n"},
			{"AUTH PLAIN " + b64("\x00alice\x00b"), "-ERR [AUTH] Authentication failed.\r\n"},
			{"USER alice", "+OK Send PASS.\r\n"},
			{"PASS c", "-ERR [AUTH] Authentication failed.\r\n"},
		})
		cl.expectClosed()
		waitCalls(t, be, "login alice")
	})
	t.Run("after login", func(t *testing.T) {
		be, addr := startFake(t, nil)
		cl := dial(t, addr)
		cl.login()
		for i := 1; i < DefaultMaxBadCommandsAuthed; i++ {
			if got := cl.cmd("RETR x"); got != "-ERR Invalid message number.\r\n" {
				t.Fatalf("%d: %q, want %q", i, got, "-ERR Invalid message number.\r\n")
			}
			cl.cmd("RETR 9") // not a bad command: well-formed
		}
		if got := cl.cmd("FOO"); got != "-ERR Too many bad commands\r\n" {
			t.Fatalf("got %q, want %q", got, "-ERR Too many bad commands\r\n")
		}
		cl.expectClosed()
		calls := waitCalls(t, be, "close")
		for _, c := range calls {
			if strings.HasPrefix(c, "commit") {
				t.Errorf("committed: %q", calls)
			}
		}
	})
}

func TestNULAndCR(t *testing.T) {
	be, addr := startFake(t, lenient)
	cl := dial(t, addr)
	runSteps(t, cl, []step{
		{"USER al\x00ice", "-ERR Invalid characters in command.\r\n"},
		{"USER al\rice", "-ERR Invalid characters in command.\r\n"},
		{"USER alice", "+OK Send PASS.\r\n"},
		{"PASS sec\x00ret", "-ERR Invalid characters in command.\r\n"},
		{"PASS sec\tret", "-ERR [AUTH] Authentication failed.\r\n"},
		{"USER al\xffice", "+OK Send PASS.\r\n"},
		{"PASS secret", "-ERR [AUTH] Authentication failed.\r\n"},
	})
	if len(be.Calls()) != 0 {
		t.Errorf("backend saw %q", be.Calls())
	}
}

func TestAuthTimeoutAbsolute(t *testing.T) {
	be, addr := startFake(t, func(s *Server) { s.Limits.AuthTimeout = 500 * time.Millisecond })
	start := time.Now()
	cl := dial(t, addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Trickle a line and keep chatting: neither extends the deadline.
		for _, b := range []byte("CAPA\r\nUSER alice\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") {
			select {
			case <-stop:
				return
			case <-time.After(8 * time.Millisecond):
			}
			cl.c.Write([]byte{b})
		}
	}()
	cl.line() // CAPA
	for l := cl.line(); l != ".\r\n"; l = cl.line() {
	}
	if got := cl.line(); got != "+OK Send PASS.\r\n" {
		t.Fatalf("got %q, want %q", got, "+OK Send PASS.\r\n")
	}
	if got := cl.line(); got != "-ERR [SYS/TEMP] Login timeout\r\n" {
		t.Fatalf("got %q, want %q", got, "-ERR [SYS/TEMP] Login timeout\r\n")
	}
	cl.expectClosed()
	if d := time.Since(start); d < 450*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want about 500ms", d)
	}
	if len(be.Calls()) != 0 {
		t.Errorf("calls %q", be.Calls())
	}
}

func TestIdleTimeout(t *testing.T) {
	be, addr := startFake(t, func(s *Server) { s.Limits.IdleTimeout = 200 * time.Millisecond })
	cl := dial(t, addr)
	cl.login()
	for i := 0; i < 3; i++ { // each command resets the idle deadline
		time.Sleep(100 * time.Millisecond)
		cl.cmd("DELE 1")
		cl.cmd("RSET")
	}
	cl.cmd("DELE 1")
	start := time.Now()
	if got := cl.line(); got != "-ERR [SYS/TEMP] Idle timeout\r\n" {
		t.Fatalf("got %q, want %q", got, "-ERR [SYS/TEMP] Idle timeout\r\n")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("idle close after %v", d)
	}
	cl.expectClosed()
	noCommit(t, be)
}

// noCommit waits for the session to Close the maildrop and asserts it
// never committed (docs/design.md, invariant 1).
func noCommit(t *testing.T, be *fakeBackend) {
	t.Helper()
	calls := waitCalls(t, be, "close")
	for _, c := range calls {
		if strings.HasPrefix(c, "commit") {
			t.Errorf("committed without QUIT: %q", calls)
		}
	}
}

// TestWriteTimeout: a client that stops reading in the middle of a large
// message is dropped after WriteTimeout, with no terminator and no
// commit.
func TestWriteTimeout(t *testing.T) {
	be := newFake()
	be.Msgs[0] = strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 20000)
	srv := &Server{Backend: be, Limits: Limits{WriteTimeout: 150 * time.Millisecond}, Logger: discardLogger()}
	c1, c2 := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(c1); close(done) }()
	defer c2.Close()
	r := bufio.NewReader(c2)
	cl := &client{t: t, c: c2, r: r}
	cl.line()
	io.WriteString(c2, "USER alice\r\nPASS secret\r\nDELE 2\r\nRETR 1\r\n")
	cl.line()
	cl.line()
	cl.line()
	if got := cl.line(); got != "+OK 1320000 octets\r\n" {
		t.Fatalf("got %q, want %q", got, "+OK 1320000 octets\r\n")
	}
	// Read a little, then stop.
	io.ReadFull(r, make([]byte, 1000))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("session not ended by the write timeout")
	}
	noCommit(t, be)
}

// TestZeroLimitsTakeDefaultLimits: a zero Limits is DefaultLimits, so a
// default is written once (the Default* constants) for the server and for
// the daemon's configuration alike.
func TestZeroLimitsTakeDefaultLimits(t *testing.T) {
	if got, want := (Limits{}).withDefaults(), DefaultLimits(); got != want {
		t.Errorf("Limits{}.withDefaults() = %+v, want %+v", got, want)
	}
	if got := DefaultLimits().withDefaults(); got != DefaultLimits() {
		t.Errorf("DefaultLimits().withDefaults() = %+v, want it unchanged", got)
	}
}
