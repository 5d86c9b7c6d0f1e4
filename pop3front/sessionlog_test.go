package pop3front

import (
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// TestSessionSummary: one line per session with what an admin needs to
// see, in the spirit of Dovecot's pop3_logout_format.
func TestSessionSummary(t *testing.T) {
	logs := &syncBuffer{}
	be, addr := startFake(t, func(s *Server) { s.Logger = slog.New(slog.NewTextHandler(logs, nil)) })

	pipelined(t, addr, "USER alice\r\nPASS secret\r\nRETR 2\r\nTOP 1 0\r\nDELE 3\r\nQUIT\r\n", 0)
	eventually(t, func() bool { return strings.Contains(logs.String(), "pop3 session ended") })
	line := logs.String()
	for _, want := range []string{"user=alice", "listed=3", "retrieved=1", "top=1", "deleted=1",
		"tls=none", "update=applied", "end=quit"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary lacks %s:\n%s", want, line)
		}
	}
	hash := regexp.MustCompile(`uidl_hash=([0-9a-f]{12})\b`).FindStringSubmatch(line)
	if hash == nil {
		t.Fatalf("no uidl_hash in %s", line)
	}

	// Same maildrop, same UIDLs: same hash. A failed update says so.
	be.CommitErr = errors.New("boom")
	pipelined(t, addr, "USER alice\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n", 0)
	eventually(t, func() bool { return strings.Count(logs.String(), "pop3 session ended") == 2 })
	second := logs.String()[len(line):]
	if !strings.Contains(second, "uidl_hash="+hash[1]) || !strings.Contains(second, "update=failed") {
		t.Errorf("second summary: %s", second)
	}

	// A session that never reached QUIT never updated.
	c := dial(t, addr)
	c.login()
	c.c.Close()
	eventually(t, func() bool { return strings.Count(logs.String(), "pop3 session ended") == 3 })
	if third := logs.String(); !strings.Contains(third[strings.LastIndex(third, "pop3 session ended"):], "update=not_reached") {
		t.Errorf("dropped session summary: %s", third)
	}
}
