package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Provider presets for Config.Provider.
const (
	ProviderMicrosoft = "microsoft" // Microsoft Entra ID (Microsoft 365, Outlook.com)
	ProviderGoogle    = "google"    // Google (Gmail, Workspace)
	ProviderOIDC      = "oidc"      // any OpenID Connect provider, by discovery
)

// Client authentication at the token endpoint (RFC 6749 section 2.3.1).
const (
	ClientAuthBasic = "basic" // HTTP Basic (client_secret_basic)
	ClientAuthPost  = "post"  // in the form body (client_secret_post)
)

// Config describes an OAuth 2.0 provider and the gateway's client
// registration there.
type Config struct {
	// Provider is "microsoft", "google" or "oidc".
	Provider string
	// Tenant is the Microsoft Entra tenant (directory ID or domain);
	// default "common" (work, school and personal accounts). App-only
	// access (AppScopes) needs the mailbox's own tenant.
	Tenant string
	// Issuer is the OIDC issuer URL; the endpoints are read from
	// Issuer + "/.well-known/openid-configuration" (OpenID Connect
	// Discovery 1.0 section 4).
	Issuer   string
	ClientID string
	// ClientSecretFile holds the client secret (surrounding whitespace
	// ignored). Empty for a public client (device flow only).
	ClientSecretFile string
	// ClientSecret is the secret itself, for tests and embedding; at most
	// one of ClientSecret and ClientSecretFile may be set.
	ClientSecret string
	// Scopes are requested for delegated access (device flow). Defaults:
	// microsoft "https://outlook.office.com/IMAP.AccessAsUser.All
	// offline_access"; google "https://mail.google.com/"; oidc "openid
	// offline_access".
	Scopes []string
	// AppScopes are requested with the client-credentials grant.
	// Defaults: microsoft "https://outlook.office365.com/.default";
	// others none.
	AppScopes []string
	// ClientAuth is "basic" or "post"; default post for microsoft and
	// google, for oidc basic unless discovery lists only post.
	ClientAuth string
	// AuthURL, DeviceAuthURL and TokenURL override the preset's or
	// discovered endpoints.
	AuthURL       string
	DeviceAuthURL string
	TokenURL      string
	// HTTPClient makes every request; default a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// Provider makes the token requests of one provider for one client. It
// is safe for concurrent use.
type Provider struct {
	clientID     string
	clientSecret string
	clientAuth   string
	authURL      string
	authParams   map[string]string // extra authorization request parameters
	deviceURL    string
	tokenURL     string
	scopes       []string
	appScopes    []string
	hc           *http.Client
	now          func() time.Time
	sleep        func(ctx context.Context, d time.Duration) error
}

// NewProvider validates cfg, reads the client secret and, for oidc, runs
// discovery (the only request it makes).
func NewProvider(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("oauth: client ID is required")
	}
	p := &Provider{
		clientID:  cfg.ClientID,
		hc:        cfg.HTTPClient,
		now:       time.Now,
		sleep:     sleepCtx,
		scopes:    cfg.Scopes,
		appScopes: cfg.AppScopes,
	}
	if p.hc == nil {
		p.hc = &http.Client{Timeout: 30 * time.Second}
	}
	secret, err := clientSecret(cfg)
	if err != nil {
		return nil, err
	}
	p.clientSecret = secret

	auth, err := p.endpoints(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.AuthURL != "" {
		p.authURL = cfg.AuthURL
	}
	if cfg.DeviceAuthURL != "" {
		p.deviceURL = cfg.DeviceAuthURL
	}
	if cfg.TokenURL != "" {
		p.tokenURL = cfg.TokenURL
	}
	if p.tokenURL == "" {
		return nil, errors.New("oauth: no token endpoint")
	}
	switch cfg.ClientAuth {
	case "":
		p.clientAuth = auth
	case ClientAuthBasic, ClientAuthPost:
		p.clientAuth = cfg.ClientAuth
	default:
		return nil, fmt.Errorf("oauth: client auth %q: must be basic or post", cfg.ClientAuth)
	}
	return p, nil
}

// clientSecret returns the client secret, given or read from its file.
func clientSecret(cfg Config) (string, error) {
	switch {
	case cfg.ClientSecret != "" && cfg.ClientSecretFile != "":
		return "", errors.New("oauth: set client secret or client secret file, not both")
	case cfg.ClientSecretFile != "":
		b, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("oauth: client secret: %w", err)
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("oauth: client secret file %s is empty", cfg.ClientSecretFile)
		}
		return secret, nil
	default:
		return cfg.ClientSecret, nil
	}
}

// endpoints sets p's endpoints and default scopes for cfg.Provider (for
// oidc, by discovery) and returns the client authentication the provider
// expects unless configured.
func (p *Provider) endpoints(ctx context.Context, cfg Config) (auth string, err error) {
	auth = ClientAuthPost
	switch cfg.Provider {
	case ProviderMicrosoft:
		tenant := cfg.Tenant
		if tenant == "" {
			tenant = "common"
		}
		if strings.ContainsAny(tenant, "/?#% ") {
			return "", fmt.Errorf("oauth: tenant %q: not a tenant ID or domain", tenant)
		}
		base := "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/"
		p.authURL, p.deviceURL, p.tokenURL = base+"authorize", base+"devicecode", base+"token"
		if p.scopes == nil {
			p.scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
		}
		if p.appScopes == nil {
			p.appScopes = []string{"https://outlook.office365.com/.default"}
		}
	case ProviderGoogle:
		// Google's device flow allows only a short list of scopes, which
		// does not include Gmail's: enrol with StartAuthCode instead.
		p.authURL = "https://accounts.google.com/o/oauth2/v2/auth"
		p.deviceURL, p.tokenURL = "https://oauth2.googleapis.com/device/code", "https://oauth2.googleapis.com/token"
		// Google returns a refresh token only for offline access, and
		// again on a later consent only when asked to prompt.
		p.authParams = map[string]string{"access_type": "offline", "prompt": "consent"}
		if p.scopes == nil {
			p.scopes = []string{"https://mail.google.com/"}
		}
	case ProviderOIDC:
		if cfg.Issuer == "" {
			return "", errors.New("oauth: oidc provider needs an issuer")
		}
		d, err := discover(ctx, p.hc, cfg.Issuer)
		if err != nil {
			return "", err
		}
		p.authURL, p.deviceURL, p.tokenURL = d.AuthorizationEndpoint, d.DeviceAuthorizationEndpoint, d.TokenEndpoint
		if len(d.TokenEndpointAuthMethods) == 0 || slices.Contains(d.TokenEndpointAuthMethods, "client_secret_basic") {
			auth = ClientAuthBasic
		}
		if p.scopes == nil {
			p.scopes = []string{"openid", "offline_access"}
		}
	default:
		return "", fmt.Errorf("oauth: provider %q: must be microsoft, google or oidc", cfg.Provider)
	}
	return auth, nil
}

// TokenURL returns the token endpoint in use.
func (p *Provider) TokenURL() string { return p.tokenURL }

// DeviceAuthURL returns the device authorization endpoint in use; empty
// if the provider has none.
func (p *Provider) DeviceAuthURL() string { return p.deviceURL }

// discovery is the part of the OpenID Provider Metadata used here.
type discovery struct {
	Issuer                      string   `json:"issuer"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	TokenEndpointAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
}

func discover(ctx context.Context, hc *http.Client, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: "discovery", Err: err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &Error{Kind: KindTemporary, Op: "discovery", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Kind: kindForStatus(resp.StatusCode), Op: "discovery", Status: resp.StatusCode}
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, &Error{Kind: KindTemporary, Op: "discovery", Err: err}
	}
	// OpenID Connect Discovery 1.0 section 4.3: the issuer must match.
	if strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return nil, &Error{Kind: KindPermanent, Op: "discovery", Err: fmt.Errorf("issuer %q in metadata differs", d.Issuer)}
	}
	if d.TokenEndpoint == "" {
		return nil, &Error{Kind: KindPermanent, Op: "discovery", Err: errors.New("no token_endpoint in metadata")}
	}
	return &d, nil
}

func kindForStatus(status int) Kind {
	if status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout {
		return KindTemporary
	}
	return KindPermanent
}

// tokenResponse is a token endpoint's answer, success (RFC 6749 section
// 5.1) or error (section 5.2).
type tokenResponse struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    json.Number `json:"expires_in"` // some providers send a string
	RefreshToken string      `json:"refresh_token"`

	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// post sends form to endpoint with the client's authentication and
// decodes the JSON answer. A non-nil *Error is returned for transport
// failures and for answers without a usable body; OAuth error answers
// are returned as a tokenResponse with Error set and the HTTP status.
func (p *Provider) post(ctx context.Context, op, endpoint string, form url.Values) (*tokenResponse, int, error) {
	form.Set("client_id", p.clientID)
	if p.clientSecret != "" && p.clientAuth == ClientAuthPost {
		form.Set("client_secret", p.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, &Error{Kind: KindPermanent, Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.clientSecret != "" && p.clientAuth == ClientAuthBasic {
		// RFC 6749 section 2.3.1: both form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		// url.Error names the endpoint and the cause; the form (with any
		// token) is not part of it.
		return nil, 0, &Error{Kind: KindTemporary, Op: op, Err: err}
	}
	defer resp.Body.Close()
	var tr tokenResponse
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&tr); err != nil {
		return nil, resp.StatusCode, &Error{Kind: kindForStatus(resp.StatusCode), Op: op, Status: resp.StatusCode,
			Err: errors.New("answer is not JSON")}
	}
	if tr.Error == "" && resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, &Error{Kind: kindForStatus(resp.StatusCode), Op: op, Status: resp.StatusCode}
	}
	return &tr, resp.StatusCode, nil
}

// oauthError classifies an OAuth error answer of a token request.
func oauthError(op string, tr *tokenResponse, status int) *Error {
	e := &Error{Op: op, Code: plainCode(tr.Error), Status: status, Description: tr.ErrorDescription}
	switch {
	case tr.Error == "invalid_grant":
		e.Kind = KindReenroll
	case tr.Error == "temporarily_unavailable" || tr.Error == "server_error" || status >= 500 || status == http.StatusTooManyRequests:
		e.Kind = KindTemporary
	default:
		e.Kind = KindPermanent
	}
	return e
}

// tokens turns a successful answer into Tokens.
func (p *Provider) tokens(op string, tr *tokenResponse, status int) (Tokens, error) {
	if tr.AccessToken == "" {
		return Tokens{}, &Error{Kind: KindTemporary, Op: op, Status: status, Err: errors.New("no access_token in answer")}
	}
	// RFC 6750: the type is case-insensitive; only bearer tokens can be
	// sent with XOAUTH2 and OAUTHBEARER.
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return Tokens{}, &Error{Kind: KindPermanent, Op: op, Status: status, Err: errors.New("token type is not bearer")}
	}
	t := Tokens{Access: tr.AccessToken, Refresh: tr.RefreshToken}
	if secs, err := tr.ExpiresIn.Int64(); err == nil && secs > 0 {
		t.AccessExpiry = p.now().Add(time.Duration(secs) * time.Second)
	} else {
		// RFC 6749 section 5.1 recommends expires_in; without it,
		// assume an hour, the common lifetime, rather than "forever".
		t.AccessExpiry = p.now().Add(time.Hour)
	}
	return t, nil
}

// refresh runs the refresh-token grant (RFC 6749 section 6). The
// returned Tokens carry a new refresh token only if the provider rotated
// it.
func (p *Provider) refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	tr, status, err := p.post(ctx, "refresh", p.tokenURL, form)
	if err != nil {
		return Tokens{}, err
	}
	if tr.Error != "" {
		return Tokens{}, oauthError("refresh", tr, status)
	}
	return p.tokens("refresh", tr, status)
}

// clientCredentials runs the client-credentials grant (RFC 6749 section
// 4.4).
func (p *Provider) clientCredentials(ctx context.Context) (Tokens, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(p.appScopes) > 0 {
		form.Set("scope", strings.Join(p.appScopes, " "))
	}
	tr, status, err := p.post(ctx, "client_credentials", p.tokenURL, form)
	if err != nil {
		return Tokens{}, err
	}
	if tr.Error != "" {
		e := oauthError("client_credentials", tr, status)
		if e.Kind == KindReenroll {
			e.Kind = KindPermanent // no grant to re-enrol: a configuration problem
		}
		return Tokens{}, e
	}
	t, err := p.tokens("client_credentials", tr, status)
	t.Refresh = ""
	return t, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
