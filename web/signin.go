package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/popbridge/popbridge/vault"
)

type nonceKey struct{}

// nonceFrom gives the ID token verifier the nonce of the sign-in being
// finished (OpenID Connect Core 1.0 section 3.1.3.7, step 11).
func nonceFrom(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey{}).(string)
	return n
}

// login starts a sign-in: the authorization request (OpenID Connect Core
// 1.0 section 3.1.2.1) with state, nonce and a PKCE S256 challenge (RFC
// 7636 section 4.2), all kept server-side under a short-lived cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	party, err := h.relyingParty(r.Context())
	if err != nil {
		h.obs.WebSignIn("error")
		h.log.Error("web: cannot reach the OpenID Connect provider", "err", err)
		h.errorPage(w, r, http.StatusBadGateway, "The sign-in service cannot be reached. Try again later.")
		return
	}
	p := &pending{state: randomID(), nonce: randomID(), verifier: randomID(), next: safeNext(r.URL.Query().Get("next"))}
	id, ok := h.sessions.addPending(p)
	if !ok {
		h.errorPage(w, r, http.StatusServiceUnavailable, "Too many sign-ins are in progress. Try again in a few minutes.")
		return
	}
	sum := sha256.Sum256([]byte(p.verifier))
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(base64.RawURLEncoding.EncodeToString(sum[:])),
		rp.AuthURLOpt(rp.WithURLParam("nonce", p.nonce)),
	}
	if h.enrol {
		for k, v := range h.signIn.AuthParams {
			opts = append(opts, rp.AuthURLOpt(rp.WithURLParam(k, v)))
		}
	}
	h.setCookie(w, "login", id, int(pendingLifetime.Seconds()))
	http.Redirect(w, r, rp.AuthURL(p.state, party, opts...), http.StatusFound)
}

// callback finishes a sign-in: it checks state, exchanges the code with
// the PKCE verifier, validates the ID token (signature by the provider's
// keys, iss, aud, exp, nonce), stores the delegated grant if one came,
// and starts a session under a new id.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	loginID := h.cookie(r, "login")
	h.setCookie(w, "login", "", -1)
	p, ok := h.sessions.takePending(loginID)
	if !ok {
		h.obs.WebSignIn("invalid")
		h.errorPage(w, r, http.StatusBadRequest, "This sign-in attempt has expired or was already used. Sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		h.obs.WebSignIn("denied")
		h.log.Info("web: sign-in refused by the provider", "error", oauthCode(e))
		h.errorPage(w, r, http.StatusForbidden, "The sign-in service did not sign you in ("+oauthCode(e)+").")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.state)) != 1 || q.Get("code") == "" {
		h.obs.WebSignIn("invalid")
		h.errorPage(w, r, http.StatusBadRequest, "This sign-in answer does not belong to your sign-in. Sign in again.")
		return
	}
	party, err := h.relyingParty(r.Context())
	if err != nil {
		h.obs.WebSignIn("error")
		h.errorPage(w, r, http.StatusBadGateway, "The sign-in service cannot be reached. Try again later.")
		return
	}
	ctx := context.WithValue(r.Context(), nonceKey{}, p.nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(p.verifier))
	if err != nil {
		result := "invalid"
		var ne net.Error
		if errors.As(err, &ne) {
			result = "error"
		}
		h.obs.WebSignIn(result)
		// The error may quote the provider's answer, never our secrets.
		h.log.Warn("web: sign-in failed", "err", err)
		h.errorPage(w, r, http.StatusBadGateway, "Signing you in failed. Sign in again.")
		return
	}
	claims := map[string]any{}
	for k, v := range tokens.IDTokenClaims.Claims {
		claims[k] = v
	}
	claims["sub"] = tokens.IDTokenClaims.Subject
	if _, ok := claims[h.cfg.UserClaim]; !ok || (h.cfg.AdminClaim != "" && claims[h.cfg.AdminClaim] == nil) {
		// Many providers put profile claims in the UserInfo response only
		// (OpenID Connect Core 1.0 section 5.4).
		info, err := rp.Userinfo[*oidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.Subject, party)
		if err == nil {
			for k, v := range info.Claims {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		} else {
			h.log.Warn("web: userinfo request failed", "err", err)
		}
	}
	user, _ := claims[h.cfg.UserClaim].(string)
	user = strings.TrimSpace(user)
	if user == "" {
		h.obs.WebSignIn("invalid")
		h.log.Warn("web: sign-in without a user name", "claim", h.cfg.UserClaim)
		h.errorPage(w, r, http.StatusForbidden, "Your account has no mail address this gateway can use ("+h.cfg.UserClaim+" is missing).")
		return
	}
	admin := contains(h.cfg.Admins, user) || (h.cfg.AdminClaim != "" && claimHas(claims[h.cfg.AdminClaim], h.cfg.AdminValue))

	result := "ok"
	if h.enrol && tokens.RefreshToken != "" {
		t := vault.Tokens{Refresh: tokens.RefreshToken, Access: tokens.AccessToken, AccessExpiry: tokens.Expiry}
		if err := h.store.PutGrant(r.Context(), user, t); err != nil {
			h.obs.WebSignIn("error")
			h.log.Error("web: storing the grant failed", "user", user, "err", err)
			h.errorPage(w, r, http.StatusInternalServerError, "You are signed in, but your mailbox access could not be saved. Try again later.")
			return
		}
		result = "enrolled"
	}
	// A new id at every sign-in; an old session cookie of this browser
	// is dropped, never promoted (session fixation).
	if old := h.cookie(r, "session"); old != "" {
		h.sessions.delete(old)
	}
	ss, ok := h.sessions.create(user, admin)
	if !ok {
		h.obs.WebSignIn("error")
		h.errorPage(w, r, http.StatusServiceUnavailable, "Too many people are signed in. Try again later.")
		return
	}
	h.setCookie(w, "session", ss.id, 0)
	h.obs.WebSignIn(result)
	h.log.Info("web: signed in", "user", user, "admin", admin, "enrolled", result == "enrolled")
	h.redirectLocal(w, r, p.next)
}

// logout ends the session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, ss session) {
	h.sessions.delete(ss.id)
	h.setCookie(w, "session", "", -1)
	h.redirectLocal(w, r, "/")
}

// claimHas reports whether a claim (a string or a list) holds want.
func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	case []string:
		return contains(v, want)
	}
	return false
}

// oauthCode keeps an error code from the redirect printable and short:
// it is shown and logged, and comes from the query string.
func oauthCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return -1
	}, s)
}
