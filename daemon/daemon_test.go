package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popbridge/popbridge/pop3front"
)

// countingBackend counts logins and passes them on.
type countingBackend struct {
	pop3front.Backend
	n *atomic.Int32
}

func (b countingBackend) Login(ctx context.Context, r *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	b.n.Add(1)
	return b.Backend.Login(ctx, r)
}

// TestStartOptions: what a caller passes in Options reaches the running
// gateway. WrapBackend wraps every generation's backend, before and after
// a reload; LogLevel follows [log] level on Reload; MetricsAddr is the
// bound address of a "127.0.0.1:0" metrics listener.
func TestStartOptions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Metrics.Listen = "127.0.0.1:0"
	var logins atomic.Int32
	level := new(slog.LevelVar)
	gw, err := Start(context.Background(), cfg, Options{
		Logger:      NewLogger(cfg.Log, level, io.Discard),
		LogLevel:    level,
		WrapBackend: func(b pop3front.Backend) pop3front.Backend { return countingBackend{b, &logins} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if got, want := gw.ShutdownGrace(), 10*time.Second; got != want {
		t.Errorf("ShutdownGrace = %v, want %v", got, want)
	}

	login := func() {
		t.Helper()
		c := dialPOP3(t, gw.POP3Addr())
		c.Cmd("USER demo")
		if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("PASS demo = %q, want prefix %q", r, "+OK")
		}
		c.Cmd("QUIT")
	}
	login()
	if got := logins.Load(); got != 1 {
		t.Errorf("wrapped logins = %d, want 1", got)
	}

	next := *cfg
	next.Log.Level = "debug"
	if err := gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if got := level.Level(); got != slog.LevelDebug {
		t.Errorf("level after reload = %v, want %v", got, slog.LevelDebug)
	}
	login()
	if got := logins.Load(); got != 2 {
		t.Errorf("wrapped logins after reload = %d, want 2", got)
	}

	addr := gw.MetricsAddr()
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("MetricsAddr = %q, want the bound address", addr)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz via MetricsAddr = %d, want 200", resp.StatusCode)
	}
}
