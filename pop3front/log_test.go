package pop3front

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestLogCanary: no password, SASL payload or its base64 ever reaches
// the log, whatever path a login takes (docs/design.md, invariant 7).
func TestLogCanary(t *testing.T) {
	const canary = "Canary-Pa55word-7f3a"
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	be := newFake()
	be.Pass = canary
	obs := &recObserver{}
	addr := testServer(t, &Server{Backend: be, Logger: logger, Observer: obs, Limits: Limits{MaxBadCommands: 100}})

	plainOK := b64("\x00alice\x00" + canary)
	plainBad := b64("\x00alice\x00x" + canary)
	scripts := []string{
		"USER alice\r\nPASS " + canary + "\r\nQUIT\r\n",
		"USER alice\r\nPASS x" + canary + "\r\nQUIT\r\n",
		"AUTH PLAIN " + plainOK + "\r\nRETR 1\r\nQUIT\r\n",
		"AUTH PLAIN " + plainBad + "\r\nQUIT\r\n",
		"AUTH PLAIN\r\n" + plainBad + "\r\nQUIT\r\n",
		"AUTH PLAIN " + b64("\x00alice\x00"+canary+"\x00") + "\r\nQUIT\r\n",
		"AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(canary) + "\r\nDELE 1\r\nQUIT\r\n",
		"AUTH LOGIN " + b64("alice") + "\r\n" + b64("y"+canary) + "\r\nQUIT\r\n",
		"AUTH PLAIN !" + canary + "\r\nQUIT\r\n",
		"PASS " + canary + "\r\nQUIT\r\n",
		"USER alice\r\nPASS " + canary + "\x00\r\nQUIT\r\n",
	}
	for _, s := range scripts {
		pipelined(t, addr, s, 0)
	}
	// A backend error quoting the password is redacted.
	be.LoginErr = errors.New("upstream said: LOGIN alice " + canary)
	pipelined(t, addr, "USER alice\r\nPASS "+canary+"\r\nQUIT\r\n", 0)
	eventually(t, func() bool { return strings.Count(logs.String(), "pop3 session ended") == len(scripts)+1 })
	out := logs.String()
	for _, secret := range []string{canary, b64(canary), plainOK, plainBad, strings.TrimRight(plainOK, "="),
		base64.RawStdEncoding.EncodeToString([]byte(canary))} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "pop3 session ended") || !strings.Contains(out, "pop3 login failed") || !strings.Contains(out, "<redacted>") {
		t.Errorf("expected log lines missing:\n%s", out)
	}
	if n := strings.Count(out, "pop3 session ended"); n < len(scripts) {
		t.Errorf("%d session lines for %d sessions", n, len(scripts)+1)
	}
	for _, e := range obs.get() {
		if strings.Contains(e, canary) {
			t.Errorf("observer saw %q", e)
		}
	}
}

// TestSessionLogLine: one line per session with the fields operators
// need.
func TestSessionLogLine(t *testing.T) {
	logs := &syncBuffer{}
	be := newFake()
	addr := testServer(t, &Server{Backend: be, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	pipelined(t, addr, "USER alice\r\nPASS secret\r\nRETR 1\r\nRETR 2\r\nTOP 3 0\r\nDELE 1\r\nQUIT\r\n", 0)
	eventually(t, func() bool { return strings.Contains(logs.String(), "session ended") })
	out := logs.String()
	for _, want := range []string{"user=alice", "client=127.0.0.1:", "listed=3", "retrieved=2", "retrieved_bytes=67", "top=1", "deleted=1", "end=quit", "duration="} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in %s", want, out)
		}
	}
}
