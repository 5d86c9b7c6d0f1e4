package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
