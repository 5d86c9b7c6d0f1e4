package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDebugWire: -debug-wire traces both sides of one user's sessions,
// credentials redacted.
func TestDebugWire(t *testing.T) {
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Demo.Password = "Canary-Demo-71f0"
	cfg.DebugWire = "demo"
	logs := &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	c.Cmd("PASS " + cfg.Demo.Password)
	c.Cmd("RETR 1")
	c.Multi()
	c.Cmd("QUIT")
	waitLog(t, logs, "pop3 session ended")
	time.Sleep(50 * time.Millisecond) // the QUIT update's LOGOUT is traced after the reply
	out := logs.String()
	for _, want := range []string{`msg="pop3 wire"`, `line="PASS <redacted>"`, `msg="imap wire"`, "LOGIN <redacted>", "BODY.PEEK[]"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, cfg.Demo.Password) || strings.Contains(out, "Alice Example") {
		t.Errorf("trace leaks the password or message content:\n%s", out)
	}
}

// TestDebugWireEverySession: under -debug-wire '*' the trace starts at
// the greeting, holds the commands before the user is known, and never
// the password in any form, on either side.
func TestDebugWireEverySession(t *testing.T) {
	const canary = "Canary-Star-4e21"
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Demo.Password = canary
	cfg.Limits.AuthPenaltyInitial = Duration{time.Millisecond}
	cfg.Limits.AuthPenaltyMax = Duration{time.Millisecond}
	cfg.Limits.MaxAuthAttempts = 10
	cfg.DebugWire = "*"
	logs := &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()

	c := dialPOP3(t, gw.POP3Addr())
	c.Capa()
	c.Cmd("USER demo")
	c.Cmd("PASS\t" + canary)
	c.Cmd("auth PLAIN\t" + b64("\x00demo\x00"+canary))
	c.Cmd("AUTH plain")
	c.Cmd(b64("\x00demo\x00" + canary))
	c.Cmd("QUIT")
	waitLog(t, logs, "pop3 session ended")
	time.Sleep(50 * time.Millisecond) // the LOGOUT is traced after the reply
	out := logs.String()
	for _, want := range []string{`dir=S line="+OK POP3 gateway ready.`, `dir=C line=CAPA`, `dir=C line="USER demo"`,
		`dir=C line="PASS <redacted>"`, `dir=C line="auth PLAIN <redacted>"`, `dir=C line="<redacted SASL response>"`,
		`msg="imap wire"`, `LOGIN <redacted>`} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{canary, b64(canary), strings.TrimRight(b64(canary), "="),
		b64("\x00demo\x00" + canary)[8:], b64("demo\x00demo\x00" + canary)[12:]} {
		if strings.Contains(out, secret) {
			t.Errorf("trace contains %q:\n%s", secret, out)
		}
	}
}
