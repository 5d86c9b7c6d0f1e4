package pop3front

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("pop3: server closed")

// DefaultGreeting is the greeting text used when Server.Greeting is empty.
const DefaultGreeting = "POP3 gateway ready."

// Server serves POP3 sessions from a Backend. Set the fields before the
// first Serve or ServeConn and do not change them afterwards.
type Server struct {
	Backend  Backend
	Logger   *slog.Logger // nil: slog.Default()
	Observer Observer     // may be nil
	Limits   Limits       // zero fields take their defaults
	// Greeting is the text after "+OK " in the greeting; "" means
	// DefaultGreeting.
	Greeting string
	// Implementation is the CAPA IMPLEMENTATION value (RFC 2449 section
	// 6.9); "" (the default) does not advertise it.
	Implementation string
	// Expire is the CAPA EXPIRE value (RFC 2449 section 6.7), e.g. "NEVER"
	// or "0"; "" does not advertise it. When the value differs per user,
	// it must be the smallest any user may get followed by " USER", and
	// the maildrops should implement Expirer: after login CAPA gives the
	// user's value.
	Expire string
	// TLSConfig is what ServeTLS handshakes with, and enables STLS (RFC
	// 2595) on plain connections; nil offers no TLS. It should set
	// MinVersion (TLS 1.2 at least, RFC 8314 section 4.1) and NextProtos
	// {"pop3"} (RFC 8314 section 7); GetCertificate lets certificates
	// change without a restart.
	TLSConfig *tls.Config
	// Plaintext says where passwords may be sent without TLS
	// (plaintext.go); the zero value allows loopback clients only.
	Plaintext PlaintextPolicy
	// AllowMasterUser lets a SASL PLAIN authorization identity differ from
	// the authentication identity (a master user logging in as another
	// user); the Backend then gets both in LoginRequest and must have the
	// store check that authcid may act as authzid. When false (the
	// default) such a request fails like a wrong password and never
	// reaches the Backend.
	AllowMasterUser bool
	// Trace, when set, logs the protocol lines of chosen sessions
	// (wiretrace.go); nil traces nothing.
	Trace *WireTrace

	capsOnce    sync.Once
	caps        *connCaps
	penaltyOnce sync.Once
	penalty     *penaltyTable

	inShutdown atomic.Bool
	forced     atomic.Bool // Close, or Shutdown gave up waiting

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	sessions  map[*session]struct{}
	baseCtx   context.Context
	cancel    context.CancelFunc
}

// Serve accepts connections on l and serves each in its own goroutine. It
// returns ErrServerClosed after Shutdown or Close, and any other accept
// error that is not temporary. Serve closes l when it returns.
func (srv *Server) Serve(l net.Listener) error { return srv.serve(l, false) }

// ServeTLS is Serve for implicit TLS (POP3S, RFC 8314 section 3.3): each
// connection first completes a TLS handshake with TLSConfig, within
// Limits.TLSHandshakeTimeout, and only then gets the greeting. STLS is
// refused on these connections. TLSConfig must be set.
func (srv *Server) ServeTLS(l net.Listener) error {
	if srv.TLSConfig == nil {
		l.Close()
		return errors.New("pop3: ServeTLS without TLSConfig")
	}
	return srv.serve(l, true)
}

func (srv *Server) serve(l net.Listener, implicitTLS bool) error {
	if !srv.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer srv.trackListener(&l, false)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if srv.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			//lint:ignore SA1019 Temporary is deprecated, but EMFILE and friends are retried, as net/http does
			if errors.As(err, &ne) && ne.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				srv.logger().Warn("pop3 accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			l.Close()
			return err
		}
		delay = 0
		go srv.serveConn(c, implicitTLS)
	}
}

// ServeConn serves one session on conn and returns when it ended; conn is
// closed by then. It is what Serve runs for each connection, and usable on
// its own (tests, or a listener the caller manages).
func (srv *Server) ServeConn(conn net.Conn) { srv.serveConn(conn, false) }

// ServeTLSConn is ServeConn for a connection accepted on an implicit-TLS
// listener: the session starts with the TLS handshake (see ServeTLS).
func (srv *Server) ServeTLSConn(conn net.Conn) {
	if srv.TLSConfig == nil {
		conn.Close()
		srv.logger().Error("pop3: ServeTLSConn without TLSConfig")
		return
	}
	srv.serveConn(conn, true)
}

func (srv *Server) serveConn(conn net.Conn, implicitTLS bool) {
	s := newSession(srv, conn, implicitTLS)
	if !srv.trackSession(s, true) {
		// Shutting down: refuse politely, bounded (a TLS client could not
		// read a cleartext line: it is just closed).
		if !implicitTLS {
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.Write([]byte("-ERR " + textShuttingDown + "\r\n"))
		}
		conn.Close()
		return
	}
	defer srv.trackSession(s, false)
	s.serve()
}

// Shutdown stops accepting connections and ends sessions gracefully:
// sessions still in the AUTHORIZATION state are answered
// "-ERR [SYS/TEMP] Server shutting down" and closed; authenticated
// sessions are left to finish (QUIT, idle timeout or client drop) until
// ctx is done, then closed without committing anything (docs/design.md, invariant 1), and
// Shutdown returns ctx.Err(). It returns nil once every session ended.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.inShutdown.Store(true)
	srv.mu.Lock()
	lerr := srv.closeListenersLocked()
	for s := range srv.sessions {
		s.interruptAuth()
	}
	srv.mu.Unlock()

	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if srv.numSessions() == 0 {
			return lerr
		}
		select {
		case <-ctx.Done():
			srv.closeSessions()
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, 50*time.Millisecond)
			t.Reset(poll)
		}
	}
}

// Close closes every listener and every session's connection at once.
// Nothing is committed; backend calls in flight see their context
// cancelled.
func (srv *Server) Close() error {
	srv.inShutdown.Store(true)
	srv.mu.Lock()
	err := srv.closeListenersLocked()
	srv.mu.Unlock()
	srv.closeSessions()
	return err
}

func (srv *Server) logger() *slog.Logger {
	if srv.Logger != nil {
		return srv.Logger
	}
	return slog.Default()
}

// penalties returns the server's failed-login penalty table.
func (srv *Server) penalties() *penaltyTable {
	srv.penaltyOnce.Do(func() {
		lim := srv.Limits.withDefaults()
		srv.penalty = newPenaltyTable(lim.AuthPenaltyInitial, lim.AuthPenaltyMax)
	})
	return srv.penalty
}

// connCounts returns the server's connection and session counters.
func (srv *Server) connCounts() *connCaps {
	srv.capsOnce.Do(func() { srv.caps = new(connCaps) })
	return srv.caps
}

// Inherit makes srv share old's connection counts and failed-login
// penalties, so that a server built from a reloaded configuration takes
// over new sessions without giving clients fresh caps or forgiving
// recent failures. The caps and penalty durations are srv's own. Call it
// before srv serves its first connection.
func (srv *Server) Inherit(old *Server) {
	srv.capsOnce.Do(func() { srv.caps = old.connCounts() })
	lim := srv.Limits.withDefaults()
	table := old.penalties()
	table.setDurations(lim.AuthPenaltyInitial, lim.AuthPenaltyMax)
	srv.penaltyOnce.Do(func() { srv.penalty = table })
}

func (srv *Server) observer() Observer {
	if srv.Observer != nil {
		return srv.Observer
	}
	return nopObserver{}
}

// context returns the parent of every session context; Close cancels it.
func (srv *Server) context() context.Context {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.baseCtx == nil {
		srv.baseCtx, srv.cancel = context.WithCancel(context.Background())
		if srv.forced.Load() {
			srv.cancel()
		}
	}
	return srv.baseCtx
}

func (srv *Server) trackListener(l *net.Listener, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if add {
		if srv.inShutdown.Load() {
			return false
		}
		if srv.listeners == nil {
			srv.listeners = make(map[*net.Listener]struct{})
		}
		srv.listeners[l] = struct{}{}
	} else {
		delete(srv.listeners, l)
	}
	return true
}

func (srv *Server) closeListenersLocked() error {
	var err error
	for l := range srv.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (srv *Server) trackSession(s *session, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if add {
		if srv.inShutdown.Load() {
			return false
		}
		if srv.sessions == nil {
			srv.sessions = make(map[*session]struct{})
		}
		srv.sessions[s] = struct{}{}
	} else {
		delete(srv.sessions, s)
	}
	return true
}

func (srv *Server) numSessions() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// closeSessions forces every session to end without committing: the
// context first (so no Commit can start or finish), then the connections.
func (srv *Server) closeSessions() {
	srv.forced.Store(true)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cancel != nil {
		srv.cancel()
	}
	for s := range srv.sessions {
		s.raw.Close()
	}
}

type nopObserver struct{}

func (nopObserver) SessionStarted()                    {}
func (nopObserver) SessionEnded(string, time.Duration) {}
func (nopObserver) Login(string, string)               {}
func (nopObserver) Command(string)                     {}
func (nopObserver) Retrieved(bool, int64)              {}
func (nopObserver) Update(int, string)                 {}
func (nopObserver) AuthPenalty(time.Duration)          {}
func (nopObserver) TLSHandshake(string, string, error) {}
