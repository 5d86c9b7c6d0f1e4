package nothinglost

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/pop3front"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logger returns a logger for the test: quiet unless POPBRIDGE_TEST_LOG=1.
func logger(t testing.TB) *slog.Logger {
	if os.Getenv("POPBRIDGE_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fastLimits are the gateway's limits in these tests: short enough that
// timeouts fire within a test, long enough for a loaded CI machine (with
// -race and other packages' Dovecot, PostgreSQL and Chromium beside it:
// 30 logins can take longer than 5 s, and a slow reader's 32 KiB read
// can come later than 1 s).
// Every client of these tests is 127.0.0.1 and most are one user, so
// the per-address and per-user caps are raised; load tests set their own.
var fastLimits = pop3front.Limits{
	AuthTimeout:         5 * time.Second,
	IdleTimeout:         30 * time.Second,
	WriteTimeout:        3 * time.Second,
	LoginTimeout:        5 * time.Second,
	CommitTimeout:       5 * time.Second,
	MaxConnections:      2000,
	MaxConnectionsPerIP: 2000,
	MaxSessionsPerUser:  1000,
}

// startGateway runs an in-process gateway in front of upstream until the
// test ends.
func startGateway(t testing.TB, upstream string, pol imapback.Policy, mod ...func(*gwtest.Options)) *gwtest.Gateway {
	t.Helper()
	o := gwtest.Options{
		Upstream:       upstream,
		Policy:         pol,
		Limits:         fastLimits,
		DialTimeout:    2 * time.Second,
		CommandTimeout: time.Second,
		Logger:         logger(t),
	}
	for _, f := range mod {
		f(&o)
	}
	g, err := gwtest.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// dial connects a POP3 client with a 30 s overall deadline.
func dial(t testing.TB, addr string) *pop3test.Conn {
	t.Helper()
	p, err := pop3test.Dial(addr, 30*time.Second)
	if err != nil {
		t.Fatalf("dial POP3: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAll reads what is left on the connection until it closes (bounded
// by the connection's deadline).
func readAll(p *pop3test.Conn) (string, error) {
	b, err := io.ReadAll(p.R)
	return string(b), err
}

// parallelLimit bounds how many heavy subtests run at once on the shared
// 2-core machines.
var parallelLimit = make(chan struct{}, 2)

// heavy marks a test parallel and takes a slot of parallelLimit.
func heavy(t *testing.T) {
	t.Parallel()
	parallelLimit <- struct{}{}
	t.Cleanup(func() { <-parallelLimit })
}
