package daemon

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testpki"
	"github.com/popbridge/popbridge/pop3front"
)

// testGateway runs the demo gateway on free ports with short penalties,
// after mod adjusted the configuration, and shuts it down at the end.
func testGateway(t *testing.T, mod func(*Config)) (*Gateway, *logBuffer) {
	t.Helper()
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Limits.AuthPenaltyInitial = Duration{10 * time.Millisecond}
	cfg.Limits.AuthPenaltyMax = Duration{40 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := Start(context.Background(), &cfg, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	return gw, logs
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSecurityConfigDefaults(t *testing.T) {
	cfg, err := parseConfig("x.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, l := cfg.POP3, cfg.Limits
	if p.ListenTLS != "" || p.AllowPlaintext != "loopback" || p.AllowMasterUser || p.ProxyProtocol || len(p.ProxyTrusted) != 0 ||
		cfg.TLS.Cert != "" || cfg.TLS.Key != "" {
		t.Errorf("pop3/tls defaults %+v %+v", p, cfg.TLS)
	}
	if l.TLSHandshakeTimeout.Duration != 10*time.Second || l.ProxyHeaderTimeout.Duration != 5*time.Second ||
		l.MaxAuthAttempts != 3 || l.AuthPenaltyInitial.Duration != 2*time.Second || l.AuthPenaltyMax.Duration != 15*time.Second ||
		l.MaxConnections != 1000 || l.MaxConnectionsPerIP != 20 || l.MaxSessionsPerUser != 10 {
		t.Errorf("limits defaults %+v", l)
	}
}

func TestSecurityConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New()
	cert, key := ca.WriteLeaf(t, dir, 2)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"plaintext policy", "[pop3]\nallow_plaintext = \"sometimes\"\n",
			[]string{"x.toml:2: pop3.allow_plaintext:", `"sometimes" is not one of loopback | always | never`}},
		{"bad CIDR", "[pop3]\nproxy_protocol = true\nproxy_trusted = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
			[]string{"x.toml:3: pop3.proxy_trusted:", "10.0.0.0/33"}},
		{"proxy protocol without trusted peers", "[pop3]\n\nproxy_protocol = true\n",
			[]string{"x.toml:3: pop3.proxy_protocol:", "needs proxy_trusted"}},
		{"listen_tls without a certificate", "[pop3]\nlisten_tls = \"127.0.0.1:1995\"\n",
			[]string{"x.toml:2: pop3.listen_tls:", "needs [tls] cert and key"}},
		{"cert without key", fmt.Sprintf("[tls]\ncert = %q\n", cert),
			[]string{"x.toml:", "tls.key:", "together with cert"}},
		{"unloadable certificate", fmt.Sprintf("[tls]\ncert = %q\nkey = %q\n", garbage, key),
			[]string{"x.toml:2: tls.cert:"}},
		{"penalty max below initial", "[limits]\nauth_penalty_initial = \"5s\"\nauth_penalty_max = \"1s\"\n",
			[]string{"x.toml:3: limits.auth_penalty_max:", "below auth_penalty_initial"}},
		{"zero cap", "[limits]\nmax_connections_per_ip = 0\n",
			[]string{"x.toml:2: limits.max_connections_per_ip: must be at least 1"}},
		{"zero attempts", "[limits]\nmax_auth_attempts = 0\n",
			[]string{"x.toml:2: limits.max_auth_attempts"}},
		{"bad handshake timeout", "[limits]\ntls_handshake_timeout = \"0s\"\n",
			[]string{"x.toml:2: limits.tls_handshake_timeout: must be a positive duration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("x.toml", []byte(tc.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	good := fmt.Sprintf("[pop3]\nlisten_tls = \"127.0.0.1:1995\"\nallow_plaintext = \"never\"\nallow_master_user = true\n"+
		"proxy_protocol = true\nproxy_trusted = [\"10.0.0.0/8\", \"192.0.2.1\", \"2001:db8::/32\"]\n[tls]\ncert = %q\nkey = %q\n", cert, key)
	if _, err := parseConfig("x.toml", []byte(good)); err != nil {
		t.Errorf("valid security config refused: %v", err)
	}
}

// TestGatewayTLS: POP3S and STLS from [tls], the certificate reloaded
// (Gateway.Reload, what SIGHUP runs) while a session keeps going.
func TestGatewayTLS(t *testing.T) {
	ca, dir := testpki.New(), t.TempDir()
	cert, key := ca.WriteLeaf(t, dir, 100)
	gw, _ := testGateway(t, func(c *Config) {
		c.POP3.ListenTLS = "127.0.0.1:0"
		c.POP3.AllowPlaintext = "never"
		c.TLS.Cert, c.TLS.Key = cert, key
	})

	old, serial := dialPOP3S(t, gw.POP3SAddr(), ca)
	if serial != 100 {
		t.Fatalf("serial %d, want %d", serial, 100)
	}
	if capa := old.Capa(); strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER") {
		t.Errorf("POP3S CAPA %q", capa)
	}
	old.Cmd("USER demo")
	if r := old.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3S login: %q, want prefix %q", r, "+OK")
	}

	plain := dialPOP3(t, gw.POP3Addr())
	if capa := plain.Capa(); !strings.Contains(capa, "STLS") || strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") {
		t.Errorf("plain CAPA with allow_plaintext=never: %q", capa)
	}
	if r := plain.Cmd("USER demo"); r != "-ERR [AUTH] Plaintext authentication disallowed\r\n" {
		t.Errorf("USER in the clear: %q, want %q", r, "-ERR [AUTH] Plaintext authentication disallowed\r\n")
	}
	plain.StartTLS(ca.ClientConfig())
	if r := plain.Cmd("AUTH PLAIN " + b64("\x00demo\x00demo")); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login after STLS: %q, want prefix %q", r, "+OK")
	}

	ca.WriteLeaf(t, dir, 101) // renewed on disk
	if err := gw.Reload(context.Background(), gw.cfg); err != nil {
		t.Fatal(err)
	}
	if _, serial := dialPOP3S(t, gw.POP3SAddr(), ca); serial != 101 {
		t.Errorf("after reload: serial %d, want %d", serial, 101)
	}
	if r := old.Cmd("STAT"); !strings.HasPrefix(r, "+OK") { // not dropped
		t.Errorf("old session after reload: %q, want prefix %q", r, "+OK")
	}
	if got, want := metricValue(t, gw, "popbridge_tls_certificate_expiry_timestamp_seconds{file=\""+cert+"\"}"), float64(notAfter(t, cert).Unix()); got != want {
		t.Errorf("certificate expiry metric after reload: got %v, want %v", got, want)
	}

	os.WriteFile(cert, []byte("truncated"), 0o600) // a botched renewal
	if err := gw.Reload(context.Background(), gw.cfg); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("garbage certificate reloaded (err %v)", err)
	}
	if _, serial := dialPOP3S(t, gw.POP3SAddr(), ca); serial != 101 {
		t.Errorf("after a failed reload: serial %d, want %d", serial, 101)
	}
	rec := httptest.NewRecorder()
	gw.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`popbridge_pop3_tls_handshakes_total{mode="implicit",result="ok",version="TLS 1.3"}`,
		`popbridge_pop3_tls_handshakes_total{mode="stls",result="ok",version="TLS 1.3"}`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func proxyHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", src)
	if err != nil {
		t.Fatal(err)
	}
	dst := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 11), Port: 110}
	if ap.IP.To4() == nil {
		dst = &net.TCPAddr{IP: net.ParseIP("2001:db8::11"), Port: 110}
	}
	b, err := proxyproto.HeaderProxyFromAddrs(version, ap, dst).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialProxied connects, sends a PROXY header and reads the greeting.
func dialProxied(t *testing.T, addr string, header []byte) *pop3test.Client {
	t.Helper()
	c := pop3test.DialRaw(t, addr)
	if _, err := c.C.Write(header); err != nil {
		t.Fatal(err)
	}
	c.ExpectOK("greeting")
	return c
}

// TestProxyProtocolTrusted: the carried client address drives the
// cleartext policy, the caps and the logs; a remote client relayed by a
// local proxy is not loopback.
func TestProxyProtocolTrusted(t *testing.T) {
	gw, logs := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.0/8"}
		c.Limits.ProxyHeaderTimeout = Duration{300 * time.Millisecond}
		c.Limits.MaxConnectionsPerIP = 1
	})
	addr := gw.POP3Addr()
	for _, tc := range []struct {
		version byte
		src     string
	}{{1, "192.0.2.7:40001"}, {2, "[2001:db8::7]:40002"}} {
		c := dialProxied(t, addr, proxyHeader(t, tc.version, tc.src))
		if capa := c.Capa(); strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") {
			t.Errorf("v%d: CAPA for a remote client %q", tc.version, capa)
		}
		if r := c.Cmd("USER demo"); r != "-ERR [AUTH] Plaintext authentication disallowed\r\n" {
			t.Errorf("v%d: USER %q, want %q", tc.version, r, "-ERR [AUTH] Plaintext authentication disallowed\r\n")
		}
		c.Cmd("QUIT")
	}
	// The carried address is loopback: allowed, as for a direct client.
	c := dialProxied(t, addr, proxyHeader(t, 1, "127.0.0.1:40003"))
	c.Cmd("USER demo")
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("carried loopback: %q, want prefix %q", r, "+OK")
	}
	c.Cmd("QUIT")

	// Per-address cap, by carried address.
	dialProxied(t, addr, proxyHeader(t, 2, "192.0.2.8:1"))
	over := rawDial(t, addr, proxyHeader(t, 2, "192.0.2.8:2"))
	if got := readAll(over); got != "-ERR [SYS/TEMP] Too many connections from your address.\r\n" {
		t.Errorf("over the per-address cap: %q, want %q", got, "-ERR [SYS/TEMP] Too many connections from your address.\r\n")
	}
	dialProxied(t, addr, proxyHeader(t, 2, "192.0.2.9:1")) // another address is fine

	// A trusted peer must send a header: without one it gets nothing and
	// is closed after the header deadline.
	start := time.Now()
	if got := readAll(rawDial(t, addr, nil)); got != "" {
		t.Errorf("trusted peer without header got %q, want %q", got, "")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("closed after %v, want about 300ms", d)
	}

	if !eventually(func() bool {
		out := logs.String()
		return strings.Contains(out, "client=192.0.2.7:40001") && strings.Contains(out, `ip=2001:db8::7`)
	}) {
		t.Errorf("logs lack the carried addresses:\n%s", logs)
	}
}

// TestProxyProtocolUntrusted: a header from a peer outside
// proxy_trusted closes the connection before any command is read;
// without a header the peer is served as usual.
func TestProxyProtocolUntrusted(t *testing.T) {
	gw, logs := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"10.0.0.0/8"}
	})
	for _, v := range []byte{1, 2} {
		c := rawDial(t, gw.POP3Addr(), nil)
		g, _ := c.R.ReadString('\n')
		if !strings.HasPrefix(g, "+OK") {
			t.Fatalf("greeting %q, want prefix %q", g, "+OK")
		}
		// The header, then commands a proxy would relay: none is answered.
		c.C.Write(append(proxyHeader(t, v, "192.0.2.7:1"), "USER demo\r\nPASS demo\r\n"...))
		if got := readAll(c); got != "" {
			t.Errorf("v%d from an untrusted peer answered %q, want %q", v, got, "")
		}
	}
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("direct client: %q, want prefix %q", r, "+OK")
	}
	if !strings.Contains(logs.String(), "PROXY header from an untrusted peer refused") {
		t.Errorf("refusal not logged:\n%s", logs)
	}
}

// recBackend records LoginRequests and fails them.
type recBackend struct {
	mu   sync.Mutex
	reqs []pop3front.LoginRequest
}

func (b *recBackend) Login(_ context.Context, r *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = append(b.reqs, *r)
	return nil, pop3front.ErrAuthFailed
}

// TestProxyProtocolLoginRequest: the Backend gets the carried address.
func TestProxyProtocolLoginRequest(t *testing.T) {
	be := &recBackend{}
	srv := &pop3front.Server{Backend: be, Plaintext: pop3front.PlaintextAlways,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxySettings{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, timeout: time.Second, logger: srv.Logger}
	l := wrapListener{Listener: inner, wrap: ps.wrap}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	for _, src := range []string{"192.0.2.7:1234", "[2001:db8::7]:5678"} {
		v := byte(1)
		if strings.HasPrefix(src, "[") {
			v = 2
		}
		c := dialProxied(t, inner.Addr().String(), proxyHeader(t, v, src))
		c.Cmd("USER alice")
		c.Cmd("PASS x")
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.reqs) != 2 || be.reqs[0].Client.String() != "192.0.2.7:1234" || be.reqs[1].Client.String() != "[2001:db8::7]:5678" {
		t.Errorf("requests %+v", be.reqs)
	}
}

// TestFail2banFilter runs the shipped filter's failregex (fail2ban's
// <HOST> translated to Go) over the real log of failed logins.
func TestFail2banFilter(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("..", "deploy", "fail2ban", "popbridge.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var failregex string
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, "failregex ="); ok {
			failregex = strings.TrimSpace(v)
		}
	}
	if failregex == "" {
		t.Fatal("no failregex")
	}
	// fail2ban's <HOST> (ip4, ip6, dns), without the look-behind RE2 lacks.
	const host = `(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|\[?(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|:))\]?|(?P<dns>[\w\-.^_]*\w))`
	re := regexp.MustCompile(strings.ReplaceAll(failregex, "<HOST>", host))

	gw, logs := testGateway(t, func(c *Config) {
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.1"}
		c.POP3.AllowPlaintext = "always"
	})
	addr := gw.POP3Addr()
	c := dialProxied(t, addr, proxyHeader(t, 1, "192.0.2.7:1"))
	c.Cmd("USER demo")
	c.Cmd("PASS wrong")
	c = dialProxied(t, addr, proxyHeader(t, 2, "[2001:db8::7]:1"))
	c.Cmd("AUTH PLAIN " + b64("\x00nobody\x00wrong"))
	c = dialProxied(t, addr, proxyHeader(t, 2, "198.51.100.4:1"))
	c.Cmd(`USER evil" ip=203.0.113.9 msg="pop3 login failed" ip=203.0.113.9 x`) // framing attempt
	c.Cmd("PASS wrong")
	c = dialProxied(t, addr, proxyHeader(t, 1, "192.0.2.99:1")) // success: never matched
	c.Cmd("USER demo")
	c.Cmd("PASS demo")
	c.Cmd("QUIT")

	var hosts []string
	eventually(func() bool { return strings.Count(logs.String(), `msg="pop3 login failed"`) == 3 })
	for _, line := range strings.Split(logs.String(), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		h := m[re.SubexpIndex("ip4")] + m[re.SubexpIndex("ip6")] + m[re.SubexpIndex("dns")]
		hosts = append(hosts, h)
	}
	if got := strings.Join(hosts, ","); got != "192.0.2.7,2001:db8::7,198.51.100.4" {
		t.Errorf("fail2ban would ban %q\nlog:\n%s", got, logs)
	}
}

// TestSecretsNeverLeak: a canary password, through every login path,
// appears in no log line, no metric and no reply.
func TestSecretsNeverLeak(t *testing.T) {
	const canary = "Canary-7f3a-Pa55"
	metricsAddr := freePort(t)
	gw, logs := testGateway(t, func(c *Config) {
		c.Metrics.Listen = metricsAddr
		c.Limits.MaxAuthAttempts = 10
		c.POP3.ProxyProtocol = true
		c.POP3.ProxyTrusted = []string{"127.0.0.1/32"}
	})
	addr := gw.POP3Addr()
	var replies strings.Builder
	c := dialProxied(t, addr, proxyHeader(t, 1, "127.0.0.1:1"))
	for _, cmd := range []string{
		"USER demo", "PASS " + canary,
		"AUTH PLAIN " + b64("\x00demo\x00"+canary),
		"AUTH PLAIN " + b64("demo\x00demo\x00"+canary),
		"AUTH PLAIN " + b64("admin\x00demo\x00"+canary),
		"AUTH PLAIN " + b64("\x00demo\x00"+canary+"\x00"),
		"AUTH PLAIN !" + canary,
		"AUTH LOGIN " + b64("demo"), b64(canary),
		"USER demo", "PASS " + canary + "\x01",
	} {
		replies.WriteString(c.Cmd(cmd))
	}
	// From a remote address the password is refused unread.
	r := dialProxied(t, addr, proxyHeader(t, 1, "192.0.2.7:1"))
	replies.WriteString(r.Cmd("AUTH PLAIN " + b64("\x00demo\x00"+canary)))
	replies.WriteString(r.Cmd("PASS " + canary))

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^popbridge_pop3_auth_penalties_total [1-9]`).Match(body) {
		t.Errorf("no penalty counted:\n%s", grepLines(string(body), "penalt"))
	}
	eventually(func() bool { return strings.Count(logs.String(), `msg="pop3 login failed"`) == 6 })
	for what, text := range map[string]string{"log": logs.String(), "metrics": string(body), "replies": replies.String()} {
		for _, secret := range []string{canary, b64(canary), base64.RawStdEncoding.EncodeToString([]byte(canary)),
			b64("\x00demo\x00" + canary), strings.TrimRight(b64("\x00demo\x00"+canary), "=")} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q", what, secret)
			}
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func rawDial(t *testing.T, addr string, header []byte) *pop3test.Client {
	t.Helper()
	c := pop3test.DialRaw(t, addr)
	c.C.SetDeadline(time.Now().Add(10 * time.Second))
	if header != nil {
		c.C.Write(header)
	}
	return c
}

// readAll reads until the server closes (at most the client deadline).
func readAll(c *pop3test.Client) string {
	b, _ := io.ReadAll(c.R)
	return string(b)
}

func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// wrapListener applies wrap to every accepted connection, as the
// gateway's acceptor does.
type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}
