package oidctest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Options configure a Server.
type Options struct {
	// AccessTokenLifetime is the lifetime of access tokens (default 5
	// minutes).
	AccessTokenLifetime time.Duration
	// JWTAccessTokens makes access tokens signed JWTs (RS256, keys at
	// KeysURL) instead of opaque ones.
	JWTAccessTokens bool
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
	// Listen is the loopback address to serve on; default a free port
	// on 127.0.0.1. The gateway's demo sets it so that admin commands in
	// another process find the provider.
	Listen string
}

// Fixed client registrations. Every client is confidential
// (client_secret_basic or client_secret_post).
const (
	// ClientID may use the device and authorization-code grants (with
	// RedirectURI) and refresh tokens.
	ClientID     = "popbridge"
	ClientSecret = "popbridge-secret"
	// AppClientID may use the client-credentials grant.
	AppClientID     = "popbridge-app"
	AppClientSecret = "popbridge-app-secret"
	// ResourceID is a resource server (the IMAP server) that may
	// introspect tokens.
	ResourceID     = "imap"
	ResourceSecret = "imap-secret"
)

// Server is a running provider.
type Server struct {
	// Issuer is the issuer URL, http://127.0.0.1:PORT; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string

	st  *storage
	srv *http.Server
	ln  net.Listener

	mu    sync.Mutex
	calls map[string]int // token endpoint requests by grant_type
}

// Start starts a provider on a loopback port. Close stops it.
func Start(opts Options) (*Server, error) {
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = 5 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st, err := newStorage(opts.AccessTokenLifetime)
	if err != nil {
		return nil, err
	}
	tokenType := op.AccessTokenTypeBearer
	if opts.JWTAccessTokens {
		tokenType = op.AccessTokenTypeJWT
	}
	st.clients[ClientID] = &client{id: ClientID, secret: ClientSecret, tokenType: tokenType, redirects: []string{RedirectURI},
		grants: []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}}
	st.clients[AppClientID] = &client{id: AppClientID, secret: AppClientSecret, tokenType: tokenType,
		grants: []oidc.GrantType{oidc.GrantTypeClientCredentials}}
	st.clients[ResourceID] = &client{id: ResourceID, secret: ResourceSecret, tokenType: tokenType}

	addr := opts.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Issuer: "http://" + ln.Addr().String(), st: st, ln: ln, calls: map[string]int{}}
	cfg := &op.Config{
		CryptoKey:             sha256.Sum256([]byte(newID())),
		AuthMethodPost:        true,
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: time.Second,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(s.Issuer), op.WithAllowInsecure(), op.WithLogger(log))
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/device", s.devicePage)
	mux.HandleFunc("POST /device/login", s.deviceLogin)
	mux.HandleFunc("/login", s.loginPage) // authcode.go
	mux.Handle("/", provider)
	s.srv = &http.Server{Handler: s.count(mux), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the provider; later requests fail to connect.
func (s *Server) Close() error { return s.srv.Close() }

// count counts token endpoint requests by grant type.
func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			if err := r.ParseForm(); err == nil {
				s.mu.Lock()
				s.calls[r.PostForm.Get("grant_type")]++
				s.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Grant types, for TokenCalls.
const (
	GrantRefresh           = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantAuthorizationCode = "authorization_code"
)

// TokenCalls returns how many token endpoint requests of grantType the
// provider received.
func (s *Server) TokenCalls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[grantType]
}

// TokenURL, IntrospectionURL and KeysURL are zitadel's default endpoints.
func (s *Server) TokenURL() string         { return s.Issuer + "/oauth/token" }
func (s *Server) IntrospectionURL() string { return s.Issuer + "/oauth/introspect" }
func (s *Server) KeysURL() string          { return s.Issuer + "/keys" }

// SigningKey returns the key ID and the PEM (PKIX) public key that sign
// JWT access tokens, with their algorithm.
func (s *Server) SigningKey() (kid, alg string, pemKey []byte) {
	der, err := x509.MarshalPKIXPublicKey(&s.st.key.key.PublicKey)
	if err != nil {
		panic(err) // an RSA public key always marshals
	}
	return s.st.key.id, "RS256", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// AddUser registers a user who can approve devices.
func (s *Server) AddUser(name, password string) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.users[name] = password
}

// RevokeUser deletes every refresh and access token of user, as an admin
// revoking consent would, and returns how many refresh tokens it deleted.
func (s *Server) RevokeUser(user string) int { return s.st.revokeUser(user) }

// ExpireAccessTokens makes every issued access token expired.
func (s *Server) ExpireAccessTokens() { s.st.expireAccessTokens() }

// RefreshTokens returns how many live refresh tokens user has.
func (s *Server) RefreshTokens(user string) int {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	n := 0
	for _, rt := range s.st.refresh {
		if rt.subject == user {
			n++
		}
	}
	return n
}

var pages = template.Must(template.New("").Parse(`
{{define "code"}}<!DOCTYPE html><title>Connect a device</title>
<form method="post" action="/device"><label>Code <input name="user_code"></label><button>Next</button></form>{{end}}
{{define "login"}}<!DOCTYPE html><title>Sign in</title>{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="/device/login"><input type="hidden" name="user_code" value="{{.Code}}">
<label>User <input name="username"></label> <label>Password <input type="password" name="password"></label>
<button name="action" value="allow">Allow</button> <button name="action" value="deny">Deny</button></form>{{end}}
{{define "authlogin"}}<!DOCTYPE html><title>Sign in</title>{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="/login"><input type="hidden" name="authRequestID" value="{{.ID}}">
<label>User <input name="username"></label> <label>Password <input type="password" name="password"></label>
<button>Sign in</button></form>{{end}}
{{define "done"}}<!DOCTYPE html><title>Done</title><p id="result">Device {{.}}. You can return to the device.</p>{{end}}
`))

// devicePage is the verification URI (RFC 8628 section 3.3): it asks for
// the user code, or takes it from the query (verification_uri_complete),
// then shows the sign-in form.
func (s *Server) devicePage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	code := strings.TrimSpace(r.Form.Get("user_code"))
	if code == "" {
		pages.ExecuteTemplate(w, "code", nil)
		return
	}
	pages.ExecuteTemplate(w, "login", map[string]string{"Code": code})
}

func (s *Server) deviceLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	code, user := r.PostForm.Get("user_code"), r.PostForm.Get("username")
	if !s.st.checkUser(user, r.PostForm.Get("password")) {
		w.WriteHeader(http.StatusForbidden)
		pages.ExecuteTemplate(w, "login", map[string]string{"Code": code, "Error": "wrong user or password"})
		return
	}
	allow := r.PostForm.Get("action") == "allow"
	if err := s.st.decideDevice(code, user, allow); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		pages.ExecuteTemplate(w, "login", map[string]string{"Code": code, "Error": err.Error()})
		return
	}
	result := "denied"
	if allow {
		result = "authorised"
	}
	pages.ExecuteTemplate(w, "done", result)
}

// ApproveDevice acts as user in a browser: it opens verificationURI,
// submits userCode there, then signs in and allows (or denies) the
// device. It fails if any page is not what a user would see.
func ApproveDevice(ctx context.Context, verificationURI, userCode, user, password string, allow bool) error {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string, form url.Values) (string, error) {
		var req *http.Request
		var err error
		if form == nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
			if req != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		}
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return string(b), fmt.Errorf("%s %s: HTTP %d", req.Method, u, resp.StatusCode)
		}
		return string(b), nil
	}
	page, err := get(verificationURI, nil)
	if err != nil {
		return err
	}
	if !strings.Contains(page, `name="user_code"`) {
		return errors.New("verification page has no user code field")
	}
	page, err = get(verificationURI, url.Values{"user_code": {userCode}})
	if err != nil {
		return err
	}
	if !strings.Contains(page, `name="password"`) {
		return errors.New("no sign-in form after the user code")
	}
	action := "deny"
	if allow {
		action = "allow"
	}
	u, err := url.JoinPath(verificationURI, "login")
	if err != nil {
		return err
	}
	page, err = get(u, url.Values{"user_code": {userCode}, "username": {user}, "password": {password}, "action": {action}})
	if err != nil {
		return err
	}
	if !strings.Contains(page, `id="result"`) {
		return errors.New("no result page after sign-in")
	}
	return nil
}

// AddRedirectURI registers another redirect URI of ClientID, for a
// relying party (the web page) whose address is known only once its test
// server listens. Call it before the first authorization request.
func (s *Server) AddRedirectURI(uri string) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	c := s.st.clients[ClientID]
	c.redirects = append(slices.Clip(c.redirects), uri)
}
