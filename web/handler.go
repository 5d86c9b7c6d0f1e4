package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"

	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/vault/oauth"
)

//go:embed templates static
var assets embed.FS

// Handler serves the page. It is an http.Handler.
type Handler struct {
	cfg      Config
	store    vault.Store
	enrol    bool // ask for the delegated grant at sign-in and store it
	signIn   oauth.SignInParams
	scopes   []string
	base     string // path prefix of PublicURL, without a trailing slash
	redirect string // redirect URI: PublicURL + "/callback"
	sessions *sessionStore
	cop      *http.CrossOriginProtection
	pages    map[string]*template.Template
	log      *slog.Logger
	obs      Observer
	now      func() time.Time
	root     http.Handler

	rpMu sync.Mutex
	rp   rp.RelyingParty // made on first use: the provider may be down at start
}

// New returns the page's handler. store holds users and devices.
// provider, if not nil, is the vault's OAuth2 provider: its client
// registration signs people in, and its delegated scopes are asked for
// in the same request so that signing in stores the user's grant. With
// a nil provider (a Dovecot master-user upstream needs no grant)
// cfg.ClientID and cfg.ClientSecret must be set.
//
// New contacts nobody; the provider's discovery document is read at the
// first sign-in.
func New(cfg Config, store vault.Store, provider *oauth.Provider) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, store: store, log: cfg.Logger, obs: cfg.Observer, now: cfg.Now}
	if provider != nil {
		h.signIn = provider.SignInParams()
		h.enrol = true
	}
	if cfg.ClientID != "" {
		h.signIn.ClientID, h.signIn.ClientSecret = cfg.ClientID, cfg.ClientSecret
	}
	if h.signIn.ClientID == "" {
		return nil, errors.New("web: no client ID (set one, or give the vault's provider)")
	}
	if h.cfg.UserClaim == "" {
		h.cfg.UserClaim = "email"
	}
	if h.cfg.SessionLifetime == 0 {
		h.cfg.SessionLifetime = 8 * time.Hour
	}
	if h.cfg.IdleTimeout == 0 {
		h.cfg.IdleTimeout = time.Hour
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.cfg.HTTPClient == nil {
		h.cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	h.scopes = []string{"openid"}
	switch h.cfg.UserClaim {
	case "email":
		h.scopes = append(h.scopes, "email")
	case "preferred_username", "upn":
		h.scopes = append(h.scopes, "profile")
	}
	if h.enrol {
		for _, s := range h.signIn.Scopes {
			if !contains(h.scopes, s) {
				h.scopes = append(h.scopes, s)
			}
		}
	}
	u, _ := url.Parse(cfg.PublicURL) // checked by Validate
	h.base = strings.TrimSuffix(u.Path, "/")
	h.redirect = u.Scheme + "://" + u.Host + h.base + "/callback"
	h.sessions = newSessionStore(h.cfg.SessionLifetime, h.cfg.IdleTimeout, h.now)
	h.cop = http.NewCrossOriginProtection()
	// Behind a reverse proxy the Host header may differ from the public
	// name; the public origin is the one browsers send.
	if err := h.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		return nil, err
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", h.home)
	mux.HandleFunc("GET /login", h.login)
	mux.HandleFunc("GET /callback", h.callback)
	mux.HandleFunc("POST /logout", h.post(h.logout))
	mux.HandleFunc("POST /devices", h.post(h.createDevice))
	mux.HandleFunc("POST /devices/revoke", h.post(h.revokeDevice))
	mux.HandleFunc("GET /admin", h.adminPage)
	mux.HandleFunc("POST /admin/revoke", h.post(h.adminRevoke))
	mux.HandleFunc("POST /admin/remove", h.post(h.adminRemove))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	})
	var root http.Handler = mux
	if h.base != "" {
		root = http.StripPrefix(h.base, mux)
	}
	h.root = securityHeaders(root)
	return h, nil
}

// RedirectURI is the address to register with the provider.
func (h *Handler) RedirectURI() string { return h.redirect }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Form posts are small; bound what an unauthenticated client can send.
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	h.root.ServeHTTP(w, r)
}

// relyingParty returns the OpenID Connect client, reading the provider's
// discovery document on first use.
func (h *Handler) relyingParty(ctx context.Context) (rp.RelyingParty, error) {
	h.rpMu.Lock()
	defer h.rpMu.Unlock()
	if h.rp != nil {
		return h.rp, nil
	}
	r, err := rp.NewRelyingPartyOIDC(ctx, h.cfg.Issuer, h.signIn.ClientID, h.signIn.ClientSecret, h.redirect, h.scopes,
		rp.WithHTTPClient(h.cfg.HTTPClient),
		rp.WithVerifierOpts(rp.WithNonce(nonceFrom)))
	if err != nil {
		return nil, err
	}
	h.rp = r
	return r, nil
}

// session returns the request's live session.
func (h *Handler) session(r *http.Request) (session, bool) {
	id := h.cookie(r, "session")
	if id == "" {
		return session{}, false
	}
	return h.sessions.get(id)
}

// post wraps a form handler: it needs a session and passes the CSRF
// checks.
func (h *Handler) post(fn func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, ok := h.session(r)
		if !ok {
			h.errorPage(w, r, http.StatusForbidden, "Your session has ended. Sign in again.")
			return
		}
		if !h.checkCSRF(r, ss) {
			h.obs.WebCSRFRejected()
			h.log.Warn("web: form refused by CSRF checks", "user", ss.user, "path", r.URL.Path)
			h.errorPage(w, r, http.StatusForbidden, "This form was refused (it did not come from this page). Reload the page and try again.")
			return
		}
		fn(w, r, ss)
	}
}

// redirectLocal sends the browser to a local path under the base.
func (h *Handler) redirectLocal(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, h.base+path, http.StatusSeeOther)
}
