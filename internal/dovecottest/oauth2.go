package dovecottest

import (
	"fmt"
	"net/url"
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
	// UsernameAttribute is the introspection field holding the user's
	// login name; default "username".
	UsernameAttribute string
}

// render returns the oauth2 passdb's settings file.
func (o *OAuth2) render() string {
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
	w("introspection_mode = post")
	w("introspection_url = %s", u.String())
	w("username_attribute = %s", attr)
	w("active_attribute = active")
	w("active_value = true")
	w("force_introspection = yes")
	return b.String()
}
