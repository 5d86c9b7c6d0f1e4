package dovecottest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// OAuth2 configures Dovecot's oauth2 passdb (Dovecot 2.3) for XOAUTH2
// and OAUTHBEARER logins: each token is checked by RFC 7662 token
// introspection (introspection_mode = post) at IntrospectionURL with
// HTTP Basic client credentials, and must be active and name the login
// user in UsernameAttribute. Password logins keep using the passwd-file.
// Users must still be given to Start, so that their homes exist.
type OAuth2 struct {
	IntrospectionURL string // http://127.0.0.1:PORT/... (loopback only)
	ClientID         string // the resource server's client at the provider
	ClientSecret     string
	// UsernameAttribute is the introspection field (or JWT claim) holding
	// the user's login name; default "username" ("sub" with Local).
	UsernameAttribute string
	// Local, if set, validates signed JWT access tokens locally
	// (introspection_mode = local) with this key instead of asking the
	// provider: a revoked token then stays valid until it expires.
	Local *JWTKey
}

// JWTKey is a provider's public signing key.
type JWTKey struct {
	ID  string // kid
	Alg string // e.g. RS256
	PEM []byte // PKIX public key, PEM
}

// writeKeys stores o.Local where Dovecot's dict lookup finds it:
// DIR/<azp>/<alg>/<kid>, azp "default" for tokens without one.
func (o *OAuth2) writeKeys(dir string) error {
	if o.Local == nil {
		return nil
	}
	d := filepath.Join(dir, "default", o.Local.Alg)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, o.Local.ID), o.Local.PEM, 0o644)
}

// render returns the oauth2 passdb's settings file; keysDir holds the
// keys for local validation.
func (o *OAuth2) render(keysDir string) string {
	u, err := url.Parse(o.IntrospectionURL)
	if err != nil {
		panic(fmt.Sprintf("dovecottest: introspection URL %q: %v", o.IntrospectionURL, err))
	}
	u.User = url.UserPassword(o.ClientID, o.ClientSecret)
	attr := o.UsernameAttribute
	if attr == "" {
		attr = "username"
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by popbridge's dovecottest for one test; do not edit.")
	if o.Local != nil {
		if o.UsernameAttribute == "" {
			attr = "sub"
		}
		w("introspection_mode = local")
		w("local_validation_key_dict = fs:posix:prefix=%s/", keysDir)
		w("username_attribute = %s", attr)
		w("username_format = %%u")
		return b.String()
	}
	w("introspection_mode = post")
	w("introspection_url = %s", u.String())
	w("username_attribute = %s", attr)
	w("active_attribute = active")
	w("active_value = true")
	w("force_introspection = yes")
	return b.String()
}
