package daemon

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/internal/pgtest"
)

// TestVaultSharedPostgres: two gateway instances share one PostgreSQL
// store. Both hold the user's access token; the provider ends it, and 20
// POP3 sessions arrive at once, half on each instance. Every session
// must log in, and exactly one refresh may reach the provider: the
// instances' own single-flight plus the store's row lock, under which
// the second instance finds the first one's new token.
func TestVaultSharedPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startVaultEnv(t, func(c *Config) {
		c.Auth.Store = dsn
		c.Limits.MaxSessionsPerUser, c.Limits.MaxConnectionsPerIP = 50, 50
		c.DebugWire = ""
	})
	b := startVaultGateway(t, a.op, a.up.Addr(), func(c *Config) {
		c.Auth.Store, c.Auth.KeyFile = dsn, a.cfg.Auth.KeyFile
		c.Limits.MaxSessionsPerUser, c.Limits.MaxConnectionsPerIP = 50, 50
		c.DebugWire = ""
	})
	a.enroll(t)
	pw := a.addDevice(t, "phone")
	// Each instance logs in once, caching the enrolled token.
	for _, e := range []*vaultEnv{a, b} {
		c, r := e.login(t, pw)
		if !strings.HasPrefix(r, "+OK") {
			t.Fatalf("warm-up login: %q", r)
		}
		c.Cmd("QUIT")
	}
	if got := a.op.TokenCalls(oidctest.GrantRefresh); got != 0 {
		t.Fatalf("refreshes before expiry = %d, want 0", got)
	}

	a.op.ExpireAccessTokens()
	const sessions = 20
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	start := make(chan struct{})
	for i := range sessions {
		e := a
		if i%2 == 1 {
			e = b
		}
		c := dialPOP3(t, e.gw.POP3Addr())
		c.Cmd("USER " + vaultUser)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fmt.Fprintf(c.C, "PASS %s\r\n", pw)
			l, err := c.R.ReadString('\n')
			if err != nil || !strings.HasPrefix(l, "+OK") {
				errs <- fmt.Errorf("session %d: %q %v", i, l, err)
				return
			}
			fmt.Fprintf(c.C, "QUIT\r\n")
			c.R.ReadString('\n')
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := a.op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refreshes at the provider for %d sessions on 2 instances = %d, want exactly 1", sessions, got)
	}
	ok := metricValue(t, a.gw, `popbridge_vault_logins_total{result="ok"}`) + metricValue(t, b.gw, `popbridge_vault_logins_total{result="ok"}`)
	if ok != sessions+2 {
		t.Errorf("vault logins ok on both instances = %v, want %d", ok, sessions+2)
	}
}
