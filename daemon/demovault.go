package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/popbridge/popbridge/internal/oidctest"
)

// The vault demo: with upstream.address = "demo" and auth.oauth2.issuer
// = "demo", the gateway also runs an OpenID provider (the test suite's,
// on zitadel/oidc) at auth.oauth2.demo_listen, and the demo IMAP server
// accepts OAUTHBEARER and XOAUTH2 tokens that provider vouches for. The
// admin commands, in another process, reach it at the same address.

// demoIssuerURL is the demo provider's issuer.
func demoIssuerURL(o OAuth2Config) string { return "http://" + o.DemoListen }

// startDemoProvider starts the demo provider with the demo user, whose
// sign-in (on the provider's device page) is logged: these are demo
// credentials, which a newcomer needs to approve an enrolment.
func startDemoProvider(cfg *Config, logger *slog.Logger) (*oidctest.Server, error) {
	op, err := oidctest.Start(oidctest.Options{Listen: cfg.Auth.OAuth2.DemoListen,
		Logger: logger.With("component", "demo-provider")})
	if err != nil {
		return nil, fmt.Errorf("auth.oauth2.demo_listen: %w", err)
	}
	op.AddUser(cfg.Demo.User, cfg.Demo.Password)
	logger.Warn("DEMO OPENID PROVIDER: approve enrolments on its device page by signing in with the demo user's name and password",
		"issuer", op.Issuer, "device_page", op.Issuer+"/device", "sign_in_user", cfg.Demo.User, "sign_in_password", cfg.Demo.Password)
	return op, nil
}

// demoCheckBearer asks the demo provider whether a token is active and
// the user's (RFC 7662 introspection), as a real IMAP server's OAuth2
// support does.
func demoCheckBearer(op *oidctest.Server) func(user, token string) bool {
	hc := &http.Client{Timeout: 10 * time.Second}
	return func(user, token string) bool {
		req, err := http.NewRequest(http.MethodPost, op.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(oidctest.ResourceID, oidctest.ResourceSecret)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Active   bool   `json:"active"`
			Username string `json:"username"`
		}
		return json.NewDecoder(resp.Body).Decode(&r) == nil && r.Active && r.Username == user
	}
}
