package daemon

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// addresslessHeaders are PROXY headers from a trusted proxy that name no
// client IP: what HAProxy sends for its own health checks (v2 LOCAL), a
// v1 UNKNOWN, and a client that reached the proxy over a Unix socket.
func addresslessHeaders(t *testing.T) map[string][]byte {
	t.Helper()
	local, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL,
		TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	unix, err := (&proxyproto.Header{Version: 2, Command: proxyproto.PROXY,
		TransportProtocol: proxyproto.UnixStream,
		SourceAddr:        &net.UnixAddr{Net: "unix", Name: "/run/client.sock"},
		DestinationAddr:   &net.UnixAddr{Net: "unix", Name: "/run/haproxy.sock"}}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"v1 UNKNOWN": []byte("PROXY UNKNOWN\r\n"),
		"v2 LOCAL":   local,
		"v2 AF_UNIX": unix,
	}
}

// TestProxyProtocolNoClientAddressNotLoopback: a header without a client
// IP from a proxy on the same host is not a loopback client, so the
// default allow_plaintext refuses passwords without TLS. The greeting
// (what a health check reads) still comes.
func TestProxyProtocolNoClientAddressNotLoopback(t *testing.T) {
	gw, _ := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.0/8"}
	})
	for name, h := range addresslessHeaders(t) {
		c := dialProxied(t, gw.POP3Addr(), h)
		if capa := c.Capa(); strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") {
			t.Errorf("%s: CAPA offers cleartext logins: %q", name, capa)
		}
		if r := c.Cmd("USER demo"); r != "-ERR [AUTH] Plaintext authentication disallowed\r\n" {
			t.Errorf("%s: USER got %q, want the plaintext refusal", name, r)
		}
		if r := c.Cmd("AUTH PLAIN " + b64("\x00demo\x00demo")); r != "-ERR [AUTH] Plaintext authentication disallowed\r\n" {
			t.Errorf("%s: AUTH PLAIN got %q, want the plaintext refusal", name, r)
		}
		c.Cmd("QUIT")
	}
}

// TestProxyProtocolNoClientAddressCounted: failed logins and connections
// of clients without an address count under the proxy's address: the
// penalty applies, the per-address cap holds, and the fail2ban line
// carries an ip=.
func TestProxyProtocolNoClientAddressCounted(t *testing.T) {
	metricsAddr := freePort(t)
	gw, logs := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.0/8"}
		c.POP3.AllowPlaintext = "always"
		c.Metrics.Listen = metricsAddr
	})
	for name, h := range addresslessHeaders(t) {
		c := dialProxied(t, gw.POP3Addr(), h)
		c.Cmd("USER demo")
		if r := c.Cmd("PASS wrong-" + name); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("%s: wrong password got %q, want prefix %q", name, r, "-ERR")
		}
		c.Cmd("QUIT")
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Three failures under one key: the second and third waited.
	if m := regexp.MustCompile(`(?m)^popbridge_pop3_auth_penalties_total (\d+)`).FindSubmatch(body); m == nil || string(m[1]) != "2" {
		t.Errorf("penalties: got %q, want 2\n%s", m, grepLines(string(body), "penalt"))
	}
	eventually(func() bool { return strings.Count(logs.String(), `msg="pop3 login failed"`) == 3 })
	failed := grepLines(logs.String(), `msg="pop3 login failed"`)
	if n := strings.Count(failed, `msg="pop3 login failed" ip=127.0.0.1 `); n != 3 {
		t.Errorf("failed-login lines with ip=127.0.0.1: got %d, want 3\n%s", n, failed)
	}
}

// TestProxyProtocolNoClientAddressCap: the per-address cap counts
// address-less clients of one proxy together.
func TestProxyProtocolNoClientAddressCap(t *testing.T) {
	gw, _ := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.0/8"}
		c.Limits.MaxConnectionsPerIP = 1
		c.Limits.ProxyHeaderTimeout = Duration{5 * time.Second}
	})
	hs := addresslessHeaders(t)
	dialProxied(t, gw.POP3Addr(), hs["v2 AF_UNIX"])
	for _, name := range []string{"v1 UNKNOWN", "v2 LOCAL", "v2 AF_UNIX"} {
		over := rawDial(t, gw.POP3Addr(), hs[name])
		if got := readAll(over); got != "-ERR [SYS/TEMP] Too many connections from your address.\r\n" {
			t.Errorf("%s over the cap: got %q, want the per-address refusal", name, got)
		}
	}
	// A client the proxy names is counted apart.
	dialProxied(t, gw.POP3Addr(), proxyHeader(t, 2, "192.0.2.8:1"))
}
