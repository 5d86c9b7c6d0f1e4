package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
)

// AuthCode is a started authorization-code grant (RFC 6749 section 4.1)
// with PKCE (RFC 7636), for providers whose device flow cannot grant
// mail access (Google allows only a short list of scopes on devices).
// The user opens URL, signs in and consents; the browser is then sent to
// RedirectURI with the code. On a headless gateway the redirect URI is a
// loopback address nothing listens on: the user copies the address the
// browser shows and pastes it into ExchangeCode.
type AuthCode struct {
	URL         string // to open in a browser
	RedirectURI string
	State       string // checked against the redirect (CSRF, RFC 6749 section 10.12)
	Verifier    string // PKCE code verifier: secret, never shown or logged
}

// StartAuthCode builds the authorization request for the delegated scopes.
// redirectURI must be registered with the provider (for Google and
// Microsoft, http://127.0.0.1 or http://localhost with any port works for
// desktop/public clients).
func (p *Provider) StartAuthCode(redirectURI string) (*AuthCode, error) {
	if p.authURL == "" {
		return nil, &Error{Kind: KindPermanent, Op: "authorization", Err: errors.New("provider has no authorization endpoint")}
	}
	ac := &AuthCode{RedirectURI: redirectURI, State: randomString(16), Verifier: randomString(32)}
	sum := sha256.Sum256([]byte(ac.Verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {strings.Join(p.scopes, " ")},
		"state":                 {ac.State},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	for k, v := range p.authParams {
		q.Set(k, v)
	}
	sep := "?"
	if strings.Contains(p.authURL, "?") {
		sep = "&"
	}
	ac.URL = p.authURL + sep + q.Encode()
	return ac, nil
}

// ExchangeCode takes the address the browser was redirected to (or just
// its query), checks its state, and exchanges the code for tokens
// (RFC 6749 section 4.1.3). A refusal by the user (error=access_denied in
// the redirect) is a KindPermanent *Error with that Code.
func (p *Provider) ExchangeCode(ctx context.Context, ac *AuthCode, redirected string) (Tokens, error) {
	const op = "authorization_code"
	redirected = strings.TrimSpace(redirected)
	if i := strings.IndexByte(redirected, '?'); i >= 0 {
		redirected = redirected[i+1:]
	}
	if i := strings.IndexByte(redirected, '#'); i >= 0 {
		redirected = redirected[:i]
	}
	q, err := url.ParseQuery(redirected)
	if err != nil {
		return Tokens{}, &Error{Kind: KindPermanent, Op: op, Err: errors.New("pasted address has no readable query")}
	}
	if e := q.Get("error"); e != "" {
		return Tokens{}, &Error{Kind: KindPermanent, Op: op, Code: plainCode(e), Description: q.Get("error_description")}
	}
	if q.Get("state") != ac.State {
		return Tokens{}, &Error{Kind: KindPermanent, Op: op, Err: errors.New("state does not match this enrolment")}
	}
	code := q.Get("code")
	if code == "" {
		return Tokens{}, &Error{Kind: KindPermanent, Op: op, Err: errors.New("no code in the pasted address")}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {ac.RedirectURI},
		"code_verifier": {ac.Verifier},
	}
	tr, status, err := p.post(ctx, op, p.tokenURL, form)
	if err != nil {
		return Tokens{}, err
	}
	if tr.Error != "" {
		e := oauthError(op, tr, status)
		if e.Kind == KindReenroll {
			e.Kind = KindPermanent // a used or expired code: start again
		}
		return Tokens{}, e
	}
	return p.tokens(op, tr, status)
}

// EnrollAuthCode exchanges the code and stores the tokens as user's
// grant; see ExchangeCode.
func (p *Provider) EnrollAuthCode(ctx context.Context, store GrantStore, user string, ac *AuthCode, redirected string) error {
	t, err := p.ExchangeCode(ctx, ac, redirected)
	if err != nil {
		return err
	}
	if t.Refresh == "" {
		return ErrNoRefreshToken
	}
	if err := store.PutGrant(ctx, user, t); err != nil {
		return &Error{Kind: KindTemporary, Op: "store", Err: err}
	}
	return nil
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
