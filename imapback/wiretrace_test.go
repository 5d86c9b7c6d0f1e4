package imapback

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

// TestWireTraceRedacts: a traced session's IMAP lines are logged with the
// password redacted (quoted or as a literal) and no message content.
func TestWireTraceRedacts(t *testing.T) {
	for name, pass := range map[string]string{
		"quoted":  "Canary-Imap-5d2b",
		"literal": "Canary-Imap-\"5d2b\"\\ünï", // quotes, backslash, UTF-8: sent as a literal
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
			e.srv.AddUser("carol", pass)
			e.srv.Append("carol", "INBOX", e.msgs[0])
			var mu sync.Mutex
			var out strings.Builder
			trace := &pop3front.WireTrace{User: "carol", Logger: newBufLogger(&out, &mu)}
			b := e.backend(Policy{Delete: DeleteFlag, Seen: SeenQuit}, func(c *Config) { c.Trace = trace })

			md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "carol", Password: pass, Mechanism: "USER"})
			if err != nil {
				t.Fatal(err)
			}
			body, err := retr(t, md, 0)
			if err != nil || string(body) != string(e.msgs[0]) {
				t.Fatalf("RETR: %v %q", err, body)
			}
			md.Close()
			// Another user's session is not traced.
			e.login(e.backend(Policy{Delete: DeleteFlag, Seen: SeenQuit}, func(c *Config) { c.Trace = trace })).Close()

			mu.Lock()
			log := out.String()
			mu.Unlock()
			for _, want := range []string{"LOGIN <redacted>", "EXAMINE", "UID FETCH", "-octet literal not traced", `dir=S`} {
				if !strings.Contains(log, want) {
					t.Errorf("trace lacks %q:\n%s", want, log)
				}
			}
			for _, secret := range []string{"Canary", "5d2b", "Body of message", "sender1@", testUser} {
				if strings.Contains(log, secret) {
					t.Errorf("trace contains %q:\n%s", secret, log)
				}
			}
		})
	}
}

func TestLineSplitterSkipsLiterals(t *testing.T) {
	var got []string
	var l lineSplitter
	l.emit = func(line []byte, cont bool, lit int64) {
		got = append(got, string(line))
	}
	in := "* 1 FETCH (UID 7 BODY[] {12}\r\nhello\r\nbye\r\n)\r\nT1 OK done\r\n"
	for i := range len(in) { // one octet at a time: state survives splits
		l.feed([]byte{in[i]})
	}
	want := []string{"* 1 FETCH (UID 7 BODY[] {12} (12-octet literal not traced)", ")", "T1 OK done"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
}
