package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/web"
)

func TestWebConfigOffByDefault(t *testing.T) {
	cfg, err := parseConfig("x.toml", []byte("[upstream]\naddress = \"demo\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Web.Listen != "" {
		t.Errorf("web.listen default: got %q, want off", cfg.Web.Listen)
	}
}

func TestWebConfigValidate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New()
	cert, key := ca.WriteLeaf(t, dir, 2)
	tlsSection := "[tls]\ncert = \"" + cert + "\"\nkey = \"" + key + "\"\n"
	vaultKey := filepath.Join(dir, "vault.key")
	if err := vault.GenerateKeyFile(vaultKey); err != nil {
		t.Fatal(err)
	}
	const passthrough = "[upstream]\naddress = \"demo\"\n"
	// The vault demo: the page signs in at the demo provider.
	up := passthrough + "[auth]\nmode = \"vault\"\nstore = \"sqlite:" + filepath.Join(dir, "v.db") +
		"\"\nkey_file = \"" + vaultKey + "\"\n[auth.oauth2]\nprovider = \"oidc\"\nissuer = \"demo\"\n"
	for _, tt := range []struct {
		name, toml string
		wantKey    string // "" = valid
	}{
		{"tls", up + tlsSection + "[web]\nlisten = \"0.0.0.0:8443\"\npublic_url = \"https://mail.example.org\"\n", ""},
		{"no vault", passthrough + tlsSection + "[web]\nlisten = \"0.0.0.0:8443\"\npublic_url = \"https://mail.example.org\"\n", "web.listen"},
		{"tls needs cert", up + "[web]\nlisten = \"0.0.0.0:8443\"\npublic_url = \"https://mail.example.org\"\n", "web.listen"},
		{"proxy on loopback", up + "[web]\nlisten = \"127.0.0.1:8080\"\nplain_http = true\npublic_url = \"https://mail.example.org/popbridge\"\n", ""},
		{"proxy on ::1", up + "[web]\nlisten = \"[::1]:8080\"\nplain_http = true\npublic_url = \"https://mail.example.org\"\n", ""},
		{"plain http on any address", up + "[web]\nlisten = \"0.0.0.0:8080\"\nplain_http = true\npublic_url = \"https://mail.example.org\"\n", "web.plain_http"},
		{"plain http allowed anywhere", up + "[web]\nlisten = \"10.0.0.5:8080\"\nplain_http = true\nplain_http_any_address = true\npublic_url = \"https://mail.example.org\"\n", ""},
		{"any address without plain", up + tlsSection + "[web]\nlisten = \"10.0.0.5:8443\"\nplain_http_any_address = true\npublic_url = \"https://mail.example.org\"\n", "web.plain_http_any_address"},
		{"no public url", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\n", "web.public_url"},
		{"http public url", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"http://mail.example.org\"\n", "web.public_url"},
		{"bad claim", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://mail.example.org\"\nuser_claim = \"name\"\n", "web"},
		{"admin claim alone", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://mail.example.org\"\nadmin_claim = \"groups\"\n", "web"},
		{"missing secret file", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://mail.example.org\"\nclient_secret_file = \"" + filepath.Join(dir, "nope") + "\"\n", "web.client_secret_file"},
		{"negative lifetime", up + tlsSection + "[web]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://mail.example.org\"\nsession_lifetime = \"-1h\"\n", "web.session_lifetime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("x.toml", []byte(tt.toml))
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.wantKey != "" && err == nil:
				t.Fatalf("got valid, want an error on %s", tt.wantKey)
			case tt.wantKey != "" && !strings.Contains(err.Error(), tt.wantKey+":"):
				t.Fatalf("got %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

// startWebGateway starts a demo gateway with [tls] and serves the real
// page handler, without a vault, on [web] listen.
func startWebGateway(t *testing.T, wc WebConfig) (*Gateway, *testpki.CA) {
	t.Helper()
	ca := testpki.New()
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = demoAddress
	cfg.TLS.Cert, cfg.TLS.Key = ca.WriteLeaf(t, t.TempDir(), 2)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := Start(context.Background(), &cfg, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	hc := wc.HandlerConfig("https://id.example.org", logger, gw.metrics)
	hc.ClientID = "popbridge"
	h, err := web.New(hc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.startWeb(context.Background(), wc, h); err != nil {
		t.Fatal(err)
	}
	return gw, ca
}

func TestWebServedOverTLS(t *testing.T) {
	gw, ca := startWebGateway(t, WebConfig{Listen: "127.0.0.1:0", PublicURL: "https://pop3.test"})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "pop3.test"}}}
	resp, err := hc.Get("https://" + gw.WebAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sign in") {
		t.Fatalf("GET / over TLS: got HTTP %d:\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("headers: got CSP %q, HSTS %q; want both", resp.Header.Get("Content-Security-Policy"), resp.Header.Get("Strict-Transport-Security"))
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + gw.WebAddr() + "/"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS listener: got HTTP 200")
		}
		resp.Body.Close()
	}
}

func TestWebServedPlainForProxy(t *testing.T) {
	gw, _ := startWebGateway(t, WebConfig{Listen: "127.0.0.1:0", PlainHTTP: true, PublicURL: "https://mail.example.org/popbridge"})
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + gw.WebAddr() + "/popbridge/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="/popbridge/login"`) {
		t.Fatalf("GET /popbridge/ behind a proxy: got HTTP %d:\n%s", resp.StatusCode, body)
	}
}
