package pop3front

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTruncatedStream: a stream that fails mid-message gives the client
// no terminator, the connection is closed, and pipelined DELE/QUIT after
// it never act (docs/design.md, invariants 1 and 4).
func TestTruncatedStream(t *testing.T) {
	for _, mode := range []string{"read", "onebyte", "writerto"} {
		t.Run(mode, func(t *testing.T) {
			be, addr := startFake(t, nil)
			be.Truncate = map[int]int{1: 30}
			be.OneByte = mode == "onebyte"
			be.WriterTo = mode == "writerto"
			got := pipelined(t, addr, "USER alice\r\nPASS secret\r\nRETR 1\r\nRETR 2\r\nDELE 2\r\nQUIT\r\n", 0)
			want := "+OK POP3 gateway ready.\r\n+OK Send PASS.\r\n+OK Logged in.\r\n" +
				"+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n+OK 44 octets\r\n"
			// Earlier replies arrive, the partial body may, the terminator
			// never.
			if !strings.HasPrefix(got, want) {
				t.Fatalf("got %q, want prefix %q", got, want)
			}
			if rest := got[len(want):]; !strings.HasPrefix("Subject: two\r\nX: y\r\n\r\nline 1\r\n", rest) {
				t.Errorf("after +OK: %q", rest)
			}
			calls := waitCalls(t, be, "close")
			want2 := []string{"login alice", "open 0 top=false/0", "stream close", "open 1 top=false/0", "stream close", "close"}
			if !reflect.DeepEqual(calls, want2) {
				t.Errorf("calls %q, want %q", calls, want2)
			}
		})
	}
}

// TestRetrSizeChecked: a stream that ends cleanly but with another
// octet count than the snapshot announced (a backend serving the header
// as the whole message) is not a complete RETR: no terminator, and the
// pipelined DELE and QUIT never act.
func TestRetrSizeChecked(t *testing.T) {
	for _, size := range []int64{10, 400} {
		t.Run(fmt.Sprint("announced=", size), func(t *testing.T) {
			be, addr := startFake(t, nil)
			be.Infos = []MessageInfo{{Size: size, UIDL: "uid1"}}
			got := pipelined(t, addr, "USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n", 0)
			want := fmt.Sprintf("+OK POP3 gateway ready.\r\n+OK Send PASS.\r\n+OK Logged in.\r\n+OK %d octets\r\n", size)
			if !strings.HasPrefix(got, want) {
				t.Fatalf("got %q, want prefix %q", got, want)
			}
			if rest := got[len(want):]; !strings.HasPrefix("Subject: one\r\n\r\nHello\r\n", rest) {
				t.Errorf("after +OK: %q, want a prefix of the message and no terminator", rest)
			}
			waitCalls(t, be, "close")
			if c := be.Commits(); len(c) != 0 {
				t.Errorf("commits %+v, want none", c)
			}
		})
	}
}

func TestCommit(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		reply string
	}{
		{"ok", nil, "+OK Logging out.\r\n"},
		{"plain error", errors.New("NO [SERVERBUG] secret upstream text"), "-ERR [SYS/TEMP] Temporary failure, no changes made.\r\n"},
		{"Error text", &Error{Code: CodeSysPerm, Text: "Mailbox is read-only.", Err: errors.New("x")}, "-ERR [SYS/TEMP] Mailbox is read-only.\r\n"},
		{"Error without text", &Error{Code: CodeSysTemp}, "-ERR [SYS/TEMP] Temporary failure, no changes made.\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be, addr := startFake(t, nil)
			be.CommitErr = c.err
			cl := dial(t, addr)
			cl.login()
			runSteps(t, cl, []step{
				{"DELE 3", "+OK Marked to be deleted.\r\n"},
				{"TOP 1 0", "+OK\r\nSubject: one\r\n\r\n.\r\n"},
				{"RETR 2", "+OK 44 octets\r\nSubject: two\r\nX: y\r\n\r\nline 1\r\n..dot\r\nline 3\r\n.\r\n"},
				{"RETR 2", "+OK 44 octets\r\nSubject: two\r\nX: y\r\n\r\nline 1\r\n..dot\r\nline 3\r\n.\r\n"},
				{"QUIT", c.reply},
			})
			cl.expectClosed()
			waitCalls(t, be, "close")
			want := []Outcome{{Deleted: []int{2}, Retrieved: []int{1}}} // TOP is not a retrieval
			if got := be.Commits(); !reflect.DeepEqual(got, want) {
				t.Errorf("commits %+v, want %+v", got, want)
			}
		})
	}
}

func TestQuitWithoutChanges(t *testing.T) {
	be, addr := startFake(t, nil)
	cl := dial(t, addr)
	cl.login()
	runSteps(t, cl, []step{{"DELE 1", "+OK Marked to be deleted.\r\n"}, {"RSET", "+OK\r\n"}, {"TOP 1 1", "+OK\r\nSubject: one\r\n\r\nHello\r\n.\r\n"}, {"QUIT", "+OK Logging out.\r\n"}})
	cl.expectClosed()
	noCommit(t, be) // nothing to apply: Commit is skipped
}

// TestRSETUndoesRetrievals: RSET forgets RETRs as well as DELEs, as
// Dovecot's own POP3 does (it clears the \Seen changes it would make at
// QUIT); QUIT applies only what came after the last RSET.
func TestRSETUndoesRetrievals(t *testing.T) {
	t.Run("only-before", func(t *testing.T) {
		be, addr := startFake(t, nil)
		cl := dial(t, addr)
		cl.login()
		runSteps(t, cl, []step{
			{"RETR 1", "+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n"},
			{"RSET", "+OK\r\n"},
			{"QUIT", "+OK Logging out.\r\n"},
		})
		cl.expectClosed()
		waitCalls(t, be, "close")
		if got := be.Commits(); len(got) != 0 {
			t.Errorf("commits %+v, want none (RSET undid the RETR)", got)
		}
	})
	t.Run("after-counts", func(t *testing.T) {
		be, addr := startFake(t, nil)
		cl := dial(t, addr)
		cl.login()
		runSteps(t, cl, []step{
			{"RETR 1", "+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n"},
			{"RETR 3", "+OK 21 octets\r\nSubject: three\r\n\r\n..\r\n.\r\n"},
			{"DELE 2", "+OK Marked to be deleted.\r\n"},
			{"RSET", "+OK\r\n"},
			{"RETR 3", "+OK 21 octets\r\nSubject: three\r\n\r\n..\r\n.\r\n"},
			{"DELE 1", "+OK Marked to be deleted.\r\n"},
			{"QUIT", "+OK Logging out.\r\n"},
		})
		cl.expectClosed()
		waitCalls(t, be, "close")
		want := []Outcome{{Deleted: []int{0}, Retrieved: []int{2}}}
		if got := be.Commits(); !reflect.DeepEqual(got, want) {
			t.Errorf("commits %+v, want %+v", got, want)
		}
	})
}

func TestQuitBeforeLogin(t *testing.T) {
	be, addr := startFake(t, nil)
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"QUIT", "+OK Logging out.\r\n"}})
	cl.expectClosed()
	if len(be.Calls()) != 0 {
		t.Errorf("calls %q", be.Calls())
	}
}

func TestDropWithoutQuit(t *testing.T) {
	be, addr := startFake(t, nil)
	cl := dial(t, addr)
	cl.login()
	cl.cmd("DELE 1")
	cl.cmd("RETR 2")
	cl.c.Close()
	noCommit(t, be)
}

func TestOpenErrors(t *testing.T) {
	be, addr := startFake(t, nil)
	be.OpenErr = map[int]error{
		0: fmt.Errorf("wrapped: %w", ErrExpunged),
		1: &Error{Code: CodeInUse, Text: "Busy,\r\nretry\x00 later."},
		2: errors.New("connection reset by upstream"),
	}
	cl := dial(t, addr)
	cl.login()
	runSteps(t, cl, []step{
		{"RETR 1", "-ERR Message 1 expunged.\r\n"},
		{"TOP 1 0", "-ERR Message 1 expunged.\r\n"},
		{"RETR 2", "-ERR [IN-USE] Busy,  retry  later.\r\n"},
		{"RETR 3", "-ERR [SYS/TEMP] Temporary failure, try again later.\r\n"},
		{"LIST 1", "+OK 1 23\r\n"}, // the snapshot still shows it
		{"DELE 1", "+OK Marked to be deleted.\r\n"},
		{"QUIT", "+OK Logging out.\r\n"},
	})
	cl.expectClosed()
	waitCalls(t, be, "close")
	if got := be.Commits(); !reflect.DeepEqual(got, []Outcome{{Deleted: []int{0}}}) {
		t.Errorf("commits %+v", got)
	}
}

func TestNoopFailure(t *testing.T) {
	be, addr := startFake(t, nil)
	be.NoopErr = errors.New("upstream gone")
	cl := dial(t, addr)
	cl.login()
	cl.cmd("DELE 1")
	runSteps(t, cl, []step{{"NOOP", "-ERR [SYS/TEMP] Temporary failure, try again later.\r\n"}})
	cl.expectClosed()
	noCommit(t, be)
}

func TestLoginErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		reply string
	}{
		{"ErrAuthFailed wrapped", fmt.Errorf("x: %w", ErrAuthFailed), "-ERR [AUTH] Authentication failed.\r\n"},
		{"Error AUTH with text", &Error{Code: CodeAuth, Text: "Password expired for alice"}, "-ERR [AUTH] Authentication failed.\r\n"},
		{"SYS/PERM", &Error{Code: CodeSysPerm, Text: "Account disabled."}, "-ERR [SYS/PERM] Account disabled.\r\n"},
		{"IN-USE", &Error{Code: CodeInUse, Text: "Mailbox locked."}, "-ERR [IN-USE] Mailbox locked.\r\n"},
		{"bad code", &Error{Code: "X]Y", Text: "odd"}, "-ERR [SYS/TEMP] odd\r\n"},
		{"no code", &Error{Text: "Try later."}, "-ERR Try later.\r\n"},
		{"generic", errors.New("dial tcp: connection refused"), "-ERR [SYS/TEMP] Temporary failure, try again later.\r\n"},
		{"long text", &Error{Code: CodeSysTemp, Text: strings.Repeat("é", 600)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be, addr := startFake(t, lenient)
			be.LoginErr = c.err
			cl := dial(t, addr)
			cl.cmd("USER alice")
			got := cl.cmd("PASS secret")
			if c.reply == "" {
				if len(got) > maxReplyLine || !strings.HasPrefix(got, "-ERR [SYS/TEMP] ???") || strings.Count(got, "\r\n") != 1 {
					t.Errorf("reply %d octets: %q", len(got), got)
				}
			} else if got != c.reply {
				t.Errorf("got %q, want %q", got, c.reply)
			}
			// Still in AUTHORIZATION, USER needed again.
			runSteps(t, cl, []step{{"STAT", "-ERR Not logged in.\r\n"}, {"PASS secret", "-ERR USER first.\r\n"}})
		})
	}
}

func TestSnapshotChecked(t *testing.T) {
	cases := map[string][]MessageInfo{
		"empty UIDL":     {{Size: 1, UIDL: ""}},
		"long UIDL":      {{Size: 1, UIDL: strings.Repeat("u", 71)}},
		"space in UIDL":  {{Size: 1, UIDL: "a b"}},
		"CRLF in UIDL":   {{Size: 1, UIDL: "a\r\n.\r\n"}},
		"duplicate UIDL": {{Size: 1, UIDL: "a"}, {Size: 2, UIDL: "a"}},
		"negative size":  {{Size: -1, UIDL: "a"}},
	}
	for name, infos := range cases {
		t.Run(name, func(t *testing.T) {
			be, addr := startFake(t, nil)
			be.Infos = infos
			cl := dial(t, addr)
			cl.cmd("USER alice")
			runSteps(t, cl, []step{{"PASS secret", "-ERR [SYS/TEMP] Temporary failure, try again later.\r\n"}})
			waitCalls(t, be, "close")
		})
	}
	t.Run("70 octets ok", func(t *testing.T) {
		be, addr := startFake(t, nil)
		be.Infos = []MessageInfo{{Size: 5, UIDL: strings.Repeat("~", 70)}}
		cl := dial(t, addr)
		cl.login()
		runSteps(t, cl, []step{{"UIDL", "+OK\r\n1 " + strings.Repeat("~", 70) + "\r\n.\r\n"}})
	})
}

func TestEmptyMaildrop(t *testing.T) {
	be, addr := startFake(t, nil)
	be.Msgs = nil
	cl := dial(t, addr)
	cl.login()
	runSteps(t, cl, []step{
		{"STAT", "+OK 0 0\r\n"},
		{"LIST", "+OK 0 messages:\r\n.\r\n"},
		{"UIDL", "+OK\r\n.\r\n"},
		{"LIST 1", "-ERR No such message.\r\n"},
		{"RETR 1", "-ERR No such message.\r\n"},
		{"QUIT", "+OK Logging out.\r\n"},
	})
}

func TestLineEndingsOnTheWire(t *testing.T) {
	be, addr := startFake(t, nil)
	be.Msgs = []string{
		"A: 1\n\n.\n..x\nlast", // LF only, no final line end
		"",                     // empty message
		"A: 1\r\rb\r\n.",       // bare CRs (data), ends in a lone dot
	}
	cl := dial(t, addr)
	cl.login()
	runSteps(t, cl, []step{
		{"RETR 1", "+OK 16 octets\r\nA: 1\r\n\r\n..\r\n...x\r\nlast\r\n.\r\n"},
		{"RETR 2", "+OK 0 octets\r\n.\r\n"},
		{"RETR 3", "+OK 10 octets\r\nA: 1\r\rb\r\n..\r\n.\r\n"},
		{"TOP 3 0", "+OK\r\nA: 1\r\rb\r\n..\r\n.\r\n"}, // no blank line: all header
		{"TOP 1 0", "+OK\r\nA: 1\r\n\r\n.\r\n"},
		{"TOP 1 1", "+OK\r\nA: 1\r\n\r\n..\r\n.\r\n"},
		{"TOP 2 0", "+OK\r\n.\r\n"},
	})
}

// recordConn records every Write the server makes.
type recordConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestTerminatorWithLastBytes: on the wire, the terminator of a large
// message is in the same write as the end of the body (Thunderbird).
func TestTerminatorWithLastBytes(t *testing.T) {
	be := newFake()
	be.Msgs[0] = strings.Repeat("x", 100000) + "\r\nend\r\n"
	srv := &Server{Backend: be, Logger: discardLogger()}
	c1, c2 := net.Pipe()
	rc := &recordConn{Conn: c1}
	done := make(chan struct{})
	go func() { srv.ServeConn(rc); close(done) }()
	go io.WriteString(c2, "USER alice\r\nPASS secret\r\nRETR 1\r\nQUIT\r\n")
	io.Copy(io.Discard, c2)
	<-done
	c2.Close()
	found := false
	for _, w := range rc.writes {
		if strings.HasSuffix(w, ".\r\n") && strings.Contains(w, "end\r\n.\r\n") {
			found = true
		}
	}
	if !found || len(rc.writes) < 4 {
		t.Errorf("terminator not written with the last body octets: %d writes, last %q", len(rc.writes), rc.writes[len(rc.writes)-1])
	}
}

// TestPanicRecovered: a panicking backend ends only its own session,
// closes the maildrop, never commits, and the server keeps serving.
func TestPanicRecovered(t *testing.T) {
	var panics atomic.Int32
	testHookPanic = func(any) { panics.Add(1) }
	defer func() { testHookPanic = nil }()
	for _, where := range []string{"login", "open", "commit"} {
		t.Run(where, func(t *testing.T) {
			be, addr := startFake(t, nil)
			be.Panic = where
			cl := dial(t, addr)
			cl.cmd("USER alice")
			cl.c.Write([]byte("PASS secret\r\nDELE 1\r\nRETR 2\r\nQUIT\r\n"))
			rest, _ := io.ReadAll(cl.r)
			if strings.Contains(string(rest), "Logging out") {
				t.Errorf("got %q", rest)
			}
			if where == "open" {
				noCommit(t, be)
			} else if where == "commit" {
				waitCalls(t, be, "close")
			}
			be.mu.Lock()
			be.Panic = ""
			be.mu.Unlock()
			cl2 := dial(t, addr)
			cl2.login()
		})
	}
	if panics.Load() != 3 {
		t.Errorf("%d panics seen, want 3", panics.Load())
	}
}

func TestObserver(t *testing.T) {
	obs := &recObserver{}
	be, addr := startFake(t, func(s *Server) { s.Observer = obs })
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"FOO", "-ERR Unknown command.\r\n"}, {"USER alice", "+OK Send PASS.\r\n"}, {"PASS x", "-ERR [AUTH] Authentication failed.\r\n"}})
	cl.cmd("AUTH PLAIN " + b64("\x00alice\x00secret"))
	runSteps(t, cl, []step{{"RETR 1", "+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n"}, {"TOP 2 0", "+OK\r\nSubject: two\r\nX: y\r\n\r\n.\r\n"}, {"DELE 1", "+OK Marked to be deleted.\r\n"}, {"QUIT", "+OK Logging out.\r\n"}})
	cl.expectClosed()
	waitCalls(t, be, "close")
	want := []string{
		"started", "cmd UNKNOWN", "cmd USER", "cmd PASS", "login USER failed", "cmd AUTH", "login PLAIN ok",
		"cmd RETR", "retrieved false 23", "cmd TOP", "retrieved true 22", "cmd DELE", "cmd QUIT", "update 1 ok", "ended quit",
	}
	if !eventually(t, func() bool { return reflect.DeepEqual(obs.get(), want) }) {
		t.Errorf("events\n got %q\nwant %q", obs.get(), want)
	}
}

type recObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recObserver) add(f string, a ...any) {
	o.mu.Lock()
	o.events = append(o.events, fmt.Sprintf(f, a...))
	o.mu.Unlock()
}

func (o *recObserver) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...)
}

func (o *recObserver) SessionStarted()                        { o.add("started") }
func (o *recObserver) SessionEnded(e string, _ time.Duration) { o.add("ended %s", e) }
func (o *recObserver) Login(m, r string)                      { o.add("login %s %s", m, r) }
func (o *recObserver) Command(n string)                       { o.add("cmd %s", n) }
func (o *recObserver) Retrieved(top bool, n int64)            { o.add("retrieved %v %d", top, n) }
func (o *recObserver) Update(deleted int, res string)         { o.add("update %d %s", deleted, res) }
func (o *recObserver) AuthPenalty(time.Duration)              {}
func (o *recObserver) TLSHandshake(string, string, error)     {}

// TestMessageInOneWrite: a message that fits the TRANSACTION writer goes
// out with its +OK line and terminator in one write (one syscall per
// ordinary message), whether it comes from memory or is streamed; a
// larger one takes several writes, the terminator in the last.
func TestMessageInOneWrite(t *testing.T) {
	line := strings.Repeat("y", 74) + "\r\n"
	small := strings.Repeat(line, 60<<10/len(line))
	large := strings.Repeat(line, 300<<10/len(line))
	for _, writerTo := range []bool{false, true} {
		be := newFake()
		be.Msgs = []string{small, large}
		be.WriterTo = writerTo
		srv := &Server{Backend: be, Logger: discardLogger()}
		c1, c2 := net.Pipe()
		rc := &recordConn{Conn: c1}
		done := make(chan struct{})
		go func() { srv.ServeConn(rc); close(done) }()
		r := bufio.NewReader(c2)
		send := func(cmd string) string {
			io.WriteString(c2, cmd+"\r\n")
			reply, err := readReply(r, cmd, false)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return reply
		}
		mustLine(t, r)
		send("USER alice")
		send("PASS secret")
		rc.mu.Lock()
		before := len(rc.writes)
		rc.mu.Unlock()
		if got := send("RETR 1"); len(got) < len(small) {
			t.Fatalf("RETR 1: %d octets", len(got))
		}
		rc.mu.Lock()
		retr1 := rc.writes[before:]
		before = len(rc.writes)
		rc.mu.Unlock()
		want := fmt.Sprintf("+OK %d octets\r\n", len(small)) + small + ".\r\n"
		if len(retr1) != 1 || retr1[0] != want {
			t.Errorf("writerTo=%v: RETR 1 (%d octets) in %d writes, want 1 holding the whole reply", writerTo, len(small), len(retr1))
		}
		send("RETR 2")
		rc.mu.Lock()
		retr2 := rc.writes[before:]
		rc.mu.Unlock()
		if len(retr2) < 2 || !strings.HasSuffix(retr2[len(retr2)-1], line+".\r\n") || strings.Join(retr2, "") != fmt.Sprintf("+OK %d octets\r\n", len(large))+large+".\r\n" {
			t.Errorf("writerTo=%v: RETR 2 (%d octets) in %d writes; the terminator must come with the last body octets", writerTo, len(large), len(retr2))
		}
		io.WriteString(c2, "QUIT\r\n")
		io.Copy(io.Discard, r)
		<-done
		c2.Close()
	}
}

func mustLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return l
}
