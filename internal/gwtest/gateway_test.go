package gwtest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/daemon"
	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/syncbuf"
	"github.com/popbridge/popbridge/pop3front"
)

// TestZeroOptionsKeepDefaults: zero Policy and Limits leave the daemon's
// defaults, as zero values leave imapback's and pop3front's.
func TestZeroOptionsKeepDefaults(t *testing.T) {
	want := daemon.DefaultConfig()
	got := daemon.DefaultConfig()
	setPolicy(&got.Policy, imapback.Policy{})
	setLimits(&got.Limits, pop3front.Limits{})
	if !reflect.DeepEqual(got.Policy, want.Policy) {
		t.Errorf("policy from zero options = %+v, want %+v", got.Policy, want.Policy)
	}
	if !reflect.DeepEqual(got.Limits, want.Limits) {
		t.Errorf("limits from zero options = %+v, want %+v", got.Limits, want.Limits)
	}
}

// wire collects what the upstream reads, a line at a time.
type wire = syncbuf.Buffer

// TestStartIsTheDaemon: the gateway Start runs is the daemon's: its
// greeting and CAPA EXPIRE come from package daemon, and Options reach
// imapback (the delete policy's keyword) and pop3front (limits).
func TestStartIsTheDaemon(t *testing.T) {
	up := &wire{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Wire: up})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddUser("u", "pw"); err != nil {
		t.Fatal(err)
	}
	for _, m := range memupstream.DemoMessages()[:2] {
		if err := srv.Append("u", "INBOX", m); err != nil {
			t.Fatal(err)
		}
	}
	g, err := Start(Options{
		Upstream: srv.Addr(),
		Policy:   imapback.Policy{Delete: imapback.DeleteKeyword, Keyword: "$Gone"},
		Limits:   pop3front.Limits{MaxBadCommandsAuthed: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	p, err := pop3test.Dial(g.Addr(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if want := "+OK POP3 gateway ready."; !strings.HasPrefix(p.Greeting, want) {
		t.Errorf("greeting %q, want it to start with %q", p.Greeting, want)
	}
	if _, err := p.OK("CAPA"); err != nil {
		t.Fatal(err)
	}
	capa, err := p.ReadMulti()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(capa), "EXPIRE NEVER\r\n") {
		t.Errorf("CAPA lacks EXPIRE NEVER:\n%s", capa)
	}
	if err := p.Login("u", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.OK("DELE 1"); err != nil {
		t.Fatal(err)
	}
	if l, err := p.Quit(); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT = %q, %v", l, err)
	}
	if w := up.String(); !strings.Contains(w, "+FLAGS") || !strings.Contains(w, "$Gone") {
		t.Errorf("upstream never got +FLAGS $Gone:\n%s", w)
	}

	// One bad command after login ends the session (max_bad_commands_authed = 1).
	p, err = pop3test.Dial(g.Addr(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Login("u", "pw"); err != nil {
		t.Fatal(err)
	}
	if l, err := p.Cmd("BOGUS"); err != nil || !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("BOGUS = %q, %v", l, err)
	}
	if l, err := p.Line(); err == nil {
		t.Errorf("session goes on after a bad command over the limit: %q", l)
	}
}
