package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/vault"
)

func TestAuthConfigDefaults(t *testing.T) {
	cfg, err := parseConfig("x.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	if a.Mode != "passthrough" || a.Store != "sqlite:/var/lib/popbridge/vault.db" || a.UpstreamAuth != "oauth2" ||
		a.Mechanism != "auto" || a.OAuth2.Grant != "delegated" || a.KeyFile != "" || a.OAuth2.Scopes != nil {
		t.Errorf("[auth] defaults = %+v", a)
	}
}

// TestAuthConfigFile: a complete vault section parses; its files are
// checked as the daemon will use them, with file, line and key named.
func TestAuthConfigFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "vault.key")
	if err := vault.GenerateKeyFile(key); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "client.secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	open := filepath.Join(dir, "open.secret")
	os.WriteFile(open, []byte("s3cret\n"), 0o644)
	openKey := filepath.Join(dir, "open.key")
	b, _ := os.ReadFile(key)
	os.WriteFile(openKey, b, 0o644)

	good := `[auth]
mode = "vault"
store = "sqlite:` + filepath.Join(dir, "v.db") + `"
key_file = "` + key + `"
mechanism = "xoauth2"

[auth.oauth2]
provider = "microsoft"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_file = "` + secret + `"
scopes = ["https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"]
`
	cfg, err := parseConfig("x.toml", []byte(good))
	if err != nil {
		t.Fatalf("valid [auth]: %v", err)
	}
	if !cfg.Auth.Vault() || cfg.Auth.OAuth2.Tenant != "contoso.onmicrosoft.com" || len(cfg.Auth.OAuth2.Scopes) != 2 {
		t.Errorf("parsed %+v", cfg.Auth)
	}

	tests := []struct {
		name, toml string
		want       []string
	}{
		{"bad mode", "[auth]\nmode = \"oauth\"\n", []string{"x.toml:2: auth.mode:", `"oauth" is not one of passthrough | vault`}},
		{"key file open to others", strings.Replace(good, key, openKey, 1), []string{"x.toml:4: auth.key_file:", "0644"}},
		{"key file missing", strings.Replace(good, key, filepath.Join(dir, "none"), 1), []string{"x.toml:4: auth.key_file:"}},
		{"no key for delegated", strings.Replace(good, `key_file = "`+key+`"`, "", 1), []string{"x.toml:2: auth.key_file: is required"}},
		{"secret open to others", strings.Replace(good, secret, open, 1), []string{"x.toml:11: auth.oauth2.client_secret_file:", "chmod 600"}},
		{"bad provider", strings.Replace(good, `"microsoft"`, `"yahoo"`, 1), []string{"x.toml:8: auth.oauth2.provider:"}},
		{"oidc without issuer", strings.Replace(good, `"microsoft"`, `"oidc"`, 1), []string{"x.toml:8: auth.oauth2.issuer: is required"}},
		{"bad grant", good + "grant = \"password\"\n", []string{"x.toml:13: auth.oauth2.grant:"}},
		{"bad store", strings.Replace(good, "sqlite:", "mysql:", 1), []string{"x.toml:3: auth.store:"}},
		{"bad mechanism", strings.Replace(good, `"xoauth2"`, `"plain"`, 1), []string{"x.toml:5: auth.mechanism:"}},
		{"bad scope", strings.Replace(good, `"offline_access"]`, `"a b"]`, 1), []string{"x.toml:12: auth.oauth2.scopes:"}},
		{"master without user", "[auth]\nmode = \"vault\"\nupstream_auth = \"master\"\n",
			[]string{"x.toml:3: auth.master_user: is required", "x.toml:3: auth.master_password_file: is required"}},
		{"app-only without secret", "[auth]\nmode = \"vault\"\n[auth.oauth2]\nprovider = \"google\"\nclient_id = \"x\"\ngrant = \"client_credentials\"\n",
			[]string{"x.toml:6: auth.oauth2.client_secret_file: is required"}},
		{"unknown key", "[auth.oauth2]\nsecret = \"x\"\n", []string{"x.toml:2: auth.oauth2.secret: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("x.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
