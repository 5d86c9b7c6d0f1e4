package imapback

import (
	"context"
	"encoding/base64"
	"strconv"
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

// TestTraceConnRedactsEveryForm: LOGIN and AUTHENTICATE are redacted in
// any letter case and after any separator, with their SASL continuations
// shown as redacted lines; the password never appears, plain or base64.
func TestTraceConnRedactsEveryForm(t *testing.T) {
	const canary = "Canary-Imap-Forms-71aa"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00alice\x00" + canary)
	var mu sync.Mutex
	var out strings.Builder
	tc := newTraceConn(nil, newBufLogger(&out, &mu))
	c := func(s string) { tc.up.feed([]byte(s)) }
	s := func(s string) { tc.down.feed([]byte(s)) }

	c("a1 login alice " + canary + "\r\n")
	s("a1 OK\r\n")
	c("a2\tLOGIN\talice\t\"" + canary + "\"\r\n")
	s("a2 NO\r\n")
	c("A3 LoGiN alice {" + strconv.Itoa(len(canary)) + "}\r\n")
	s("+ go ahead\r\n")
	c(canary + "\r\n")
	s("A3 NO\r\n")
	c("A4 authenticate PLAIN " + plain + "\r\n")
	s("A4 NO\r\n")
	c("A5 AUTHENTICATE\tplain\r\n")
	s("+ \r\n")
	c(plain + "\r\n")
	s("A5 NO\r\n")
	c("A6 Authenticate LOGIN\r\n")
	s("+ VXNlcm5hbWU6\r\n")
	c(b64("alice") + "\r\n")
	s("+ UGFzc3dvcmQ6\r\n")
	c(b64(canary) + "\r\n")
	s("A6 OK\r\n")
	c("A7 NOOP\r\n")

	mu.Lock()
	log := out.String()
	mu.Unlock()
	for _, secret := range []string{canary, plain, strings.TrimRight(plain, "="), plain[8:], b64(canary), strings.TrimRight(b64(canary), "=")} {
		if strings.Contains(log, secret) {
			t.Errorf("trace contains %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{
		`dir=C line="a1 login <redacted>"`, `dir=C line="a2 LOGIN <redacted>"`, `dir=C line="A3 LoGiN <redacted>"`,
		`dir=C line="A4 authenticate PLAIN <redacted>"`, `dir=C line="A5 AUTHENTICATE plain"`,
		`dir=C line="A6 Authenticate LOGIN"`, `dir=S line="+ UGFzc3dvcmQ6"`, `dir=C line="A7 NOOP"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("trace lacks %s:\n%s", want, log)
		}
	}
	if n := strings.Count(log, `dir=C line="<redacted SASL response>"`); n != 3 {
		t.Errorf("%d redacted SASL responses, want 3:\n%s", n, log)
	}
}
