package oauth

import (
	"context"
	"errors"
	"time"
)

// Tokens are one user's OAuth 2.0 tokens.
type Tokens struct {
	Refresh      string    // refresh token; empty for the client-credentials grant
	Access       string    // access token; empty until the first refresh
	AccessExpiry time.Time // when Access expires; zero: unknown (treated as expired)
}

// GrantStore keeps the users' grants. The vault's store implements it;
// MemoryGrants is an in-memory one.
type GrantStore interface {
	// Refresh runs fn while holding a per-user lock that excludes every
	// other Refresh of the same user, in this process and every other
	// process sharing the store. fn gets the current tokens; if it
	// returns tokens that differ, they are saved atomically before the
	// lock is released. An error from fn saves nothing and is returned.
	// It returns an error matching ErrNoGrant (errors.Is) when the user
	// has no grant.
	Refresh(ctx context.Context, user string, fn func(cur Tokens) (Tokens, error)) (Tokens, error)
	// PutGrant stores a new grant (after enrolment), replacing any other.
	PutGrant(ctx context.Context, user string, t Tokens) error
	// RecordRefresh notes the outcome of a refresh at the provider (nil:
	// success), for status pages.
	RecordRefresh(ctx context.Context, user string, err error) error
	// MarkNeedsReenrollment notes that the user's grant is no longer
	// accepted and the user must enrol again; reason is for the admin.
	MarkNeedsReenrollment(ctx context.Context, user string, reason string) error
}

// ErrNoGrant is what a GrantStore's error matches when the user has no
// grant; TokenSource reports it as an error needing (re-)enrolment.
var ErrNoGrant = errors.New("oauth: no grant stored for user")

// Observer receives metrics events. It must be safe for concurrent use
// and must not block.
type Observer interface {
	// TokenRefresh is called once per call of the provider's token
	// endpoint for a refresh or client-credentials grant; result is "ok",
	// "invalid_grant" (the grant is gone: re-enrolment needed) or
	// "temporary_error" (every other failure, configuration errors such
	// as invalid_client included, which the log tells apart).
	TokenRefresh(result string)
}

// Refresh results given to Observer.TokenRefresh.
const (
	ResultOK           = "ok"
	ResultTemporary    = "temporary_error"
	ResultInvalidGrant = "invalid_grant"
)
