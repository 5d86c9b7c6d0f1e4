package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/popbridge/popbridge/web"
)

// WebConfig is the [web] section: the page where people manage their
// device passwords and admins see every user (package web). Off unless
// listen is set.
type WebConfig struct {
	// Listen is the page's address, host:port; "" (the default) serves
	// no page.
	Listen string `toml:"listen"`
	// PlainHTTP serves HTTP without TLS, for a reverse proxy that
	// terminates TLS in front of it. Listen must then be a loopback
	// address unless PlainHTTPAnyAddress is set too. Without PlainHTTP
	// the page is served over TLS with the [tls] certificate.
	PlainHTTP           bool `toml:"plain_http"`
	PlainHTTPAnyAddress bool `toml:"plain_http_any_address"`
	// PublicURL is the https address people open, e.g.
	// https://mail.example.org/popbridge; the redirect URI to register
	// with the provider is PublicURL + "/callback".
	PublicURL string `toml:"public_url"`
	// Issuer, ClientID and ClientSecretFile override those of the
	// vault's OpenID Connect provider ([auth.oauth2]).
	Issuer           string `toml:"issuer"`
	ClientID         string `toml:"client_id"`
	ClientSecretFile string `toml:"client_secret_file"`
	// UserClaim is the claim holding the vault user name: email
	// (default), preferred_username, upn or sub.
	UserClaim string `toml:"user_claim"`
	// Admins lists user names allowed in the admin view; AdminClaim and
	// AdminValue also admit users whose claim (e.g. groups) holds the
	// value.
	Admins     []string `toml:"admins"`
	AdminClaim string   `toml:"admin_claim"`
	AdminValue string   `toml:"admin_value"`
	// SessionLifetime bounds a session from sign-in (default 8h);
	// IdleTimeout ends it after inactivity (default 1h).
	SessionLifetime Duration `toml:"session_lifetime"`
	IdleTimeout     Duration `toml:"idle_timeout"`
}

// validate checks [web], passing each problem to check (Config.Validate
// collects them); tlsConf is the [tls] section the page's certificate
// comes from, auth the vault whose devices the page manages.
func (c WebConfig) validate(tlsConf TLSConfig, auth *AuthConfig, check func(error)) {
	if c.Listen == "" {
		return
	}
	check(validListen("web.listen", c.Listen))
	if !auth.Vault() {
		check(invalid("web.listen", "needs [auth] mode = \"vault\": the page manages the vault's device passwords"))
	}
	switch {
	case !c.PlainHTTP && tlsConf.Cert == "":
		check(invalid("web.listen", "needs [tls] cert and key, or plain_http = true behind a reverse proxy"))
	case c.PlainHTTP && !c.PlainHTTPAnyAddress && !loopbackListen(c.Listen):
		check(invalid("web.plain_http", "serves sign-ins without TLS: listen must be a loopback address (127.0.0.1:PORT, [::1]:PORT) for a reverse proxy on this host, or set plain_http_any_address = true"))
	case c.PlainHTTPAnyAddress && !c.PlainHTTP:
		check(invalid("web.plain_http_any_address", "needs plain_http = true"))
	}
	if c.PublicURL == "" {
		check(invalid("web.public_url", "is required with web.listen (the address people open; the redirect URI is built from it)"))
	} else if !strings.HasPrefix(c.PublicURL, "https://") && !loopbackURL(c.PublicURL) {
		check(invalid("web.public_url", "%q must be https:// (cookies are Secure)", c.PublicURL))
	}
	if c.ClientSecretFile != "" {
		if _, err := os.Stat(c.ClientSecretFile); err != nil {
			check(invalid("web.client_secret_file", "%v", err))
		}
	}
	if c.SessionLifetime.Duration < 0 {
		check(invalid("web.session_lifetime", "must not be negative"))
	}
	if c.IdleTimeout.Duration < 0 {
		check(invalid("web.idle_timeout", "must not be negative"))
	}
	// The rest (issuer, claims) is checked by web.Config.Validate, with
	// the keys named here.
	wc := c.HandlerConfig(auth.OAuth2.Issuer, nil, nil)
	if auth.Vault() && wc.Issuer == "" {
		check(invalid("web.issuer", "is required when [auth.oauth2] names no issuer (the page signs people in with it)"))
	}
	if wc.Issuer == "" {
		wc.Issuer = "https://issuer.invalid" // reported above
	}
	if auth.Vault() && c.ClientID == "" && auth.UpstreamAuth != UpstreamOAuth2 {
		check(invalid("web.client_id", "is required with upstream_auth = %q (there is no [auth.oauth2] client to share)", auth.UpstreamAuth))
	}
	if err := wc.Validate(); err != nil && c.PublicURL != "" {
		check(invalid("web", "%s", strings.TrimPrefix(err.Error(), "web: ")))
	}
}

// newWebHandler builds the page [web] describes on the vault's store,
// signing people in with [web]'s client registration, or else with the
// vault's provider's (whose delegated scopes make a sign-in an
// enrolment). The demo issuer is the demo provider's URL, where the
// page's redirect URI is registered.
func (gw *Gateway) newWebHandler(cfg *Config) (*web.Handler, error) {
	if gw.vault == nil {
		return nil, errors.New("web.listen: needs [auth] mode = \"vault\"")
	}
	c := cfg.Web
	wc := c.HandlerConfig(cfg.Auth.OAuth2.Issuer, gw.logger.With("component", "web"), gw.metrics)
	if wc.Issuer == demoIssuer {
		if gw.demoOP == nil {
			return nil, errors.New("web.issuer: \"demo\" needs the vault demo (auth.oauth2.issuer = \"demo\")")
		}
		wc.Issuer = gw.demoOP.Issuer
	}
	secret, err := c.ClientSecret()
	if err != nil {
		return nil, err
	}
	wc.ClientSecret = secret
	h, err := web.New(wc, gw.vault.store, gw.vault.provider)
	if err != nil {
		return nil, err
	}
	if gw.demoOP != nil && wc.Issuer == gw.demoOP.Issuer {
		gw.demoOP.AddRedirectURI(h.RedirectURI())
	}
	return h, nil
}

// loopbackListen reports whether addr binds only loopback.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func loopbackURL(u string) bool {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// HandlerConfig is the web.Config that [web] describes. issuer is the
// [auth.oauth2] issuer, used unless [web] issuer is set; obs receives
// the page's metrics (a *metrics.Metrics).
func (c WebConfig) HandlerConfig(issuer string, logger *slog.Logger, obs web.Observer) web.Config {
	wc := web.Config{
		PublicURL:       c.PublicURL,
		Issuer:          issuer,
		ClientID:        c.ClientID,
		UserClaim:       c.UserClaim,
		Admins:          c.Admins,
		AdminClaim:      c.AdminClaim,
		AdminValue:      c.AdminValue,
		SessionLifetime: c.SessionLifetime.Duration,
		IdleTimeout:     c.IdleTimeout.Duration,
		Logger:          logger,
		Observer:        obs,
	}
	if c.Issuer != "" {
		wc.Issuer = c.Issuer
	}
	return wc
}

// ClientSecret reads [web] client_secret_file; "" when unset.
func (c WebConfig) ClientSecret() (string, error) {
	if c.ClientSecretFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("web.client_secret_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// webServer is the page's listener.
type webServer struct {
	srv  *http.Server
	addr string
}

// startWeb serves h on [web] listen: over TLS with the current [tls]
// certificate (a reload's renewed certificate is used by the next
// handshake), or plain HTTP for a reverse proxy as configured.
func (gw *Gateway) startWeb(ctx context.Context, c WebConfig, h http.Handler) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("web.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(gw.logger.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if !c.PlainHTTP {
		gen := gw.current.Load()
		if gen == nil || gen.certs == nil {
			l.Close()
			return errors.New("web.listen: needs [tls] cert and key")
		}
		srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				certs := gw.current.Load().certs
				if certs == nil { // a reload dropped [tls]
					return nil, errors.New("web: no [tls] certificate")
				}
				return certs.getCertificate(hello)
			},
		}
		l = tls.NewListener(l, srv.TLSConfig)
		scheme = "https"
	}
	gw.web = &webServer{srv: srv, addr: l.Addr().String()}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			gw.done <- fmt.Errorf("web: %w", err)
		}
	}()
	gw.logger.Info("web page listening", "addr", gw.web.addr, "scheme", scheme, "public_url", c.PublicURL)
	return nil
}

// WebAddr is the bound [web] listen address, "" without a page.
func (gw *Gateway) WebAddr() string {
	if gw.web == nil {
		return ""
	}
	return gw.web.addr
}
