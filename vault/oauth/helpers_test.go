package oauth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/oidctest"
)

// clock is a settable time source shared by a Provider and token sources.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countObserver counts TokenRefresh results.
type countObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *countObserver) TokenRefresh(result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[result]++
}

func (o *countObserver) get(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[result]
}

// startOP starts the test provider with one user.
func startOP(t *testing.T, opts oidctest.Options) *oidctest.Server {
	t.Helper()
	op, err := oidctest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	op.AddUser("alice@example.org", "alice-pw")
	return op
}

// newOIDCProvider configures the test provider by discovery, with clk as
// its clock and a sleep that records the waits and does not wait.
func newOIDCProvider(t *testing.T, op *oidctest.Server, clk *clock, app bool) *Provider {
	t.Helper()
	cfg := Config{Provider: ProviderOIDC, Issuer: op.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		Scopes: []string{"openid", "offline_access", "mail"}}
	if app {
		cfg.ClientID, cfg.ClientSecret = oidctest.AppClientID, oidctest.AppClientSecret
		cfg.AppScopes = []string{"mail"}
	}
	p, err := NewProvider(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.now = clk.Now
	p.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return p
}

// enrol runs the device flow for alice, approving at the provider's pages,
// and stores the grant.
func enrol(t *testing.T, op *oidctest.Server, p *Provider, store GrantStore) {
	t.Helper()
	ctx := context.Background()
	da, err := p.StartDeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := oidctest.ApproveDevice(ctx, da.VerificationURI, da.UserCode, "alice@example.org", "alice-pw", true); err != nil {
		t.Fatal(err)
	}
	if err := p.EnrollDevice(ctx, store, "alice@example.org", da); err != nil {
		t.Fatal(err)
	}
}
