package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/metrics"
	"github.com/popbridge/popbridge/pop3front"
	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/vault/oauth"
)

// vaultAuth is what [auth] mode = "vault" builds once at start and every
// generation shares: the store, and where upstream credentials come from.
type vaultAuth struct {
	store  vault.Store
	grants *grantStore // delegated OAuth2 only
	source oauth.BearerSource
	// provider is [auth.oauth2]'s (upstream_auth = "oauth2"), or nil;
	// the web page signs people in with its client registration.
	provider *oauth.Provider
	// master user credentials (upstream_auth = "master")
	masterUser, masterPassword string

	metrics *metrics.Metrics
	log     *slog.Logger
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Fixed replies (RFC 2449 section 8 codes; RFC 3206 SYS/TEMP, SYS/PERM).
// The provider's own words never reach a client: its error descriptions
// may name internals or be localised, and go to the log only.
const (
	textProviderTemp = "The mail provider cannot be reached now; try again later."
	textReenroll     = "Access to this mailbox was never granted, has expired or was revoked; the administrator must enrol it again."
	textRefused      = "The mail server refused the gateway's access to this mailbox; the administrator must check it."
	textVaultTemp    = "Temporary failure; try again later."
)

// gaugeInterval is how often the users-needing-re-enrolment gauge is
// read from the store, which admin commands change from other processes.
const gaugeInterval = time.Minute

// openVault opens the store [auth] names and builds the token source.
func openVault(ctx context.Context, a *AuthConfig, m *metrics.Metrics, logger *slog.Logger) (*vaultAuth, error) {
	logger = logger.With("component", "vault")
	store, err := openStore(ctx, a, logger)
	if err != nil {
		return nil, err
	}
	va := &vaultAuth{store: store, metrics: m, log: logger, stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			store.Close()
		}
	}()
	switch a.UpstreamAuth {
	case UpstreamMaster:
		va.masterUser = a.MasterUser
		if va.masterPassword, err = readSecret(a.MasterPasswordFile); err != nil {
			return nil, fmt.Errorf("auth.master_password_file: %w", err)
		}
	case UpstreamOAuth2:
		p, err := newOAuthProvider(ctx, a)
		if err != nil {
			return nil, err
		}
		va.provider = p
		opts := oauth.Options{Observer: m, Logger: logger}
		if a.OAuth2.Grant == GrantClientCredentials {
			va.source = newAppSource(p, opts)
		} else {
			va.grants = &grantStore{store: store, changed: va.updateGauge}
			va.source = oauth.NewTokenSource(p, va.grants, opts)
		}
	}
	va.updateGauge()
	va.wg.Add(1)
	go va.gaugeLoop()
	ok = true
	return va, nil
}

// openStore opens the vault store with the key, if configured.
func openStore(ctx context.Context, a *AuthConfig, logger *slog.Logger) (vault.Store, error) {
	var key *vault.Key
	if a.KeyFile != "" {
		var err error
		if key, err = vault.LoadKeyFile(a.KeyFile); err != nil {
			return nil, fmt.Errorf("auth.key_file: %w", err)
		}
	}
	store, err := vault.Open(ctx, a.Store, vault.Options{Key: key, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("auth.store: %w", err)
	}
	return store, nil
}

// newOAuthProvider builds the provider [auth.oauth2] describes; for oidc
// it runs discovery.
func newOAuthProvider(ctx context.Context, a *AuthConfig) (*oauth.Provider, error) {
	o := a.OAuth2
	cfg := oauth.Config{Provider: string(o.Provider), Tenant: o.Tenant, Issuer: o.Issuer,
		ClientID: o.ClientID, ClientSecretFile: o.ClientSecretFile}
	if o.Issuer == demoIssuer { // demo.go
		cfg.Issuer, cfg.ClientID, cfg.ClientSecretFile, cfg.ClientSecret = demoIssuerURL(o), oidctest.ClientID, "", oidctest.ClientSecret
	}
	if len(o.Scopes) > 0 {
		if o.Grant == GrantClientCredentials {
			cfg.AppScopes = o.Scopes
		} else {
			cfg.Scopes = o.Scopes
		}
	}
	p, err := oauth.NewProvider(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("auth.oauth2: %w", err)
	}
	return p, nil
}

func (va *vaultAuth) gaugeLoop() {
	defer va.wg.Done()
	t := time.NewTicker(gaugeInterval)
	defer t.Stop()
	for {
		select {
		case <-va.stop:
			return
		case <-t.C:
			va.updateGauge()
		}
	}
}

// updateGauge reads the number of users needing re-enrolment.
func (va *vaultAuth) updateGauge() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := va.store.UsersNeedingReenrollment(ctx)
	if err != nil {
		va.log.Warn("could not count users needing re-enrolment", "err", err)
		return
	}
	va.metrics.SetUsersNeedingReenrollment(n)
}

func (va *vaultAuth) close() {
	close(va.stop)
	va.wg.Wait()
	va.store.Close()
}

// ping is the store's part of /readyz.
func (va *vaultAuth) ping(ctx context.Context) error {
	if err := va.store.Ping(ctx); err != nil {
		return fmt.Errorf("vault store: %w", err)
	}
	return nil
}

// upstreamLogin is what vaultBackend needs of imapback.Backend.
type upstreamLogin interface {
	pop3front.Backend
	LoginWith(ctx context.Context, req *pop3front.LoginRequest, opts imapback.LoginOptions) (pop3front.Maildrop, error)
	PolicyFor(user string) imapback.Policy
}

// vaultBackend checks a POP3 login against the vault's device passwords
// and logs in upstream with the credentials the vault gives for the
// user. It sits between the username modifiers and imapback: pop3front
// sees an ordinary Backend, imapback an ordinary bearer or master login.
type vaultBackend struct {
	va *vaultAuth
	up upstreamLogin
}

func (vb *vaultBackend) Login(ctx context.Context, req *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	return vb.LoginWith(ctx, req, imapback.LoginOptions{})
}

func (vb *vaultBackend) PolicyFor(user string) imapback.Policy { return vb.up.PolicyFor(user) }

// LoginWith authenticates req's device password, then opens the mailbox
// req.Username names with opts.
func (vb *vaultBackend) LoginWith(ctx context.Context, req *pop3front.LoginRequest, opts imapback.LoginOptions) (pop3front.Maildrop, error) {
	md, result, err := vb.login(ctx, req, opts)
	vb.va.metrics.VaultLogin(result)
	return md, err
}

func (vb *vaultBackend) login(ctx context.Context, req *pop3front.LoginRequest, opts imapback.LoginOptions) (pop3front.Maildrop, string, error) {
	va := vb.va
	user := req.Username
	if req.AuthzID != "" && req.AuthzID != user {
		// A device password belongs to one user; it cannot act for another.
		return nil, "failed", fmt.Errorf("%w: authorization identity differs from the user (not supported with device passwords)", pop3front.ErrAuthFailed)
	}
	if _, err := va.store.Authenticate(ctx, user, req.Password, clientIP(req.Client)); err != nil {
		switch {
		case errors.Is(err, vault.ErrWrongPassword), errors.Is(err, vault.ErrUnknownDevice), errors.Is(err, vault.ErrNetworkNotAllowed):
			// pop3front logs it (the fail2ban line) with this reason.
			return nil, "failed", fmt.Errorf("%w: %v", pop3front.ErrAuthFailed, err)
		}
		va.log.Error("vault store failed during login", "user", user, "err", err)
		return nil, "temporary_error", &pop3front.Error{Code: "SYS/TEMP", Text: textVaultTemp, Err: err}
	}

	r := *req
	r.Password, r.AuthzID = "", ""
	if va.source == nil { // master user acting for user
		r.Username, r.Password, r.AuthzID = va.masterUser, va.masterPassword, user
		md, err := vb.up.LoginWith(ctx, &r, opts)
		if errors.Is(err, pop3front.ErrAuthFailed) {
			va.log.Error("upstream refused the master-user login for a user with a valid device password",
				"user", user, "master_user", va.masterUser)
			return nil, "permanent_error", &pop3front.Error{Code: "SYS/PERM", Text: textRefused, Err: errors.New("master-user login refused")}
		}
		return md, upstreamResult(err), err
	}

	for attempt := 0; ; attempt++ {
		tok, err := va.source.AccessToken(ctx, user)
		if err != nil {
			return tokenFailure(va.log, user, err)
		}
		o := opts
		o.BearerToken = tok
		md, err := vb.up.LoginWith(ctx, &r, o)
		if !errors.Is(err, imapback.ErrTokenRejected) {
			return md, upstreamResult(err), err
		}
		inv, ok := va.source.(interface{ Invalidate(user, token string) })
		if attempt == 0 && ok {
			// Revoked or expired at the provider before its stated
			// expiry: once more with a fresh token.
			inv.Invalidate(user, tok)
			continue
		}
		va.log.Error("upstream refused a fresh access token: check the app's IMAP permission for this mailbox",
			"user", user)
		return nil, "permanent_error", &pop3front.Error{Code: "SYS/PERM", Text: textRefused, Err: errors.New("access token refused upstream")}
	}
}

// tokenFailure maps a failure to get an access token to the POP3 reply
// and the login metric. oauth errors carry no token and no provider
// text in their message.
func tokenFailure(log *slog.Logger, user string, err error) (pop3front.Maildrop, string, error) {
	switch {
	case oauth.IsReenroll(err):
		log.Error("user must be enrolled again (popbridge enroll USER): the provider no longer accepts the grant, or there is none",
			"user", user, "err", err)
		return nil, "permanent_error", &pop3front.Error{Code: "SYS/PERM", Text: textReenroll, Err: err}
	case errors.Is(err, oauth.ErrPermanent):
		log.Error("the provider refuses the gateway's token requests: check [auth.oauth2]", "user", user, "err", err)
		return nil, "permanent_error", &pop3front.Error{Code: "SYS/PERM", Text: textRefused, Err: err}
	}
	return nil, "temporary_error", &pop3front.Error{Code: "SYS/TEMP", Text: textProviderTemp, Err: err}
}

// upstreamResult is the login metric's result for the upstream's answer.
func upstreamResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, pop3front.ErrAuthFailed):
		return "failed"
	}
	var pe *pop3front.Error
	if errors.As(err, &pe) && pe.Code == "SYS/PERM" {
		return "permanent_error"
	}
	return "temporary_error"
}

// clientIP is the client's address for a device's allowed networks; the
// zero Addr when unknown (a relay that did not name it).
func clientIP(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// grantStore is the vault store seen as the oauth package's GrantStore:
// the two packages keep their own Tokens types so that neither imports
// the other.
type grantStore struct {
	store   vault.Store
	changed func() // after MarkNeedsReenrollment (the gauge)
}

func (g *grantStore) Refresh(ctx context.Context, user string, fn func(oauth.Tokens) (oauth.Tokens, error)) (oauth.Tokens, error) {
	t, err := g.store.Refresh(ctx, user, func(cur vault.Tokens) (vault.Tokens, error) {
		nt, err := fn(oauth.Tokens(cur))
		return vault.Tokens(nt), err
	})
	if errors.Is(err, vault.ErrNoGrant) || errors.Is(err, vault.ErrNoUser) {
		return oauth.Tokens{}, fmt.Errorf("%w: %w", oauth.ErrNoGrant, err)
	}
	return oauth.Tokens(t), err
}

func (g *grantStore) PutGrant(ctx context.Context, user string, t oauth.Tokens) error {
	return g.store.PutGrant(ctx, user, vault.Tokens(t))
}

func (g *grantStore) RecordRefresh(ctx context.Context, user string, err error) error {
	return g.store.RecordRefresh(ctx, user, err)
}

func (g *grantStore) MarkNeedsReenrollment(ctx context.Context, user, reason string) error {
	err := g.store.MarkNeedsReenrollment(ctx, user, reason)
	if g.changed != nil {
		g.changed()
	}
	return err
}

// appSource is an AppTokenSource that can drop a token the upstream
// refused, by starting over with a new source: the app token is one for
// every user, so one refusal replaces it for all.
type appSource struct {
	p    *oauth.Provider
	opts oauth.Options

	mu      sync.Mutex
	cur     *oauth.AppTokenSource
	dropped string // the token last invalidated
}

func newAppSource(p *oauth.Provider, opts oauth.Options) *appSource {
	return &appSource{p: p, opts: opts, cur: oauth.NewAppTokenSource(p, opts)}
}

func (a *appSource) AccessToken(ctx context.Context, user string) (string, error) {
	a.mu.Lock()
	cur := a.cur
	a.mu.Unlock()
	return cur.AccessToken(ctx, user)
}

// Invalidate drops token unless it was dropped already (sessions refused
// together replace it once).
func (a *appSource) Invalidate(user, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if token != a.dropped {
		a.dropped = token
		a.cur = oauth.NewAppTokenSource(a.p, a.opts)
	}
}
