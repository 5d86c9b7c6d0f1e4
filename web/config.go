package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures the page.
type Config struct {
	// PublicURL is the address people open, e.g.
	// https://mail.example.org/popbridge; the redirect URI registered
	// with the provider is PublicURL + "/callback". A path is served
	// under that prefix (a reverse proxy passes it through unchanged).
	PublicURL string
	// Issuer is the OpenID Connect issuer; discovery is at Issuer +
	// "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret override those of the vault's provider
	// (needed when New gets no provider).
	ClientID     string
	ClientSecret string
	// UserClaim names the claim holding the vault user name: "email"
	// (default), "preferred_username", "upn" or "sub". It is read from
	// the ID token, else from the UserInfo response.
	UserClaim string
	// Admins may use the admin view, by user name.
	Admins []string
	// AdminClaim and AdminValue make admins of users whose claim (a
	// string or a list of strings, e.g. "groups") holds AdminValue.
	AdminClaim string
	AdminValue string
	// SessionLifetime bounds a session from sign-in (default 8 h);
	// IdleTimeout ends it after inactivity (default 1 h).
	SessionLifetime time.Duration
	IdleTimeout     time.Duration
	// InsecureCookies drops the Secure attribute, for plain-HTTP tests
	// only: browsers do not send Secure cookies over http except to
	// localhost.
	InsecureCookies bool
	// HTTPClient makes the requests to the provider (default: 30 s
	// timeout).
	HTTPClient *http.Client
	// Logger gets sign-ins and operations, never a token or password.
	Logger   *slog.Logger
	Observer Observer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Claims a user name may come from.
var userClaims = []string{"email", "preferred_username", "upn", "sub"}

// Validate checks cfg without contacting anyone.
func (cfg *Config) Validate() error {
	if cfg.PublicURL == "" {
		return errors.New("web: public URL is required (the redirect URI is built from it)")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("web: public URL %q: want http(s)://HOST[:PORT][/PATH]", cfg.PublicURL)
	}
	if u.Scheme == "http" && !cfg.InsecureCookies && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("web: public URL %q is not https: cookies are Secure, browsers would not send them", cfg.PublicURL)
	}
	if cfg.Issuer == "" {
		return errors.New("web: the OpenID Connect issuer is required")
	}
	if cfg.UserClaim != "" && !contains(userClaims, cfg.UserClaim) {
		return fmt.Errorf("web: user claim %q: must be one of %s", cfg.UserClaim, strings.Join(userClaims, ", "))
	}
	if (cfg.AdminClaim == "") != (cfg.AdminValue == "") {
		return errors.New("web: admin claim and admin value go together")
	}
	if cfg.SessionLifetime < 0 || cfg.IdleTimeout < 0 {
		return errors.New("web: session lifetime and idle timeout must not be negative")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	return strings.HasPrefix(h, "127.") || h == "::1"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
