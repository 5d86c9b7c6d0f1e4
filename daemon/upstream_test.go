package daemon

import (
	"strings"
	"testing"
)

// TestUpstreamSecurityConfig: forward_client_address defaults to true and
// can be turned off; insecure_skip_verify logs a warning when the gateway
// starts (and only then).
func TestUpstreamSecurityConfig(t *testing.T) {
	cfg, err := parseConfig("x.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Upstream.ForwardClientAddress {
		t.Error("forward_client_address does not default to true")
	}
	cfg, err = parseConfig("x.toml", []byte("[upstream]\nforward_client_address = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.ForwardClientAddress {
		t.Error("forward_client_address = false ignored")
	}
	if _, err := parseConfig("x.toml", []byte("[upstream]\nforward_client_address = \"yes\"\n")); err == nil ||
		!strings.Contains(err.Error(), "x.toml:2") {
		t.Errorf("a string accepted: %v", err)
	}

	for _, insecure := range []bool{false, true} {
		_, logs := testGateway(t, func(c *Config) {
			// Not contacted at start: the address only has to be valid.
			c.Upstream.Address = "127.0.0.1:1"
			c.Upstream.Security = "tls"
			c.Upstream.InsecureSkipVerify = insecure
		})
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "insecure_skip_verify")
		if warned != insecure {
			t.Errorf("insecure_skip_verify=%v: warning logged %v:\n%s", insecure, warned, logs)
		}
	}
}
