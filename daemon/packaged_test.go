package daemon

import (
	"os"
	"strings"
	"testing"
)

// TestPackagedConfig: the conffile the Debian package installs is refused
// until the admin sets upstream.address, and only for that.
func TestPackagedConfig(t *testing.T) {
	const path = "../deploy/package/proxy.toml"
	_, err := LoadConfig(path)
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
	cfg, err := parseConfig(path, []byte(set))
	if err != nil {
		t.Fatalf("packaged config with upstream.address set: %v", err)
	}
	if cfg.Upstream.Security != "tls" || cfg.Metrics.Listen == "" {
		t.Errorf("packaged config: security %q, metrics.listen %q; want tls and a metrics listener", cfg.Upstream.Security, cfg.Metrics.Listen)
	}
}
