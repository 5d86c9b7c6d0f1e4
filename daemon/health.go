package daemon

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// readiness answers /readyz: ready only while the upstream accepts a
// connection and greets (with TLS verified when configured) within the
// timeout. Results are cached briefly so a busy load balancer's probes do
// not become a connection storm on the IMAP server.
type readiness struct {
	probe   func(context.Context) error
	timeout time.Duration
	ttl     time.Duration

	mu      sync.Mutex
	checked time.Time
	last    error
}

func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < r.ttl {
		return r.last
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.last = r.probe(ctx)
	r.checked = time.Now()
	return r.last
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := r.check(req.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "upstream not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// healthz answers /healthz: 200 while the process serves.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
