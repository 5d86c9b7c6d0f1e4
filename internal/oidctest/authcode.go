package oidctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// RedirectURI is the redirect URI registered for ClientID's
// authorization-code grant: a loopback address nothing listens on, as a
// headless gateway would use.
const RedirectURI = "http://127.0.0.1:9/callback"

// authRequest is a pending or completed authorization request (RFC 6749
// section 4.1.1); it implements op.AuthRequest.
type authRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes                                           []string
	responseType                                     oidc.ResponseType
	challenge                                        *oidc.CodeChallenge
	authTime                                         time.Time
	done                                             bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: newID(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, responseType: r.ResponseType}
	if r.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.authReqs[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok {
		return nil, errors.New("authorization request not found")
	}
	return a, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[s.codes[code]]
	if !ok {
		return nil, errors.New("code invalid or used")
	}
	return a, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs after the code was exchanged: the code is
// single-use (RFC 6749 section 4.1.2).
func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authReqs, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

// completeAuth signs user in for the authorization request id.
func (s *storage) completeAuth(id, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok {
		return errors.New("authorization request not found")
	}
	a.subject, a.done, a.authTime = user, true, time.Now()
	return nil
}

// loginPage is the sign-in page of the authorization-code flow: the
// client's LoginURL.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("authRequestID")
	if r.Method != http.MethodPost {
		pages.ExecuteTemplate(w, "authlogin", map[string]string{"ID": id})
		return
	}
	user := r.PostForm.Get("username")
	if !s.st.checkUser(user, r.PostForm.Get("password")) {
		w.WriteHeader(http.StatusForbidden)
		pages.ExecuteTemplate(w, "authlogin", map[string]string{"ID": id, "Error": "wrong user or password"})
		return
	}
	if err := s.st.completeAuth(id, user); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, s.Issuer+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// AuthorizeInBrowser acts as user in a browser: it opens authURL (the
// gateway's authorization request), signs in, and returns the address the
// provider finally redirects to (RedirectURI with the code), without
// loading it, as a user would copy it from the address bar.
func AuthorizeInBrowser(ctx context.Context, authURL, user, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	var landed string
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), RedirectURI) {
				landed = req.URL.String()
				return http.ErrUseLastResponse
			}
			return nil
		}}
	do := func(method, u string, form url.Values) (*http.Response, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, "", err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, string(b), nil
	}
	resp, page, err := do(http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		return "", fmt.Errorf("no sign-in page (HTTP %d)", resp.StatusCode)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, _, err = do(http.MethodPost, resp.Request.URL.String(), url.Values{"authRequestID": {id}, "username": {user}, "password": {password}})
	if err != nil {
		return "", err
	}
	if landed == "" {
		return "", fmt.Errorf("not redirected to the client after sign-in (HTTP %d)", resp.StatusCode)
	}
	return landed, nil
}
