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
		"PASS\tsecret":      "PASS <redacted>",
		"PASSsecret":        "PASS <redacted>",
		"PaSs":              "PaSs",
		"AUTH\tPLAIN\tAGFA": "AUTH PLAIN <redacted>",
		"AUTH PLAIN=":       "AUTH PLAIN <redacted>",
		"AUTH ,secret":      "AUTH <redacted>",
		"AUTHsecret":        "AUTH <redacted>",
		"auth login ":       "auth login",
		"APOP alice digest": "APOP <redacted>",
		"c2VjcmV0":          "<redacted> (unknown command, 8 octets)",
		"XTND secret":       "<redacted> (unknown command, 11 octets)",
		"USER alice":        "USER alice",
		"RETR 1":            "RETR 1",
	} {
		if got := redactCommand([]byte(in)); got != want {
			t.Errorf("redactCommand(%q) = %q, want %q", in, got, want)
		}
	}
}

// canaryForms are the forms a password can take on the POP3 wire: as is,
// and base64 at each of the three alignments, padded or not (inside a
// PLAIN message it sits after "authzid NUL authcid NUL").
func canaryForms(canary string) []string {
	forms := []string{canary}
	for _, prefix := range []string{"", "\x00alice\x00", "\x00alic\x00", "\x00ali\x00", "x"} {
		for _, s := range []string{b64(prefix + canary), strings.TrimRight(b64(prefix+canary), "=")} {
			// Only the part that encodes the canary: from the first full
			// group after the prefix, so the check does not depend on it.
			skip := (len(prefix) + 2) / 3 * 4
			if skip < len(s) {
				forms = append(forms, s[skip:])
			}
		}
	}
	return forms
}

// TestWireTraceRedactsEveryForm: whatever separator, letter case or SASL
// path carries a password, the trace shows "<redacted>" and never the
// password, plain or base64; SASL steps appear as redacted lines, also
// in a one-user trace that starts once the user is named.
func TestWireTraceRedactsEveryForm(t *testing.T) {
	const canary = "Canary-Every-Form-0b5d"
	scripts := []string{
		"USER alice\r\nPASS\t" + canary + "\r\nQUIT\r\n",
		"USER alice\r\npAsS " + canary + "\r\nQUIT\r\n",
		"USER alice\r\nPASS" + canary + "\r\nPASS \t " + canary + "\r\nQUIT\r\n",
		"AUTH PLAIN\t" + b64("\x00alice\x00"+canary) + "\r\nQUIT\r\n",
		"auth plain " + b64("\x00alice\x00"+canary) + "\r\nQUIT\r\n",
		"AuTh PlAiN\t\t" + strings.TrimRight(b64("\x00alice\x00"+canary), "=") + "\r\nQUIT\r\n",
		"AuTh PlAiN\r\n" + b64("\x00alice\x00"+canary) + "\r\nQUIT\r\n",
		"AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(canary) + "\r\nQUIT\r\n",
		"auth login " + b64("alice") + "\r\n" + b64(canary) + "\r\nQUIT\r\n",
		"APOP alice " + canary + "\r\nQUIT\r\n",
		// A SASL response the server reads as a command (unknown
		// mechanism, so no exchange started): still never traced.
		"AUTH X-UNKNOWN\r\n" + b64("\x00alice\x00"+canary) + "\r\n" + b64(canary) + "\r\nQUIT\r\n",
	}
	for _, user := range []string{"alice", "*"} {
		t.Run(user, func(t *testing.T) {
			trace := &syncBuffer{}
			be, addr := startFake(t, func(s *Server) {
				s.Trace = &WireTrace{User: user, Logger: slog.New(slog.NewTextHandler(trace, nil))}
				s.Limits.MaxBadCommands = 10
			})
			be.Pass = canary
			for _, sc := range scripts {
				pipelined(t, addr, sc, 0)
			}
			out := trace.String()
			for _, secret := range canaryForms(canary) {
				if strings.Contains(out, secret) {
					t.Errorf("trace contains %q:\n%s", secret, out)
				}
			}
			for _, want := range []string{
				`dir=C line="PASS <redacted>"`, `dir=C line="pAsS <redacted>"`,
				`dir=C line="auth plain <redacted>"`, `dir=C line="auth login <redacted>"`,
				// the continuation exchanges, shown redacted
				`dir=C line="AuTh PlAiN"`, `dir=S line="+ "`, `dir=C line="AUTH LOGIN"`,
				`dir=S line="+ VXNlcm5hbWU6"`, `dir=S line="+ UGFzc3dvcmQ6"`, `dir=C line="<redacted SASL response>"`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("trace lacks %s:\n%s", want, out)
				}
			}
			if user == "*" { // also what never names a user
				for _, want := range []string{`dir=C line="AUTH PLAIN <redacted>"`, `dir=C line="AuTh PlAiN <redacted>"`, `dir=S line="+OK POP3 gateway ready.`, `dir=C line="APOP <redacted>"`,
					`dir=C line="AUTH X-UNKNOWN"`} {
					if !strings.Contains(out, want) {
						t.Errorf("trace lacks %s:\n%s", want, out)
					}
				}
			}
		})
	}
}
