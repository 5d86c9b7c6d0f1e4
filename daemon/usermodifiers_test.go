package daemon

import (
	"strings"
	"testing"
)

func TestUserModifiers(t *testing.T) {
	gw, _, srv, wire, logs := startMemGateway(t, 4, func(c *Config) {
		c.POP3.UserModifiers = []UserModifier{"keep", "recent"}
		c.POP3.RecentMaxMessages = 2
		c.POP3.RecentMaxAge = AgeDuration{}
	})
	// keep: DELE changes nothing; the upstream sees "alice" only.
	if st := session(t, gw, "keep:alice", "1", "2"); !strings.HasPrefix(st, "+OK 4 ") {
		t.Errorf("keep: STAT %q, want prefix %q", st, "+OK 4 ")
	}
	if n := deletedCount(t, srv, "alice"); n != 0 {
		t.Errorf("keep: %d messages deleted upstream, want %d", n, 0)
	}
	// recent: the window; chained with keep.
	if st := session(t, gw, "recent:keep:alice", "1"); !strings.HasPrefix(st, "+OK 2 ") {
		t.Errorf("recent: STAT %q, want 2 messages", st)
	}
	if n := deletedCount(t, srv, "alice"); n != 0 {
		t.Errorf("recent:keep: %d messages deleted upstream, want %d", n, 0)
	}
	// Plain: the global policy (flag).
	session(t, gw, "alice", "1")
	if n := deletedCount(t, srv, "alice"); n != 1 {
		t.Errorf("plain: %d deleted, want 1", n)
	}
	w := wire.String()
	if strings.Contains(w, "keep:") || strings.Contains(w, "recent:") {
		t.Errorf("a modifier reached the upstream:\n%s", w)
	}
	waitLog(t, logs, "modifiers=recent,keep")
	// An unknown modifier is part of the user name: no such user.
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER vacation:alice")
	if r := c.Cmd("PASS pw"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("unknown modifier: %q, want prefix %q", r, "-ERR [AUTH]")
	}
	if !strings.Contains(wire.String(), `"vacation:alice"`) && !strings.Contains(wire.String(), "vacation:alice") {
		t.Errorf("unknown modifier not sent as part of the user name")
	}
}

func TestModifiersOffByDefault(t *testing.T) {
	gw, _, _, wire, _ := startMemGateway(t, 1, nil)
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER keep:alice")
	if r := c.Cmd("PASS pw"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("modifier honoured while off: %q, want prefix %q", r, "-ERR [AUTH]")
	}
	if !strings.Contains(wire.String(), "keep:alice") {
		t.Error("the whole name should reach the upstream when modifiers are off")
	}
}
