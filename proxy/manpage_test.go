package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/daemon"
)

// TestFlagsDocumented: every command-line flag is in the man page the
// Debian package installs and in the README, and -h exits 0.
func TestFlagsDocumented(t *testing.T) {
	man, err := os.ReadFile("../deploy/package/popbridge.8")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ := newFlagSet(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		// troff spells a literal hyphen \-.
		if troff := `\-` + strings.ReplaceAll(f.Name, "-", `\-`); !strings.Contains(string(man), troff) {
			t.Errorf("popbridge.8 does not document -%s (as %s)", f.Name, troff)
		}
		if !strings.Contains(string(readme), "-"+f.Name+" ") && !strings.Contains(string(readme), "-"+f.Name+"`") {
			t.Errorf("README.md does not document -%s", f.Name)
		}
	})
	if n == 0 {
		t.Fatal("no flags declared")
	}
	var usage strings.Builder
	if code := run([]string{"-h"}, &usage); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if !strings.HasPrefix(usage.String(), "Usage: popbridge ") {
		t.Errorf("-h prints %q, want a usage line", usage.String())
	}
}

// TestPackagedConfig: the conffile the Debian package installs is refused
// until the admin sets upstream.address, and only for that.
func TestPackagedConfig(t *testing.T) {
	const path = "../deploy/package/proxy.toml"
	_, err := daemon.LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "upstream.address: is not set") {
		t.Fatalf("packaged config: got error %v, want upstream.address not set", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := strings.Replace(string(data), `address = ""`, `address = "imap.example.org:993"`, 1)
	if set == string(data) {
		t.Fatal(`packaged config has no line address = ""`)
	}
	setPath := filepath.Join(t.TempDir(), "proxy.toml")
	if err := os.WriteFile(setPath, []byte(set), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.LoadConfig(setPath)
	if err != nil {
		t.Fatalf("packaged config with upstream.address set: %v", err)
	}
	if cfg.Upstream.Security != "tls" || cfg.Metrics.Listen == "" {
		t.Errorf("packaged config: security %q, metrics.listen %q; want tls and a metrics listener", cfg.Upstream.Security, cfg.Metrics.Listen)
	}
}
