package daemon

import (
	"fmt"
	"os"
	"strings"

	"github.com/popbridge/popbridge/internal/enum"
	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/vault/oauth"
)

// AuthConfig is the [auth] section: how POP3 logins are checked and how
// the gateway logs in upstream.
//
// In "passthrough" mode (the default) the POP3 username and password are
// the IMAP ones. In "vault" mode POP3 devices log in with app passwords
// the gateway issued (package vault), and the gateway logs in upstream
// with an OAuth 2.0 access token (upstream_auth = "oauth2", RFC 7628
// SASL) or as a master user acting for the mailbox owner
// (upstream_auth = "master").
type AuthConfig struct {
	Mode AuthMode `toml:"mode"`
	// Store is the vault's DSN (vault.Open): sqlite:PATH or postgres://...
	Store string `toml:"store"`
	// KeyFile holds the key sealing refresh tokens at rest (64 hex
	// digits, mode 0600 or 0400). Required for delegated OAuth2.
	KeyFile      string       `toml:"key_file"`
	UpstreamAuth UpstreamAuth `toml:"upstream_auth"`
	// Mechanism is the SASL mechanism of a bearer-token login.
	Mechanism AuthMechanism `toml:"mechanism"`
	// MasterUser and MasterPasswordFile: the Dovecot master user
	// (upstream_auth = "master").
	MasterUser         string `toml:"master_user"`
	MasterPasswordFile string `toml:"master_password_file"`

	OAuth2 OAuth2Config `toml:"oauth2"`
}

// OAuth2Config is the [auth.oauth2] section: the provider and the
// gateway's client registration there.
type OAuth2Config struct {
	Provider         OAuthProvider `toml:"provider"`
	Tenant           string        `toml:"tenant"`
	Issuer           string        `toml:"issuer"`
	ClientID         string        `toml:"client_id"`
	ClientSecretFile string        `toml:"client_secret_file"`
	Scopes           []string      `toml:"scopes"` // nil: the preset's
	// Grant is "delegated" (each user's refresh token, enrolled once) or
	// "client_credentials" (one app-only token for every mailbox).
	Grant OAuthGrant `toml:"grant"`
	// DemoListen is where the built-in demo provider serves when Issuer
	// is "demo" (with upstream.address = "demo").
	DemoListen string `toml:"demo_listen"`
}

// demoIssuer is the auth.oauth2.issuer that starts the built-in demo
// OpenID provider (demo.go).
const demoIssuer = "demo"

// AuthMode is [auth] mode.
type AuthMode string

// UpstreamAuth is [auth] upstream_auth: how the gateway logs in upstream
// in vault mode.
type UpstreamAuth string

// AuthMechanism is [auth] mechanism: the SASL mechanism of a bearer-token
// login (imapback.OAuthMechanism).
type AuthMechanism string

// OAuthProvider is [auth.oauth2] provider: a preset of vault/oauth.
type OAuthProvider string

// OAuthGrant is [auth.oauth2] grant.
type OAuthGrant string

const (
	AuthPassthrough AuthMode = "passthrough"
	AuthVault       AuthMode = "vault"

	UpstreamOAuth2 UpstreamAuth = "oauth2"
	UpstreamMaster UpstreamAuth = "master"

	GrantDelegated         OAuthGrant = "delegated"
	GrantClientCredentials OAuthGrant = "client_credentials"
)

var (
	authModes      = []AuthMode{AuthPassthrough, AuthVault}
	upstreamAuths  = []UpstreamAuth{UpstreamOAuth2, UpstreamMaster}
	authMechanisms = []AuthMechanism{"auto", "oauthbearer", "xoauth2"}
	oauthProviders = []OAuthProvider{oauth.ProviderMicrosoft, oauth.ProviderGoogle, oauth.ProviderOIDC}
	oauthGrants    = []OAuthGrant{GrantDelegated, GrantClientCredentials}
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *AuthMode) UnmarshalText(b []byte) error { return enum.Parse(v, b, authModes) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *UpstreamAuth) UnmarshalText(b []byte) error { return enum.Parse(v, b, upstreamAuths) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *AuthMechanism) UnmarshalText(b []byte) error { return enum.Parse(v, b, authMechanisms) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *OAuthProvider) UnmarshalText(b []byte) error { return enum.Parse(v, b, oauthProviders) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *OAuthGrant) UnmarshalText(b []byte) error { return enum.Parse(v, b, oauthGrants) }

// Check reports whether v is one of the allowed values.
func (v AuthMode) Check() error { return enum.Check(v, authModes) }

// Check reports whether v is one of the allowed values.
func (v UpstreamAuth) Check() error { return enum.Check(v, upstreamAuths) }

// Check reports whether v is one of the allowed values.
func (v AuthMechanism) Check() error { return enum.Check(v, authMechanisms) }

// Check reports whether v is one of the allowed values.
func (v OAuthProvider) Check() error { return enum.Check(v, oauthProviders) }

// Check reports whether v is one of the allowed values.
func (v OAuthGrant) Check() error { return enum.Check(v, oauthGrants) }

func defaultAuthConfig() AuthConfig {
	return AuthConfig{
		Mode:         AuthPassthrough,
		Store:        "sqlite:/var/lib/popbridge/vault.db",
		UpstreamAuth: UpstreamOAuth2,
		Mechanism:    "auto",
		OAuth2:       OAuth2Config{Grant: GrantDelegated, DemoListen: "127.0.0.1:1180"},
	}
}

// Vault reports whether [auth] mode is "vault".
func (a *AuthConfig) Vault() bool { return a.Mode == AuthVault }

// delegated reports whether logins need each user's stored grant.
func (a *AuthConfig) delegated() bool {
	return a.Vault() && a.UpstreamAuth == UpstreamOAuth2 && a.OAuth2.Grant == GrantDelegated
}

// validateAuth checks [auth]. Files it names are checked as the daemon
// will use them: the key file's permissions (vault.LoadKeyFile), the
// secret files readable and not empty. Outside vault mode the other keys
// are still checked for their form, so that a typo shows before the
// switch.
func (c *Config) validateAuth() []error {
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	a := &c.Auth
	// Fixed-value keys are checked with every other one (checkValues).
	for _, s := range a.OAuth2.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			check(invalid("auth.oauth2.scopes", "%q is not a scope token (RFC 6749 section 3.3)", s))
		}
	}
	if !a.Vault() {
		return errs
	}
	if !strings.HasPrefix(a.Store, "sqlite:") && !strings.HasPrefix(a.Store, "postgres://") && !strings.HasPrefix(a.Store, "postgresql://") {
		check(invalid("auth.store", "must start with sqlite: or postgres://"))
	}
	if a.KeyFile != "" {
		if _, err := vault.LoadKeyFile(a.KeyFile); err != nil {
			check(invalid("auth.key_file", "%s", strings.TrimPrefix(err.Error(), "vault: ")))
		}
	} else if a.delegated() {
		check(&fieldError{key: "auth.key_file", at: "auth.mode",
			msg: "is required for delegated OAuth2 (it seals the refresh tokens); create one with `popbridge keygen PATH`"})
	}
	switch a.UpstreamAuth {
	case UpstreamMaster:
		a.validateMaster(check)
	case UpstreamOAuth2:
		c.validateOAuth2(check)
	}
	return errs
}

// validateMaster checks the keys of upstream_auth = "master".
func (a *AuthConfig) validateMaster(check func(error)) {
	if a.MasterUser == "" {
		check(&fieldError{key: "auth.master_user", at: "auth.upstream_auth", msg: "is required for upstream_auth = \"master\""})
	} else {
		check(validText("auth.master_user", a.MasterUser, 1, 200))
	}
	if a.MasterPasswordFile == "" {
		check(&fieldError{key: "auth.master_password_file", at: "auth.upstream_auth", msg: "is required for upstream_auth = \"master\""})
	} else {
		check(secretFile("auth.master_password_file", a.MasterPasswordFile))
	}
}

// validateOAuth2 checks [auth.oauth2] for upstream_auth = "oauth2".
func (c *Config) validateOAuth2(check func(error)) {
	o := &c.Auth.OAuth2
	switch o.Provider {
	case "":
		check(&fieldError{key: "auth.oauth2.provider", at: "auth.mode", msg: "is required for upstream_auth = \"oauth2\": microsoft | google | oidc"})
	case "oidc":
		if o.Issuer == demoIssuer {
			if c.Upstream.Address != demoAddress {
				check(invalid("auth.oauth2.issuer", "\"demo\" needs upstream.address = \"demo\""))
			}
			check(validListen("auth.oauth2.demo_listen", o.DemoListen))
			break
		}
		if !strings.HasPrefix(o.Issuer, "https://") && !strings.HasPrefix(o.Issuer, "http://") {
			check(&fieldError{key: "auth.oauth2.issuer", at: "auth.oauth2.provider", msg: "is required for provider = \"oidc\" (an https:// URL)"})
		}
	}
	if o.ClientID == "" && o.Issuer != demoIssuer {
		check(&fieldError{key: "auth.oauth2.client_id", at: "auth.oauth2.provider", msg: "is required"})
	} else if o.ClientID != "" {
		check(validText("auth.oauth2.client_id", o.ClientID, 1, 500))
	}
	if o.ClientSecretFile != "" && o.Issuer != demoIssuer {
		check(secretFile("auth.oauth2.client_secret_file", o.ClientSecretFile))
	} else if o.Grant == GrantClientCredentials {
		check(&fieldError{key: "auth.oauth2.client_secret_file", at: "auth.oauth2.grant", msg: "is required for grant = \"client_credentials\""})
	}
}

// secretFile checks that a file holding a secret can be read, is not
// empty, and is not readable by group or others.
func secretFile(key, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return invalid(key, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return invalid(key, "%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return invalid(key, "%s has mode %04o: group and others must have no access (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return invalid(key, "%v", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return invalid(key, "%s is empty", path)
	}
	return nil
}

// readSecret reads a secret file checked by secretFile, without
// surrounding white space.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
