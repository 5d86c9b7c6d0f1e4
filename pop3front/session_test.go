package pop3front

import (
	"reflect"
	"strings"
	"testing"
)

// pipelineScript exercises every TRANSACTION command, then sends commands
// after QUIT that must never run.
const pipelineScript = "CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 3\r\n" +
	"RETR 1\r\nTOP 2 0\r\nTOP 2 1\r\nDELE 1\r\nLIST\r\nRSET\r\nDELE 2\r\nRETR 2\r\nNOOP\r\nCAPA\r\nQUIT\r\n" +
	"DELE 3\r\nRETR 3\r\nQUIT\r\n"

const pipelineWant = "+OK POP3 gateway ready.\r\n" +
	"+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN LOGIN\r\n.\r\n" +
	"+OK Send PASS.\r\n" +
	"+OK Logged in.\r\n" +
	"+OK 3 88\r\n" +
	"+OK 3 messages:\r\n1 23\r\n2 44\r\n3 21\r\n.\r\n" +
	"+OK\r\n1 uid1\r\n2 uid2\r\n3 uid3\r\n.\r\n" +
	"+OK 2 44\r\n" +
	"+OK 3 uid3\r\n" +
	"+OK 23 octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n" +
	"+OK\r\nSubject: two\r\nX: y\r\n\r\n.\r\n" +
	"+OK\r\nSubject: two\r\nX: y\r\n\r\nline 1\r\n.\r\n" +
	"+OK Marked to be deleted.\r\n" +
	"+OK 2 messages:\r\n2 44\r\n3 21\r\n.\r\n" +
	"+OK\r\n" +
	"+OK Marked to be deleted.\r\n" +
	"-ERR Message 2 already deleted.\r\n" +
	"+OK\r\n" +
	"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n" +
	"+OK Logging out.\r\n"

func TestPipelining(t *testing.T) {
	modes := []struct {
		name string
		run  func(t testing.TB, addr string) string
	}{
		{"one-at-a-time", func(t testing.TB, addr string) string { return oneAtATime(t, addr, pipelineScript) }},
		{"one-write", func(t testing.TB, addr string) string { return pipelined(t, addr, pipelineScript, 0) }},
		{"1-byte-writes", func(t testing.TB, addr string) string { return pipelined(t, addr, pipelineScript, 1) }},
		{"7-byte-writes", func(t testing.TB, addr string) string { return pipelined(t, addr, pipelineScript, 7) }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			be, addr := startFake(t, nil)
			got := m.run(t, addr)
			if got != pipelineWant {
				t.Errorf("transcript differs\n got: %q\nwant: %q", got, pipelineWant)
			}
			waitCalls(t, be, "close")
			want := []Outcome{{Deleted: []int{1}}} // RSET undid RETR 1
			if c := be.Commits(); !reflect.DeepEqual(c, want) {
				t.Errorf("commits %+v, want %+v", c, want)
			}
			calls := be.Calls()
			if last := calls[len(calls)-2]; !strings.HasPrefix(last, "commit") {
				t.Errorf("calls after commit: %q", calls)
			}
			for _, c := range calls {
				if strings.HasPrefix(c, "open 2") {
					t.Errorf("command after QUIT ran: %q", calls)
				}
			}
		})
	}
}
