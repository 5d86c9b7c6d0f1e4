package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/popbridge/popbridge/pop3front"
)

// acceptor owns one POP3 listening socket. It hands every connection to
// the current generation's server, so a reload changes what new sessions
// get without closing the socket or touching running sessions.
type acceptor struct {
	key      string // config key, for logs and errors
	addr     string // as configured, to tell whether a reload moved it
	ln       net.Listener
	implicit bool // POP3S: the session starts with the TLS handshake
	closing  atomic.Bool
	stopped  chan struct{}
}

func listenAcceptor(ctx context.Context, key, addr string, implicit bool) (*acceptor, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &acceptor{key: key, addr: addr, ln: ln, implicit: implicit, stopped: make(chan struct{})}, nil
}

// serve accepts until close. Temporary errors (EMFILE) back off as
// net/http does; any other error is reported on done.
func (a *acceptor) serve(current func() *generation, done chan<- error, logger *slog.Logger) {
	defer close(a.stopped)
	var delay time.Duration
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if a.closing.Load() {
				return
			}
			var ne net.Error
			//lint:ignore SA1019 Temporary is deprecated, but EMFILE and friends are retried, as net/http does
			if errors.As(err, &ne) && ne.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				logger.Warn("pop3 accept failed, retrying", "listener", a.key, "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			done <- fmt.Errorf("%s: %w", a.key, err)
			return
		}
		delay = 0
		gen := current()
		if gen.proxy != nil {
			c = gen.proxy.wrap(c)
		}
		if a.implicit {
			go gen.server.ServeTLSConn(c)
		} else {
			go gen.server.ServeConn(c)
		}
	}
}

// close stops accepting and waits for the accept loop to end. Sessions
// already accepted are not affected.
func (a *acceptor) close() {
	if a == nil || a.closing.Swap(true) {
		return
	}
	a.ln.Close()
	<-a.stopped
}

// proxySettingsFor returns the PROXY protocol settings of cfg, nil when
// proxy_protocol is off.
func proxySettingsFor(cfg *Config, logger *slog.Logger) (*proxySettings, error) {
	if !cfg.POP3.ProxyProtocol {
		return nil, nil
	}
	trusted, err := parseTrusted(cfg.POP3.ProxyTrusted)
	if err != nil { // Validate refused it already
		return nil, fmt.Errorf("pop3.proxy_trusted: %w", err)
	}
	return &proxySettings{trusted: trusted, timeout: cfg.Limits.ProxyHeaderTimeout.Duration, logger: logger}, nil
}

// plaintextPolicy maps [pop3] allow_plaintext (validated) to pop3front's.
func plaintextPolicy(v PlaintextPolicy) pop3front.PlaintextPolicy {
	switch v {
	case PlaintextAlways:
		return pop3front.PlaintextAlways
	case PlaintextNever:
		return pop3front.PlaintextNever
	}
	return pop3front.PlaintextLoopback
}
