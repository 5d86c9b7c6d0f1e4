package pop3front

import (
	"fmt"
	"strings"
	"testing"
)

// step is one command and its exact reply.
type step struct{ cmd, reply string }

func runSteps(t *testing.T, cl *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		if got := cl.cmd(s.cmd); got != s.reply {
			t.Errorf("%q: got %q, want %q", s.cmd, got, s.reply)
		}
	}
}

// lenient raises the bad-command limits so one session can try many.
func lenient(srv *Server) {
	srv.Limits.MaxBadCommands = 1000
	srv.Limits.MaxBadCommandsAuthed = 1000
}

func TestAuthorizationState(t *testing.T) {
	be, addr := startFake(t, lenient)
	cl := dial(t, addr)
	var steps []step
	for _, c := range []string{"STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP", "stat"} {
		steps = append(steps, step{c, "-ERR Not logged in.\r\n"})
	}
	steps = append(steps,
		step{"PASS secret", "-ERR USER first.\r\n"},
		step{"USER", "-ERR Missing user name.\r\n"},
		step{"XYZZY", "-ERR Unknown command.\r\n"},
		step{"APOP alice 0123456789abcdef0123456789abcdef", "-ERR Unknown command.\r\n"},
		step{"STLS", "-ERR Unknown command.\r\n"},
		step{"", "-ERR Unknown command.\r\n"},
		step{"RETRIEVE 1", "-ERR Unknown command.\r\n"},
		step{"CAPA x", "-ERR Too many arguments.\r\n"},
		step{"USER alice", "+OK Send PASS.\r\n"},
		step{"PASS wrong", "-ERR [AUTH] Authentication failed.\r\n"},
		step{"PASS secret", "-ERR USER first.\r\n"}, // a failed PASS forgets USER
		step{"USER bob", "+OK Send PASS.\r\n"},
		step{"PASS secret", "-ERR [AUTH] Authentication failed.\r\n"},
		step{"user alice", "+OK Send PASS.\r\n"},
		step{"pAsS secret", "+OK Logged in.\r\n"},
	)
	runSteps(t, cl, steps)
	for _, c := range be.Calls() {
		if strings.HasPrefix(c, "open") {
			t.Errorf("store touched before login: %q", c)
		}
	}
	// Unknown user and wrong password reached the backend and got the
	// same text; the store was asked three times.
	if n := strings.Count(strings.Join(be.Calls(), "\n"), "login"); n != 3 {
		t.Errorf("%d logins, want 3: %q", n, be.Calls())
	}
}

func TestTransactionState(t *testing.T) {
	_, addr := startFake(t, lenient)
	cl := dial(t, addr)
	cl.login()
	runSteps(t, cl, []step{
		{"USER alice", "-ERR Already logged in.\r\n"},
		{"PASS secret", "-ERR Already logged in.\r\n"},
		{"AUTH PLAIN", "-ERR Already logged in.\r\n"},
		{"AUTH", "-ERR Already logged in.\r\n"},
		{"FOO", "-ERR Unknown command.\r\n"},
		{"STAT x", "-ERR Too many arguments.\r\n"},
		{"RSET 1", "-ERR Too many arguments.\r\n"},
		{"NOOP 1", "-ERR Too many arguments.\r\n"},
		{"QUIT now", "-ERR Too many arguments.\r\n"},
		{"STAT", "+OK 3 88\r\n"},
		{"STAT ", "+OK 3 88\r\n"}, // trailing space tolerated
		{"NOOP", "+OK\r\n"},
		{"DELE 3", "+OK Marked to be deleted.\r\n"},
		{"STAT", "+OK 2 67\r\n"},
		{"UIDL", "+OK\r\n1 uid1\r\n2 uid2\r\n.\r\n"},
		{"UIDL 3", "-ERR Message 3 already deleted.\r\n"},
		{"LIST 3", "-ERR Message 3 already deleted.\r\n"},
		{"RETR 3", "-ERR Message 3 already deleted.\r\n"},
		{"TOP 3 1", "-ERR Message 3 already deleted.\r\n"},
		{"DELE 3", "-ERR Message 3 already deleted.\r\n"},
		{"RSET", "+OK\r\n"},
		{"LIST", "+OK 3 messages:\r\n1 23\r\n2 44\r\n3 21\r\n.\r\n"},
		{"RETR 3", "+OK 21 octets\r\nSubject: three\r\n\r\n..\r\n.\r\n"},
	})
}

func TestMessageNumbers(t *testing.T) {
	_, addr := startFake(t, lenient)
	cl := dial(t, addr)
	cl.login()
	var steps []step
	for _, c := range []string{"LIST", "UIDL", "RETR", "DELE", "TOP"} {
		tail := ""
		if c == "TOP" {
			tail = " 0"
		}
		steps = append(steps,
			step{c + " 0" + tail, "-ERR No such message.\r\n"},
			step{c + " 4" + tail, "-ERR No such message.\r\n"},
			step{c + " 4294967296" + tail, "-ERR No such message.\r\n"},
			step{c + " 99999999999999999999999999" + tail, "-ERR No such message.\r\n"},
			step{c + " -1" + tail, "-ERR Invalid message number.\r\n"},
			step{c + " +1" + tail, "-ERR Invalid message number.\r\n"},
			step{c + " 1x" + tail, "-ERR Invalid message number.\r\n"},
			step{c + " x" + tail, "-ERR Invalid message number.\r\n"},
			step{c + " 1 2 3", "-ERR Too many arguments.\r\n"},
		)
		if c != "TOP" {
			steps = append(steps, step{c + " 1 2", "-ERR Too many arguments.\r\n"})
		}
	}
	steps = append(steps,
		step{"RETR", "-ERR Missing message number.\r\n"},
		step{"DELE", "-ERR Missing message number.\r\n"},
		step{"TOP", "-ERR Missing message number.\r\n"},
		step{"LIST 01", "+OK 1 23\r\n"}, // leading zeros accepted, as Dovecot does
		step{"UIDL 002", "+OK 2 uid2\r\n"},
		step{"LIST  2", "+OK 2 44\r\n"}, // runs of spaces tolerated
		step{"list 3", "+OK 3 21\r\n"},
	)
	runSteps(t, cl, steps)
}

func TestTopArguments(t *testing.T) {
	be, addr := startFake(t, lenient)
	cl := dial(t, addr)
	cl.login()
	head2 := "Subject: two\r\nX: y\r\n\r\n"
	runSteps(t, cl, []step{
		{"TOP 2", "-ERR Missing line count.\r\n"},
		{"TOP 2 -1", "-ERR Invalid line count.\r\n"},
		{"TOP 2 x", "-ERR Invalid line count.\r\n"},
		{"TOP 2 1x", "-ERR Invalid line count.\r\n"},
		{"TOP 2 1 1", "-ERR Too many arguments.\r\n"},
		{"TOP 2 0", "+OK\r\n" + head2 + ".\r\n"},
		{"TOP 2 2", "+OK\r\n" + head2 + "line 1\r\n..dot\r\n.\r\n"},
		{"TOP 2 3", "+OK\r\n" + head2 + "line 1\r\n..dot\r\nline 3\r\n.\r\n"},
		{"TOP 2 4294967296", "+OK\r\n" + head2 + "line 1\r\n..dot\r\nline 3\r\n.\r\n"},
		{"TOP 2 99999999999999999999999", "+OK\r\n" + head2 + "line 1\r\n..dot\r\nline 3\r\n.\r\n"},
		{"TOP 02 00", "+OK\r\n" + head2 + ".\r\n"},
	})
	calls := strings.Join(be.Calls(), "\n")
	for _, want := range []string{"open 1 top=true/0", "open 1 top=true/2", fmt.Sprintf("open 1 top=true/%d", maxTopLines)} {
		if !strings.Contains(calls, want) {
			t.Errorf("no %q in %s", want, calls)
		}
	}
	// TOP stops reading and closes its stream each time.
	if o, c := strings.Count(calls, "open "), strings.Count(calls, "stream close"); o != c {
		t.Errorf("%d opens, %d stream closes", o, c)
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		line, name, args string
	}{
		{"STAT", "STAT", ""},
		{"stat", "STAT", ""},
		{"TOP 1 2", "TOP", "1 2"},
		{"top 1 2", "TOP", "1 2"},
		{"PASS  two  spaces ", "PASS", " two  spaces "},
		{"STATS", "", ""},
		{"", "", ""},
		{" STAT", "", "STAT"},
		{"ST", "", ""},
	}
	for _, c := range cases {
		cmd, args := parseCommand([]byte(c.line))
		name := ""
		if cmd != nil {
			name = cmd.name
		}
		if name != c.name || string(args) != c.args {
			t.Errorf("%q: got %q %q, want %q %q", c.line, name, args, c.name, c.args)
		}
	}
}

func TestParseNumber(t *testing.T) {
	cases := []struct {
		in string
		v  uint64
		ok bool
	}{
		{"1", 1, true}, {"01", 1, true}, {"0", 0, true}, {"4294967296", 4294967296, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"18446744073709551616", 18446744073709551615, true}, // saturates
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1x", 0, false}, {"1 ", 0, false}, {"١", 0, false},
	}
	for _, c := range cases {
		v, ok := parseNumber([]byte(c.in))
		if v != c.v || ok != c.ok {
			t.Errorf("%q: got %d %v, want %d %v", c.in, v, ok, c.v, c.ok)
		}
	}
}

func TestParseCommandAllocs(t *testing.T) {
	line := []byte("retr 12")
	if n := testing.AllocsPerRun(100, func() {
		cmd, args := parseCommand(line)
		a, _ := splitArgs(args)
		parseNumber(a[0])
		_ = cmd
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

func BenchmarkParseCommand(b *testing.B) {
	lines := [][]byte{[]byte("RETR 12"), []byte("top 3 10"), []byte("LIST"), []byte("XYZZY 1")}
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			_, args := parseCommand(l)
			a, n := splitArgs(args)
			if n > 0 {
				parseNumber(a[0])
			}
		}
	}
}
