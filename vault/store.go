package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Errors of the store. The three login failures (ErrWrongPassword,
// ErrUnknownDevice, ErrNetworkNotAllowed) are told apart for logs and
// metrics only: a POP3 client must get the same answer for all of them.
var (
	ErrNoUser            = errors.New("vault: no such user")
	ErrUserExists        = errors.New("vault: user exists")
	ErrNoDevice          = errors.New("vault: no such device")
	ErrDeviceExists      = errors.New("vault: device name in use for this user")
	ErrTooManyDevices    = fmt.Errorf("vault: a user may have at most %d devices", MaxDevicesPerUser)
	ErrWrongPassword     = errors.New("vault: wrong device password")
	ErrUnknownDevice     = errors.New("vault: user unknown or has no device (never added or revoked)")
	ErrNetworkNotAllowed = errors.New("vault: device password used from a network the device is not allowed")
	ErrNoGrant           = errors.New("vault: user has no delegated grant (enrol first)")
	ErrNoKey             = errors.New("vault: no key file configured, tokens cannot be sealed or opened")
	ErrSchemaTooNew      = errors.New("vault: store schema is newer than this program knows")
)

// MaxDevicesPerUser bounds the devices of one user. A login tries the
// user's device hashes one after another (the password does not say which
// device it belongs to), so this also bounds the cost of a wrong password.
const MaxDevicesPerUser = 16

// Tokens is what the store keeps for one user's delegated grant.
type Tokens struct {
	Refresh      string
	Access       string
	AccessExpiry time.Time
}

func (t Tokens) equal(u Tokens) bool {
	return t.Refresh == u.Refresh && t.Access == u.Access && t.AccessExpiry.Equal(u.AccessExpiry)
}

// User is a user's record, without secrets.
type User struct {
	Name    string
	Created time.Time
	// HasGrant tells whether a refresh token is stored.
	HasGrant     bool
	AccessExpiry time.Time // of the cached access token; zero if none
	LastRefresh  time.Time // of the last refresh attempt; zero if none
	// LastError is the outcome of the last refresh attempt or the reason
	// for needing re-enrolment; empty when the last refresh succeeded.
	LastError         string
	NeedsReenrollment bool
	Devices           int
}

// Store keeps users, their devices and their delegated grants. All methods
// are safe for concurrent use, also by several processes sharing the store.
type Store interface {
	// AddUser adds a user without devices or grant (ErrUserExists).
	AddUser(ctx context.Context, user string) error
	// GetUser returns a user's record (ErrNoUser).
	GetUser(ctx context.Context, user string) (User, error)
	// ListUsers returns all users ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// RemoveUser removes a user with its devices and grant (ErrNoUser).
	RemoveUser(ctx context.Context, user string) error

	// AddDevice adds a device, creating the user if needed, and returns it
	// with its password. The password is not stored and cannot be shown
	// again. ErrDeviceExists, ErrTooManyDevices.
	AddDevice(ctx context.Context, user, name string, allowed []netip.Prefix) (Device, string, error)
	// ListDevices returns the devices of user, or of all users if user is
	// empty, ordered by user and name.
	ListDevices(ctx context.Context, user string) ([]Device, error)
	// RevokeDevice deletes a device (ErrNoDevice). Nothing is cached, so
	// the next login with its password fails.
	RevokeDevice(ctx context.Context, user, name string) error
	// Authenticate checks a POP3 login and records the device's last use
	// (time and client address) on success. Errors: ErrUnknownDevice,
	// ErrWrongPassword, ErrNetworkNotAllowed, or a store failure.
	Authenticate(ctx context.Context, user, password string, client netip.Addr) (Device, error)

	// Refresh runs fn while holding a per-user lock that excludes every other
	// Refresh of the same user, in this process and in every other process
	// sharing the store. fn gets the current tokens (decrypted); if it returns
	// tokens that differ, they are saved (encrypted) atomically before the lock
	// is released, so a rotated refresh token is never lost. An error from fn
	// saves nothing and is returned. ErrNoGrant when the user has no grant.
	//
	// fn must honour ctx (the caller's, which fn closes over): the lock and
	// the store's write lock (SQLite) are held until it returns. An empty
	// Refresh in fn's result keeps the current refresh token, since
	// providers that do not rotate send none. Once fn has returned, the save
	// runs even if ctx has ended meanwhile, so a token the provider has
	// already rotated is not dropped for a deadline.
	Refresh(ctx context.Context, user string, fn func(cur Tokens) (Tokens, error)) (Tokens, error)
	// PutGrant stores a newly enrolled grant (clears needs_reenrollment),
	// creating the user if needed.
	PutGrant(ctx context.Context, user string, t Tokens) error
	// RecordRefresh notes a refresh's outcome for `user list` (err nil = ok).
	RecordRefresh(ctx context.Context, user string, err error) error
	// MarkNeedsReenrollment flags the user (a revoked grant / invalid_grant).
	MarkNeedsReenrollment(ctx context.Context, user string, reason string) error
	// UsersNeedingReenrollment counts flagged users (for a gauge).
	UsersNeedingReenrollment(ctx context.Context) (int, error)
	// Ping checks the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Options configure Open.
type Options struct {
	// Key seals tokens. Without it the device operations work (as for a
	// Dovecot master-user upstream) and the token operations return ErrNoKey.
	Key *Key
	// Logger receives warnings, e.g. when a device's last use cannot be
	// recorded. Nil discards them. Secrets are never logged.
	Logger *slog.Logger
}

// Open opens the store named by dsn and brings its schema up to date.
//
// DSN formats:
//
//	sqlite:PATH              SQLite file (created with mode 0600), e.g.
//	                         sqlite:/var/lib/popbridge/vault.db
//	postgres://USER@HOST/DB  PostgreSQL connection URL (also postgresql://),
//	                         with any libpq URL parameters, e.g.
//	                         postgres://popbridge@db.example/popbridge?sslmode=verify-full
//
// SQLite suits one gateway instance (and admin commands run beside it);
// several instances share one PostgreSQL database.
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	var sealer *Sealer
	if opts.Key != nil {
		var err error
		if sealer, err = NewSealer(opts.Key); err != nil {
			return nil, err
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), sealer, log)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, sealer, log)
	}
	return nil, fmt.Errorf("vault: store DSN must start with sqlite: or postgres://")
}
