package daemon

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/memupstream"
)

func TestConfigViewsAndOverrides(t *testing.T) {
	cfg, err := parseConfig("x.toml", []byte(`
[pop3]
user_modifiers = ["recent", "keep"]
modifier_separator = "+"
recent_max_age = "2w"

[policy]
delete = "flag"
uidl = "content"
uidl_required = false
hide_retrieved = true
max_messages = 500
window = "oldest"
max_age = "30d"

[[policy.override]]
match = "scanner@example.org"
delete = "keep"
uidl = "dovecot"

[[policy.override]]
match = "*@lists.example.org"
hide_retrieved = false
max_age = "36h"
`))
	if err != nil {
		t.Fatal(err)
	}
	checkParsedViews(t, cfg)
	checkDefaultViews(t)
	if expireFor(cfg) != "0 USER" {
		t.Errorf("EXPIRE before login = %q, want 0 USER (override 2 and the recent modifier show retrieved mail)", expireFor(cfg))
	}
}

// checkParsedViews checks the policy, pop3 and override views of the
// configuration parsed by TestConfigViewsAndOverrides.
func checkParsedViews(t *testing.T, cfg *Config) {
	t.Helper()
	p := cfg.Policy
	if p.UIDL != "content" || p.UIDLRequired || !p.HideRetrieved || p.MaxMessages != 500 || p.Window != "oldest" || p.MaxAge.Duration != 30*24*time.Hour {
		t.Errorf("policy = %+v", p)
	}
	if cfg.POP3.RecentMaxAge.Duration != 14*24*time.Hour || cfg.POP3.ModifierSeparator != "+" {
		t.Errorf("pop3 = %+v", cfg.POP3)
	}
	ov := policyOverrides(p)
	if len(ov) != 2 || ov[0].Policy.Delete != "keep" || ov[0].Policy.UIDL != "dovecot" || !ov[0].Policy.HideRetrieved {
		t.Errorf("override 1 = %+v", ov[0])
	}
	if ov[1].Policy.HideRetrieved || ov[1].Policy.MaxAge != 36*time.Hour || ov[1].Policy.Delete != "flag" || ov[1].Policy.UIDL != "content" || ov[1].Policy.UIDLRequired {
		t.Errorf("override 2 = %+v", ov[1])
	}
}

// checkDefaultViews checks the views of the default configuration.
func checkDefaultViews(t *testing.T) {
	t.Helper()
	d := defaultConfig()
	if d.Policy.UIDL != "dovecot" || !d.Policy.UIDLRequired || d.Policy.HideRetrieved || d.Policy.RetrievedKeyword != "$POP3Retrieved" ||
		len(d.POP3.UserModifiers) != 0 || d.POP3.ModifierSeparator != ":" || expireFor(&d) != "NEVER" {
		t.Errorf("defaults: %+v %+v", d.Policy, d.POP3)
	}
}

func TestConfigViewsErrorsNameKeyAndLine(t *testing.T) {
	for _, tt := range []struct {
		name, toml string
		want       []string
	}{
		{"bad uidl", "[policy]\nuidl = \"guid\"\n", []string{"x.toml:2:", "policy.uidl", "dovecot | emailid | x-gm-msgid | content"}},
		{"bad window", "[policy]\nwindow = \"middle\"\n", []string{"x.toml:2:", "policy.window"}},
		{"negative max", "[policy]\nmax_messages = -1\n", []string{"x.toml:2:", "policy.max_messages"}},
		{"bad age", "[policy]\nmax_age = \"a month\"\n", []string{"x.toml:2:", "policy.max_age", "invalid age"}},
		{"override bad delete", "[policy]\n[[policy.override]]\nmatch = \"a\"\ndelete = \"keep\"\n\n[[policy.override]]\nmatch = \"b\"\ndelete = \"shred\"\n",
			[]string{"x.toml:8:", "policy.override[2].delete", `"shred"`}},
		{"override bad glob", "[[policy.override]]\nmatch = \"[a\"\n", []string{"x.toml:2:", "policy.override[1].match"}},
		{"override without match", "[[policy.override]]\ndelete = \"keep\"\n", []string{"x.toml:1:", "policy.override[1].match", "required"}},
		{"override unknown key", "[[policy.override]]\nmatch = \"a\"\ndelet = \"keep\"\n", []string{"x.toml:3:", "policy.override.delet", "unknown key"}},
		{"unknown modifier", "[pop3]\nuser_modifiers = [\"recent\", \"vacation\"]\n", []string{"x.toml:2:", "pop3.user_modifiers", `"vacation"`}},
		{"bad separator", "[pop3]\nmodifier_separator = \"@\"\n", []string{"x.toml:2:", "pop3.modifier_separator"}},
		{"same keywords", "[policy]\ndelete = \"keyword\"\nhide_retrieved = true\nretrieved_keyword = \"$POP3Deleted\"\n", []string{"x.toml:4:", "policy.retrieved_keyword"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("x.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// startMemGateway runs the gateway against an in-memory upstream with a
// wire recorder, user "alice" with n messages.
func startMemGateway(t *testing.T, n int, mod func(*Config)) (*Gateway, *Config, *memupstream.Server, *logBuffer, *logBuffer) {
	t.Helper()
	wire := &logBuffer{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Profile: memupstream.ProfileFull, Wire: wire})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.AddUser("alice", "pw")
	srv.AddUser("scanner@example.org", "pw")
	for i := range n {
		msg := []byte("From: a@example.org\r\nSubject: m" + strings.Repeat("x", i) + "\r\n\r\nbody\r\n")
		srv.Append("alice", "INBOX", msg)
		srv.Append("scanner@example.org", "INBOX", msg)
	}
	gw, cfg, logs := startGatewayOn(t, srv.Addr(), mod)
	return gw, cfg, srv, wire, logs
}

// startGatewayOn runs the gateway against the IMAP server at addr.
func startGatewayOn(t *testing.T, addr string, mod func(*Config)) (*Gateway, *Config, *logBuffer) {
	t.Helper()
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = addr
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	return gw, &cfg, logs
}

// session logs in as user, DELEs the given messages and QUITs; it
// returns the STAT line.
func session(t *testing.T, gw *Gateway, user string, dele ...string) string {
	t.Helper()
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER " + user)
	if r := c.Cmd("PASS pw"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login %s: %q, want prefix %q", user, r, "+OK")
	}
	stat := c.Cmd("STAT")
	for _, n := range dele {
		if r := c.Cmd("DELE " + n); !strings.HasPrefix(r, "+OK") {
			t.Fatal(r)
		}
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	return stat
}

func deletedCount(t *testing.T, srv *memupstream.Server, user string) int {
	n := 0
	for _, f := range imapFlags(t, srv.Addr(), user, "pw") {
		if slices.Contains(f, imap.FlagDeleted) {
			n++
		}
	}
	return n
}

// TestOverrideReload: [[policy.override]] is part of the config, so a
// reload (SIGHUP) changes it for new sessions.
func TestOverrideReload(t *testing.T) {
	gw, cfg, srv, _, logs := startMemGateway(t, 3, nil)
	session(t, gw, "scanner@example.org", "1")
	if n := deletedCount(t, srv, "scanner@example.org"); n != 1 {
		t.Fatalf("before reload: %d deleted, want 1", n)
	}
	next := *cfg
	o := OverrideConfig{Match: "scanner@*", UserPolicy: next.Policy.UserPolicy}
	o.Delete = imapback.DeleteKeep
	next.Policy.Override = []OverrideConfig{o}
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	session(t, gw, "scanner@example.org", "1")
	if n := deletedCount(t, srv, "scanner@example.org"); n != 1 {
		t.Errorf("after reload (keep): %d deleted, want still 1", n)
	}
	session(t, gw, "alice", "1")
	if n := deletedCount(t, srv, "alice"); n != 1 {
		t.Errorf("alice (no override): %d deleted, want 1", n)
	}
	waitLog(t, logs, "uidl_scheme=dovecot delete_policy=keep")
}

func TestHideRetrievedGateway(t *testing.T) {
	gw, _, srv, _, _ := startMemGateway(t, 3, func(c *Config) { c.Policy.HideRetrieved = true })
	c := dialPOP3(t, gw.POP3Addr())
	if r := c.Cmd("CAPA"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if capa := c.Multi(); !strings.Contains(capa, "EXPIRE 0\r\n") {
		t.Errorf("CAPA lacks EXPIRE 0:\n%s", capa)
	}
	c.Cmd("USER alice")
	c.Cmd("PASS pw")
	if r := c.Cmd("RETR 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	c.Multi()
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if st := session(t, gw, "alice"); !strings.HasPrefix(st, "+OK 2 ") {
		t.Errorf("after RETR 2 + QUIT: STAT %q, want 2 messages", st)
	}
	// Phones still see all three.
	flags := imapFlags(t, srv.Addr(), "alice", "pw")
	if len(flags) != 3 || !slices.ContainsFunc(flags[1], func(f imap.Flag) bool { return strings.EqualFold(string(f), "$POP3Retrieved") }) {
		t.Errorf("upstream flags %v", flags)
	}
}

// TestExpirePerUser: CAPA's EXPIRE follows each user's effective policy
// (RFC 2449 section 6.7). When [[policy.override]] or the recent
// modifier can change hide_retrieved, CAPA before login gives the
// smallest value any user may get with USER, and after login the user's
// own: EXPIRE 0 under hide_retrieved, NEVER otherwise.
func TestExpirePerUser(t *testing.T) {
	cases := []struct {
		name, toml string
		before     string
		after      map[string]string // login name: EXPIRE line after login
	}{
		{"override hides", `
[policy]
hide_retrieved = false
[[policy.override]]
match = "scanner@*"
hide_retrieved = true
`, "EXPIRE 0 USER", map[string]string{"alice": "EXPIRE NEVER", "scanner@example.org": "EXPIRE 0"}},
		{"override shows", `
[policy]
hide_retrieved = true
[[policy.override]]
match = "scanner@*"
hide_retrieved = false
`, "EXPIRE 0 USER", map[string]string{"alice": "EXPIRE 0", "scanner@example.org": "EXPIRE NEVER"}},
		{"recent modifier", `
[pop3]
user_modifiers = ["recent"]
recent_max_age = "7d"
[policy]
hide_retrieved = true
`, "EXPIRE 0 USER", map[string]string{"alice": "EXPIRE 0", "recent:alice": "EXPIRE NEVER"}},
		{"override without hide_retrieved", `
[policy]
hide_retrieved = true
[[policy.override]]
match = "scanner@*"
delete = "keep"
`, "EXPIRE 0", map[string]string{"alice": "EXPIRE 0", "scanner@example.org": "EXPIRE 0"}},
		{"defaults", ``, "EXPIRE NEVER", map[string]string{"alice": "EXPIRE NEVER"}},
	}
	expireLine := func(capa string) string {
		for _, l := range strings.Split(capa, "\r\n") {
			if strings.HasPrefix(l, "EXPIRE") {
				return l
			}
		}
		return ""
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := parseConfig("x.toml", []byte(tc.toml))
			if err != nil {
				t.Fatal(err)
			}
			gw, _, _, _, _ := startMemGateway(t, 1, func(c *Config) {
				listen, addr := c.POP3.Listen, c.Upstream.Address
				*c = *parsed
				c.POP3.Listen, c.Upstream.Address = listen, addr
			})
			for user, want := range tc.after {
				c := dialPOP3(t, gw.POP3Addr())
				if got := expireLine(c.Capa()); got != tc.before {
					t.Errorf("CAPA before login: got %q, want %q", got, tc.before)
				}
				c.Cmd("USER " + user)
				if r := c.Cmd("PASS pw"); !strings.HasPrefix(r, "+OK") {
					t.Fatalf("login %s: %q, want prefix %q", user, r, "+OK")
				}
				if got := expireLine(c.Capa()); got != want {
					t.Errorf("%s: CAPA after login: got %q, want %q", user, got, want)
				}
				if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
					t.Fatalf("QUIT: %q, want prefix %q", r, "+OK")
				}
			}
		})
	}
}
