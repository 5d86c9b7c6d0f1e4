package oauth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// BearerSource gives the access token to log in upstream as user. Both
// TokenSource and AppTokenSource implement it.
type BearerSource interface {
	AccessToken(ctx context.Context, user string) (string, error)
}

// Options configure a TokenSource or AppTokenSource.
type Options struct {
	// Margin: a cached token is used until Margin before it expires
	// (default 60 s), so that it does not expire during the login.
	Margin time.Duration
	// RefreshTimeout bounds one refresh, which runs on behalf of every
	// waiting caller and so is not cancelled with the first caller's
	// context (default 30 s).
	RefreshTimeout time.Duration
	Observer       Observer     // optional
	Logger         *slog.Logger // default slog.Default()
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

func (o *Options) fill() {
	if o.Margin <= 0 {
		o.Margin = 60 * time.Second
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// TokenSource gives delegated access tokens from the refresh tokens in a
// GrantStore. It is safe for concurrent use.
//
// Access tokens are cached in memory until Options.Margin before they
// expire (halfway through their life if that is shorter). On a miss, one refresh per user runs at a time in this process
// (other callers wait for it), inside GrantStore.Refresh, whose lock
// excludes other processes: the refresh first looks at the stored token,
// which another process may just have renewed, and asks the provider only
// when that one is near expiry too. A refresh token the provider rotates
// is saved by the store before its lock is released, so no process is
// left holding a refresh token the provider has invalidated.
type TokenSource struct {
	p     *Provider
	store GrantStore
	opt   Options

	mu       sync.Mutex
	cache    map[string]cached  // by user
	flights  map[string]*flight // refreshes in progress, by user
	rejected map[string]string  // by user: an access token the upstream refused
}

// cached is an access token and when to stop using it.
type cached struct {
	access string
	until  time.Time
}

// usableUntil is when to stop using t, obtained at now: Margin before
// expiry, or halfway for tokens that live less than twice the margin (so
// that a short-lived token is still cached for a while).
func usableUntil(t Tokens, now time.Time, margin time.Duration) time.Time {
	if life := t.AccessExpiry.Sub(now); life < 2*margin {
		return now.Add(life / 2)
	}
	return t.AccessExpiry.Add(-margin)
}

type flight struct {
	done  chan struct{}
	token string
	err   error
}

// NewTokenSource returns a TokenSource for p's users in store.
func NewTokenSource(p *Provider, store GrantStore, opt Options) *TokenSource {
	opt.fill()
	return &TokenSource{p: p, store: store, opt: opt,
		cache: map[string]cached{}, flights: map[string]*flight{}, rejected: map[string]string{}}
}

// fresh reports whether t's access token can still be used: it is not
// within margin of its expiry. (A token from the store may have been
// obtained by another process; its lifetime is unknown.)
func fresh(t Tokens, now time.Time, margin time.Duration) bool {
	return t.Access != "" && now.Add(margin).Before(t.AccessExpiry)
}

// AccessToken returns an access token for user. Errors are *Error:
// KindReenroll when the provider refused the refresh token (invalid_grant;
// the store is told with MarkNeedsReenrollment) or the user has no grant,
// KindTemporary for network, server and store failures, KindPermanent for
// configuration errors.
func (s *TokenSource) AccessToken(ctx context.Context, user string) (string, error) {
	s.mu.Lock()
	if c, ok := s.cache[user]; ok && s.opt.Now().Before(c.until) {
		s.mu.Unlock()
		return c.access, nil
	}
	f, ok := s.flights[user]
	if !ok {
		f = &flight{done: make(chan struct{})}
		s.flights[user] = f
		go s.run(context.WithoutCancel(ctx), user, f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", &Error{Kind: KindTemporary, Op: "refresh", Err: ctx.Err()}
	}
}

// Invalidate reports that the upstream refused token for user (revoked
// or expired at the provider before its stated expiry): the next
// AccessToken asks the provider for a new one, even if the store still
// holds token as current. Call it once per refusal, then retry the login
// once; a second refusal is the user's (or the provider's) problem, not
// a stale cache.
func (s *TokenSource) Invalidate(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[user]; ok && c.access == token {
		delete(s.cache, user)
	}
	s.rejected[user] = token
}

// run is the single refresh of user's flight f.
func (s *TokenSource) run(ctx context.Context, user string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.RefreshTimeout)
	defer cancel()
	s.mu.Lock()
	rejected := s.rejected[user]
	s.mu.Unlock()
	t, err := s.refresh(ctx, user, rejected)
	s.mu.Lock()
	if s.rejected[user] == rejected {
		delete(s.rejected, user)
	}
	if err == nil {
		s.cache[user] = cached{t.Access, usableUntil(t, s.opt.Now(), s.opt.Margin)}
		f.token = t.Access
	} else {
		delete(s.cache, user)
		f.err = err
	}
	delete(s.flights, user)
	s.mu.Unlock()
	close(f.done)
}

// refresh gets user's token from the store or, if the stored one is
// stale or is rejected, from the provider.
func (s *TokenSource) refresh(ctx context.Context, user, rejected string) (Tokens, error) {
	log := s.opt.Logger.With("user", user)
	called := false // whether the provider was asked
	var perr error  // the provider's answer, if asked
	t, err := s.store.Refresh(ctx, user, func(cur Tokens) (Tokens, error) {
		if fresh(cur, s.opt.Now(), s.opt.Margin) && cur.Access != rejected {
			return cur, nil // another process refreshed it
		}
		if cur.Refresh == "" {
			return Tokens{}, &Error{Kind: KindReenroll, Op: "refresh", Err: errors.New("grant has no refresh token")}
		}
		called = true
		nt, err := s.p.refresh(ctx, cur.Refresh)
		if err != nil {
			perr = err
			return Tokens{}, err
		}
		if nt.Refresh == "" {
			nt.Refresh = cur.Refresh // not rotated (RFC 6749 section 6)
		}
		return nt, nil
	})
	if called {
		s.record(ctx, log, user, perr)
	}
	if err == nil {
		if t.Access == "" {
			return Tokens{}, &Error{Kind: KindTemporary, Op: "refresh", Err: errors.New("store returned no access token")}
		}
		return t, nil
	}
	var oe *Error
	if !errors.As(err, &oe) {
		kind := KindTemporary
		if errors.Is(err, ErrNoGrant) {
			kind = KindReenroll
		}
		oe = &Error{Kind: kind, Op: "store", Err: err}
	}
	if oe.Kind == KindReenroll && oe.Op != "store" { // the grant exists but is dead
		reason := "refresh token refused by the provider (" + oe.Code + ")"
		if oe.Code == "" {
			reason = "grant has no refresh token"
		}
		if merr := s.store.MarkNeedsReenrollment(ctx, user, reason); merr != nil {
			log.Error("could not mark grant as needing enrolment", "err", merr)
		}
		log.Warn("OAuth grant no longer valid: user must enrol again", "err", oe)
	} else if oe.Kind != KindReenroll {
		log.Warn("access token refresh failed", "err", oe)
	}
	return Tokens{}, oe
}

// record reports a provider call to the store and the observer.
func (s *TokenSource) record(ctx context.Context, log *slog.Logger, user string, err error) {
	result := ResultOK
	switch {
	case IsReenroll(err):
		result = ResultInvalidGrant
	case err != nil:
		result = ResultTemporary
	}
	if s.opt.Observer != nil {
		s.opt.Observer.TokenRefresh(result)
	}
	if rerr := s.store.RecordRefresh(ctx, user, err); rerr != nil {
		log.Warn("could not record refresh", "err", rerr)
	}
}

// AppTokenSource gives app-only access tokens from the client-credentials
// grant: one token, cached until Options.Margin before expiry, for every
// mailbox the app may open (Microsoft: IMAP.AccessAsApp, with the
// mailbox permission granted per mailbox). One request at a time is made
// (other callers wait for it). It is safe for concurrent use.
type AppTokenSource struct {
	p   *Provider
	opt Options

	mu     sync.Mutex
	cached cached
	flight *flight
}

// NewAppTokenSource returns an AppTokenSource for p.
func NewAppTokenSource(p *Provider, opt Options) *AppTokenSource {
	opt.fill()
	return &AppTokenSource{p: p, opt: opt}
}

// AccessToken returns the app's token; user is ignored (the IMAP login
// names the mailbox). Errors are *Error, as for TokenSource (never
// KindReenroll).
func (s *AppTokenSource) AccessToken(ctx context.Context, user string) (string, error) {
	s.mu.Lock()
	if s.opt.Now().Before(s.cached.until) {
		t := s.cached.access
		s.mu.Unlock()
		return t, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.run(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", &Error{Kind: KindTemporary, Op: "client_credentials", Err: ctx.Err()}
	}
}

func (s *AppTokenSource) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.RefreshTimeout)
	defer cancel()
	t, err := s.p.clientCredentials(ctx)
	result := ResultOK
	if err != nil {
		result = ResultTemporary
		s.opt.Logger.Warn("client-credentials token request failed", "err", err)
	}
	if s.opt.Observer != nil {
		s.opt.Observer.TokenRefresh(result)
	}
	s.mu.Lock()
	if err == nil {
		s.cached = cached{t.Access, usableUntil(t, s.opt.Now(), s.opt.Margin)}
		f.token = t.Access
	} else {
		s.cached = cached{}
		f.err = err
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}
