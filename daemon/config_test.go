package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
)

func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "proxy.toml"))
	if err != nil {
		t.Fatalf("shipped proxy.toml: %v", err)
	}
	if cfg.Upstream.Address != "demo" || cfg.POP3.Listen != "127.0.0.1:1110" {
		t.Errorf("shipped config changed its contract: %+v", cfg)
	}
	if cfg.Policy.Delete != "flag" || cfg.Policy.Seen != "quit" || cfg.Demo.IMAPListen != "127.0.0.1:1143" {
		t.Errorf("shipped policy/demo = %+v %+v", cfg.Policy, cfg.Demo)
	}
}

func TestConfigDefaultsApplyToOmittedKeys(t *testing.T) {
	cfg, err := parseConfig("x.toml", []byte("[policy]\ndelete = \"trash\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.Delete != "trash" || cfg.Policy.Seen != "quit" || cfg.Policy.Trash != "Trash" {
		t.Errorf("policy = %+v", cfg.Policy)
	}
	if cfg.Limits.IdleTimeout.Duration != 10*time.Minute || cfg.Limits.MaxLineLength != 1024 {
		t.Errorf("limits = %+v", cfg.Limits)
	}
}

func TestConfigErrorsNameFileKeyAndLine(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string // substrings of the error
	}{
		{"unknown key", "[pop3]\nlisten = \"127.0.0.1:1\"\nlisten_plain = \"x\"\n",
			[]string{"x.toml:3:", "pop3.listen_plain", "unknown key"}},
		{"unknown table", "\n[pop4]\nlisten = \"x\"\n",
			[]string{"x.toml:3:", "pop4.listen", "unknown key"}},
		{"bad policy", "[upstream]\naddress = \"imap.example.org:993\"\n[policy]\n\ndelete = \"shred\"\n",
			[]string{"x.toml:5:", "policy.delete", `"shred" is not one of flag | keyword | trash | archive | expunge | keep`}},
		{"type error", "[limits]\nmax_line_length = \"long\"\n",
			[]string{"x.toml:2: limits.max_line_length: incompatible types"}},
		{"syntax error", "[pop3\nlisten = 1\n",
			[]string{"x.toml:2:", "table name"}},
		{"bad duration", "[limits]\nidle_timeout = \"soon\"\n",
			[]string{"x.toml:2: limits.idle_timeout:", "invalid duration"}},
		{"idle below RFC minimum", "[limits]\nidle_timeout = \"1m\"\n",
			[]string{"x.toml:2:", "limits.idle_timeout", "RFC 1939"}},
		{"bad address", "[upstream]\naddress = \"imap.example.org\"\n",
			[]string{"x.toml:2:", "upstream.address", "not host:port"}},
		{"bad security", "[upstream]\nsecurity = \"ssl\"\n",
			[]string{"x.toml:2:", "upstream.security"}},
		{"newline in mailbox", "[upstream]\nmailbox = \"INBOX\\r\\nA1 DELETE INBOX\"\n",
			[]string{"x.toml:2:", "upstream.mailbox", "control character"}},
		{"duplicate folder", "[upstream]\n\nfolders = [\"INBOX\", \"Junk\", \"inbox\"]\n",
			[]string{"x.toml:3:", "upstream.folders", "twice"}},
		{"empty folder", "[upstream]\nfolders = [\"INBOX\", \"\"]\n",
			[]string{"x.toml:2:", "upstream.folders", "length"}},
		{"control character in folder", "[upstream]\nfolders = [\"Junk\\tx\"]\n",
			[]string{"x.toml:2:", "upstream.folders", "control character"}},
		{"bad keyword", "[policy]\nkeyword = \"\\\\Deleted\"\n",
			[]string{"x.toml:2:", "policy.keyword"}},
		{"missing ca file", "[upstream]\nca_file = \"/nonexistent/ca.pem\"\n",
			[]string{"x.toml:2:", "upstream.ca_file"}},
	}
	for _, tt := range tests {
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

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := parseConfig("x.toml", []byte("[policy]\ndelete = \"a\"\nseen = \"b\"\n"))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want ConfigError", err)
	}
	if !strings.Contains(err.Error(), "policy.delete") || !strings.Contains(err.Error(), "policy.seen") {
		t.Errorf("want both problems, got %q", err)
	}
}

// TestUpstreamSecurityRequiredForRemote: a non-loopback upstream without
// security is refused (its passwords would cross the network in the
// clear); loopback and demo upstreams default to none.
func TestUpstreamSecurityRequiredForRemote(t *testing.T) {
	for _, addr := range []string{"imap.example.net:143", "imap.example.net:993", "192.0.2.1:143", "[2001:db8::1]:143"} {
		_, err := parseConfig("x.toml", []byte("[upstream]\n\naddress = \""+addr+"\"\n"))
		if err == nil {
			t.Errorf("%s without security: accepted, want an error", addr)
			continue
		}
		if want := "x.toml:3: upstream.security: "; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q lacks %q", addr, err, want)
		}
	}
	for _, addr := range []string{"demo", "127.0.0.1:143", "127.0.0.2:1143", "[::1]:143", "localhost:143"} {
		cfg, err := parseConfig("x.toml", []byte("[upstream]\naddress = \""+addr+"\"\n"))
		if err != nil {
			t.Errorf("%s without security: %v", addr, err)
			continue
		}
		if got := cfg.Upstream.security(); got != "none" {
			t.Errorf("%s: security %q, want none", addr, got)
		}
		if w := cfg.Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q, want none", addr, w)
		}
	}
	for _, sec := range []string{"tls", "starttls"} {
		cfg, err := parseConfig("x.toml", []byte("[upstream]\naddress = \"imap.example.net:993\"\nsecurity = \""+sec+"\"\n"))
		if err != nil {
			t.Errorf("explicit %s: %v", sec, err)
		} else if w := cfg.Warnings(); len(w) != 0 {
			t.Errorf("explicit %s: warnings %q, want none", sec, w)
		}
	}
	// none towards a remote server must be said, and is warned about.
	cfg, err := parseConfig("x.toml", []byte("[upstream]\naddress = \"imap.example.net:143\"\nsecurity = \"none\"\n"))
	if err != nil {
		t.Fatalf("explicit none: %v", err)
	}
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "x.toml:3: upstream.security: ") || !strings.Contains(w, "clear") {
		t.Errorf("explicit none: warnings %q, want one on upstream.security at line 3", w)
	}
}

// TestCleartextUpstreamWarnedAtStartAndReload: security = "none" towards
// a remote server is logged at start and at every reload.
func TestCleartextUpstreamWarnedAtStartAndReload(t *testing.T) {
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = "192.0.2.1:143" // never dialled: no session logs in
	cfg.Upstream.Security = "none"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	const msg = "upstream.security: \\\"none\\\""
	if n := strings.Count(logs.String(), msg); n != 1 {
		t.Errorf("after start: %d warnings, want 1\n%s", n, logs)
	}
	next := cfg
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), msg); n != 2 {
		t.Errorf("after reload: %d warnings, want 2\n%s", n, logs)
	}
}

// TestCheckConfigRefusesWhatStartWouldFailOn: ports out of range and
// listeners sharing an address are errors with file and line.
func TestCheckConfigRefusesWhatStartWouldFailOn(t *testing.T) {
	testCert, testKey := testpki.New().WriteLeaf(t, t.TempDir(), 1)
	tests := []struct {
		name, toml, want string
	}{
		{"port out of range", "[pop3]\nlisten = \"127.0.0.1:99999\"\n", "x.toml:2: pop3.listen: "},
		{"port not a number", "[pop3]\nlisten = \"127.0.0.1:pop3x\"\n", "x.toml:2: pop3.listen: "},
		{"negative port", "[metrics]\nlisten = \"127.0.0.1:-1\"\n", "x.toml:2: metrics.listen: "},
		{"listen_tls = listen", fmt.Sprintf("[pop3]\nlisten = \"127.0.0.1:1110\"\nlisten_tls = \"127.0.0.1:1110\"\n[tls]\ncert = %q\nkey = %q\n", testCert, testKey),
			"x.toml:3: pop3.listen_tls: "},
		{"metrics = pop3", "[pop3]\nlisten = \"127.0.0.1:1110\"\n[metrics]\n\nlisten = \"127.0.0.1:1110\"\n", "x.toml:5: metrics.listen: "},
		{"wildcard overlaps", "[pop3]\nlisten = \"0.0.0.0:1110\"\n[metrics]\nlisten = \"127.0.0.1:1110\"\n", "x.toml:4: metrics.listen: "},
		{"demo = pop3", "[pop3]\nlisten = \"127.0.0.1:1143\"\n", "demo.imap_listen: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("x.toml", []byte(tc.toml))
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	// Port 0 (any free port) twice is no conflict; another port is fine.
	if _, err := parseConfig("x.toml", []byte("[pop3]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[demo]\nimap_listen = \"127.0.0.1:1144\"\n")); err != nil {
		t.Errorf("distinct listeners refused: %v", err)
	}
}
