package pop3front

import (
	"log/slog"
	"strings"
	"testing"
)

// TestWireTrace: traced sessions log their protocol lines with every
// credential redacted and no message content; other users' sessions are
// not traced.
func TestWireTrace(t *testing.T) {
	const canary = "Canary-Wire-9c1e"
	trace := &syncBuffer{}
	be, addr := startFake(t, func(s *Server) {
		s.Trace = &WireTrace{User: "Alice", Logger: slog.New(slog.NewTextHandler(trace, nil))}
	})
	be.Pass = canary

	pipelined(t, addr, "CAPA\r\nUSER alice\r\nPASS "+canary+"\r\nRETR 2\r\nQUIT\r\n", 0)
	pipelined(t, addr, "AUTH PLAIN "+b64("\x00alice\x00"+canary)+"\r\nSTAT\r\nQUIT\r\n", 0)
	pipelined(t, addr, "AUTH LOGIN\r\n"+b64("alice")+"\r\n"+b64(canary)+"\r\nQUIT\r\n", 0)
	pipelined(t, addr, "USER bob\r\nPASS bobs-secret\r\nQUIT\r\n", 0)
	eventually(t, func() bool { return strings.Count(trace.String(), `line=QUIT`) == 3 })
	out := trace.String()

	for _, want := range []string{
		`dir=C line="USER alice"`, `dir=C line="PASS <redacted>"`, `dir=S line="+OK 44 octets"`,
		`line="(44 octets of message 2, then the terminator)"`,
		`dir=C line="AUTH PLAIN <redacted>"`, `dir=C line="AUTH LOGIN"`,
		`dir=C line=STAT`, `dir=C line=QUIT`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{canary, b64(canary), "line 3", "bob"} {
		if strings.Contains(out, secret) {
			t.Errorf("trace contains %q:\n%s", secret, out)
		}
	}
	if strings.Contains(out, "line=CAPA") {
		t.Error("lines before the user was named were traced for a one-user trace")
	}
}

func TestRedactCommand(t *testing.T) {
	for in, want := range map[string]string{
		"PASS secret word":  "PASS <redacted>",
		"pass x":            "pass <redacted>",
		"AUTH PLAIN AGFAYg": "AUTH PLAIN <redacted>",
		"AUTH LOGIN":        "AUTH LOGIN",
		"USER alice":        "USER alice",
		"RETR 1":            "RETR 1",
	} {
		if got := redactCommand([]byte(in)); got != want {
			t.Errorf("redactCommand(%q) = %q, want %q", in, got, want)
		}
	}
}
