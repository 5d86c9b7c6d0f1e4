package main

import (
	"strings"
	"testing"
	"time"
)

// TestPackagedUnit: the packaged unit runs /usr/bin/popbridge as the
// static user with its state directory, and keeps every hardening line
// of deploy/systemd.
func TestPackagedUnit(t *testing.T) {
	unit, err := packagedUnit("../systemd/popbridge.service")
	if err != nil {
		t.Fatal(err)
	}
	u := string(unit)
	for _, want := range []string{
		"ExecStart=/usr/bin/popbridge -config /etc/popbridge/proxy.toml\n",
		"ExecStartPre=/usr/bin/popbridge -check-config -config /etc/popbridge/proxy.toml\n",
		"User=popbridge\n", "Group=popbridge\n", "StateDirectory=popbridge\n",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"Documentation=man:popbridge(8)",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("packaged unit lacks %q", want)
		}
	}
	for _, bad := range []string{"/usr/local/bin", "DynamicUser", "go build"} {
		if strings.Contains(u, bad) {
			t.Errorf("packaged unit still has %q", bad)
		}
	}
}

func TestChangelog(t *testing.T) {
	when := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	got := string(changelog("1.2.0", when))
	if first := strings.SplitN(got, "\n", 2)[0]; first != "popbridge (1.2.0) unstable; urgency=medium" {
		t.Errorf("first line: got %q", first)
	}
	if want := "\n -- " + maintainer + "  Fri, 04 Dec 2026 15:00:00 +0000\n"; !strings.HasSuffix(got, want) {
		t.Errorf("trailer: got %q, want suffix %q", got, want)
	}
}
