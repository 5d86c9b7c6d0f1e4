package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage implements op.Storage, op.ClientCredentialsStorage and
// op.DeviceAuthorizationStorage in memory.
type storage struct {
	mu       sync.Mutex
	lifetime time.Duration // of access tokens
	key      signingKey
	clients  map[string]*client
	users    map[string]string // name -> password
	tokens   map[string]*token // access tokens by ID
	refresh  map[string]*refreshToken
	devices  map[string]*deviceEntry // by device code
	byUser   map[string]string       // user code -> device code
	authReqs map[string]*authRequest // by ID (authcode.go)
	codes    map[string]string       // authorization code -> request ID
}

type token struct {
	id, clientID, subject, refreshID string
	audience, scopes                 []string
	expiry                           time.Time
}

type refreshToken struct {
	token, clientID, subject string
	audience, scopes         []string
	authTime                 time.Time
	amr                      []string
	accessID                 string
}

type deviceEntry struct {
	userCode string
	state    *op.DeviceAuthorizationState
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.ClientCredentialsStorage   = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
)

func newStorage(lifetime time.Duration) (*storage, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &storage{
		lifetime: lifetime,
		key:      signingKey{id: newID(), key: k},
		clients:  map[string]*client{},
		users:    map[string]string{},
		tokens:   map[string]*token{},
		refresh:  map[string]*refreshToken{},
		devices:  map[string]*deviceEntry{},
		byUser:   map[string]string{},
		authReqs: map[string]*authRequest{},
		codes:    map[string]string{},
	}, nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkUser reports whether name and password match a user.
func (s *storage) checkUser(name, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.users[name]
	return ok && p == password
}

// newToken stores an access token; s.mu is held.
func (s *storage) newToken(clientID, refreshID, subject string, audience, scopes []string) *token {
	t := &token{id: newID(), clientID: clientID, refreshID: refreshID, subject: subject,
		audience: audience, scopes: scopes, expiry: time.Now().Add(s.lifetime)}
	s.tokens[t.id] = t
	return t
}

// CreateAccessToken serves grants without a refresh token (client
// credentials; device or code grants without offline_access).
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID := ""
	if c, ok := req.(interface{ GetClientID() string }); ok {
		clientID = c.GetClientID()
	}
	t := s.newToken(clientID, "", req.GetSubject(), req.GetAudience(), req.GetScopes())
	return t.id, t.expiry, nil
}

// CreateAccessAndRefreshTokens serves the device and code grants with
// offline_access (currentRefreshToken empty) and the refresh grant, which
// rotates: the old refresh token and its access token stop working.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := &refreshToken{token: newID(), subject: req.GetSubject(), audience: req.GetAudience(), scopes: req.GetScopes()}
	switch r := req.(type) {
	case *op.DeviceAuthorizationState:
		rt.clientID, rt.authTime, rt.amr = r.ClientID, r.AuthTime, r.AMR
	case *authRequest:
		rt.clientID, rt.authTime, rt.amr = r.clientID, r.authTime, r.GetAMR()
	case *refreshRequest:
		old, ok := s.refresh[current]
		if !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant()
		}
		delete(s.refresh, current)
		delete(s.tokens, old.accessID)
		rt.clientID, rt.authTime, rt.amr = old.clientID, old.authTime, old.amr
	default:
		return "", "", time.Time{}, errors.New("unsupported token request")
	}
	t := s.newToken(rt.clientID, rt.token, rt.subject, rt.audience, rt.scopes)
	rt.accessID = t.id
	s.refresh[rt.token] = rt
	return t.id, rt.token, t.expiry, nil
}

// refreshRequest implements op.RefreshTokenRequest over a copy of a
// refresh token.
type refreshRequest struct{ rt refreshToken }

func (r *refreshRequest) GetAMR() []string            { return r.rt.amr }
func (r *refreshRequest) GetAudience() []string       { return r.rt.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rt.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.rt.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rt.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.rt.scopes = s }

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[rt]
	if !ok {
		return nil, errors.New("refresh token unknown, rotated or revoked")
	}
	return &refreshRequest{rt: *t}, nil
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	s.revokeUser(userID)
	return nil
}

// revokeUser deletes every token of user, as an admin revoking the app's
// consent would; it returns how many refresh tokens it deleted.
func (s *storage) revokeUser(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, rt := range s.refresh {
		if rt.subject == user {
			delete(s.refresh, k)
			n++
		}
	}
	for k, t := range s.tokens {
		if t.subject == user {
			delete(s.tokens, k)
		}
	}
	return n
}

// expireAccessTokens makes every access token expired.
func (s *storage) expireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expiry = time.Now().Add(-time.Second)
	}
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, rt string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[rt]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.subject, t.token, nil
}

func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.tokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refresh[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.refresh, tokenOrID)
		delete(s.tokens, rt.accessID)
	}
	return nil // RFC 7009 section 2.2: unknown tokens are fine
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return &s.key, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{&s.key}}, nil }

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

// userinfo fills the claims a mail server may take the login name from:
// sub, preferred_username and email are all the user's name.
func (s *storage) userinfo(ui *oidc.UserInfo, subject string, scopes []string) {
	ui.Subject = subject
	ui.PreferredUsername = subject
	if slices.Contains(scopes, oidc.ScopeEmail) || slices.Contains(scopes, "mail") {
		ui.Email = subject
	}
}

func (s *storage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	s.userinfo(ui, userID, scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expiry) {
		return errors.New("token invalid or expired")
	}
	s.userinfo(ui, t.subject, t.scopes)
	return nil
}

// SetIntrospectionFromToken answers RFC 7662 introspection for any
// registered client (a resource server such as the IMAP server): a token
// that is unknown (revoked, rotated away) or expired is inactive.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, r *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expiry) {
		return errors.New("token invalid or expired")
	}
	ui := new(oidc.UserInfo)
	s.userinfo(ui, t.subject, t.scopes)
	r.SetUserInfo(ui)
	r.Username = t.subject
	r.Scope = t.scopes
	r.ClientID = t.clientID
	r.Expiration = oidc.FromTime(t.expiry)
	r.TokenType = oidc.BearerToken
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	// JWT access tokens carry the login name for servers that validate
	// locally and do not read sub.
	return map[string]any{"preferred_username": userID, "email": userID}, nil
}

func (s *storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client authentication is not offered")
}

func (s *storage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not offered")
}

func (s *storage) Health(context.Context) error { return nil }

// Client credentials (RFC 6749 section 4.4).

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret || !slices.Contains(c.grants, oidc.GrantTypeClientCredentials) {
		return nil, errors.New("invalid client credentials")
	}
	return c, nil
}

func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &oidc.JWTTokenRequest{Subject: id, Audience: []string{id}, Scopes: scopes}, nil
}

// Device authorization (RFC 8628).

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[clientID]; !ok {
		return errors.New("client not found")
	}
	if _, ok := s.byUser[userCode]; ok {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceEntry{userCode: userCode,
		state: &op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}}
	s.byUser[userCode] = deviceCode
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[deviceCode]
	if !ok || e.state.ClientID != clientID {
		return nil, errors.New("device code not found for client")
	}
	st := *e.state
	if st.Done {
		// A device code yields tokens once.
		delete(s.devices, deviceCode)
		delete(s.byUser, e.userCode)
	}
	return &st, nil
}

// decideDevice completes (allow) or denies the authorization with
// userCode on behalf of user.
func (s *storage) decideDevice(userCode, user string, allow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[s.byUser[userCode]]
	if !ok || time.Now().After(e.state.Expires) {
		return errors.New("unknown or expired code")
	}
	if allow {
		e.state.Subject, e.state.Done, e.state.AuthTime = user, true, time.Now()
		e.state.AMR = []string{"pwd"}
	} else {
		e.state.Denied = true
	}
	return nil
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }
