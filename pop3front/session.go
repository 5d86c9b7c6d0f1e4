package pop3front

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// state is a POP3 session state (RFC 1939 section 3), as a bit so a
// command can list the states it is valid in. UPDATE is not a state here:
// QUIT in TRANSACTION runs it and ends the session.
type state uint8

const (
	stateAuth  state = 1 << iota // AUTHORIZATION
	stateTrans                   // TRANSACTION
)

// Buffer sizes. Every session keeps a small writer of its own (thousands
// of idle or hostile connections must stay cheap). In TRANSACTION a
// command is answered through a large writer lent from transWriters for
// as long as the session has work buffered: a 20-80 KB message goes out
// in one write with its terminator, a large one in few large writes. It
// goes back to the pool at the flush before the session waits for the
// next command, so an idle session holds none.
const (
	authWriteBuffer  = 4096
	transWriteBuffer = 128 << 10
	copyBufferSize   = 128 << 10
)

// transWriters lends the large TRANSACTION writers (see lendWriter).
var transWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, transWriteBuffer) }}

// finalWriteTimeout bounds the best-effort reply written on an abnormal
// end (timeout, shutdown), so a client that stopped reading cannot hold
// the session for a whole WriteTimeout.
const finalWriteTimeout = 5 * time.Second

// lingerTimeout and lingerBytes bound how long and how much the session
// drains after its last reply, so that a client that pipelined commands
// after QUIT gets the reply instead of a TCP reset.
const (
	lingerTimeout = 250 * time.Millisecond
	lingerBytes   = 64 << 10
)

// copyBuffers holds the buffers RETR and TOP read message streams into.
var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// session is one POP3 connection. Only its own goroutine touches it,
// except mu-guarded st, and raw (Shutdown, Close).
type session struct {
	srv  *Server
	raw  net.Conn // the accepted connection; never replaced
	conn net.Conn // what the session speaks over: raw, or TLS over raw
	lim  Limits
	log  *slog.Logger
	obs  Observer
	ctx  context.Context

	implicitTLS bool       // handshake before the greeting (ServeTLS)
	ip          netip.Addr // the client's address (PROXY-carried if so), zero if none
	// relayedUnknown: the client's address is unknown and ip is its
	// relay's (UnknownClient); never loopback.
	relayedUnknown bool
	ipKey          netip.Prefix // ip's unit for caps and penalties
	client         string       // the client's address with port, for logs
	holdsConn      bool         // a connection slot is taken (connlimits.go)
	userSlot       string       // the user whose session slot is taken, if any

	cw    *connWriter
	br    *bufio.Reader
	bw    *bufio.Writer // the writer replies go to: small, or lent (lendWriter)
	small *bufio.Writer // the session's own writer
	lent  bool          // bw is from transWriters
	lr    lineReader
	dw    dotWriter
	sink  bodySink // dw for io.WriterTo streams (message.go)

	mu sync.Mutex // guards st against interruptAuth
	st state

	user    string // from USER, waiting for PASS
	hasUser bool
	bad     int // bad commands in the current state

	// TRANSACTION state.
	authUser  string // who logged in
	mech      string
	drop      Maildrop
	stream    io.ReadCloser // the open message stream, if any
	msgs      []MessageInfo
	deleted   []bool
	retrieved []bool
	nDeleted  int

	// For the end-of-session log line.
	start      time.Time
	nRetrieved int
	retrBytes  int64
	nTop       int
	authFails  int
	update     string      // QUIT update: "applied", "failed", "none"; "" if not reached
	tracing    bool        // protocol lines are logged (Server.Trace)
	curCmd     string      // the command being handled, redacted (Server.Trace only)
	curSteps   []traceLine // its SASL steps, until the user is known (wiretrace.go)
}

// connWriter gives every write to the client its own deadline: one flush
// of the session's buffer is one write (Limits.WriteTimeout is per chunk,
// not per message).
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w *connWriter) Write(p []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.conn.Write(p)
}

func newSession(srv *Server, conn net.Conn, implicitTLS bool) *session {
	lim := srv.Limits.withDefaults()
	s := &session{
		srv:         srv,
		raw:         conn,
		conn:        conn,
		implicitTLS: implicitTLS,
		lim:         lim,
		log:         srv.logger(),
		obs:         srv.observer(),
		ctx:         srv.context(),
		st:          stateAuth,
		start:       time.Now(),
	}
	s.cw = &connWriter{conn: conn, timeout: lim.WriteTimeout}
	s.br = bufio.NewReaderSize(conn, readBufferSize(lim.MaxLineLength))
	s.small = bufio.NewWriterSize(s.cw, authWriteBuffer)
	s.bw = s.small
	s.lr = newLineReader(s.br, lim.MaxLineLength)
	// AuthTimeout is absolute: set once, before the session is visible to
	// Shutdown, and never extended in AUTHORIZATION.
	conn.SetReadDeadline(s.authDeadline())
	s.tracing = srv.Trace.Matches("")
	return s
}

// authDeadline is when the AUTHORIZATION state ends, whatever happens.
func (s *session) authDeadline() time.Time { return s.start.Add(s.lim.AuthTimeout) }

// sessionEnd ends the session loop: reason is one of the Observer's end
// names; noFlush drops buffered output (a partial body must not be
// flushed after a failure, and a gone client cannot read it).
type sessionEnd struct {
	reason  string
	err     error
	noFlush bool
}

func (e *sessionEnd) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func endWith(reason string, err error) *sessionEnd { return &sessionEnd{reason: reason, err: err} }

// testHookPanic, when set by a test, sees every panic the session
// recovered.
var testHookPanic func(v any)

// serve runs the session to its end. Whatever happens (including a panic
// in a backend), the connection is closed and the maildrop Closed, never
// Committed outside QUIT.
func (s *session) serve() {
	s.obs.SessionStarted()
	var end *sessionEnd
	defer func() {
		if v := recover(); v != nil {
			if testHookPanic != nil {
				testHookPanic(v)
			}
			s.log.Error("pop3 session panic", "client", s.clientAddr(), "panic", v, "stack", string(debug.Stack()))
			end = &sessionEnd{reason: "error", err: fmt.Errorf("panic: %v", v), noFlush: true}
		}
		s.finish(end)
	}()
	end = s.loop()
}

func (s *session) loop() *sessionEnd {
	// The client's address comes first: behind a PROXY protocol listener
	// reading it reads the header (bounded by the listener's deadline).
	s.setClient(s.raw.RemoteAddr())
	refusal := s.srv.connCounts().acquireConn(s.ipKey, &s.lim)
	s.holdsConn = refusal == ""
	if s.implicitTLS {
		// A refused POP3S client still gets its -ERR, over TLS (the
		// handshake is bounded).
		if err := s.startTLS(); err != nil {
			return s.tlsFailed(err)
		}
	}
	if refusal != "" {
		s.log.Info("pop3 connection refused", "ip", s.ipString(), "client", s.client, "reason", refusal)
		s.err(refusal)
		return s.final("refused", nil)
	}
	s.ok(safeText(s.greeting(), maxReplyLine-8))
	for {
		if s.state() == stateAuth && s.srv.inShutdown.Load() {
			s.err(textShuttingDown)
			return s.final("shutdown", nil)
		}
		if !s.lr.hasLine() {
			if err := s.flush(); err != nil {
				return s.ioEnd(err)
			}
		}
		if s.state() == stateTrans {
			s.conn.SetReadDeadline(time.Now().Add(s.lim.IdleTimeout))
		}
		line, err := s.lr.readLine()
		if err != nil {
			return s.readFailed(err)
		}
		s.lendWriter()
		if err := s.handle(line); err != nil {
			var se *sessionEnd
			if errors.As(err, &se) {
				return se
			}
			return s.ioEnd(err)
		}
	}
}

func (s *session) greeting() string {
	if s.srv.Greeting != "" {
		return s.srv.Greeting
	}
	return DefaultGreeting
}

// flush writes buffered replies and gives a lent writer back: the
// session is about to wait for its next command.
func (s *session) flush() error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	s.returnWriter()
	return nil
}

// lendWriter switches a TRANSACTION session to a large writer for the
// command it is about to handle. Only an empty small writer is swapped,
// so replies keep their order; with replies still buffered (commands
// pipelined right behind the login) the small one carries on until the
// next flush.
func (s *session) lendWriter() {
	if s.lent || s.state() != stateTrans || s.small.Buffered() > 0 {
		return
	}
	w := transWriters.Get().(*bufio.Writer)
	w.Reset(s.cw)
	s.bw, s.lent = w, true
}

// returnWriter gives a lent writer back, discarding anything in it (it
// is empty after a successful flush; after a failure, nothing more may
// be written anyway). Only the session's goroutine writes through it.
func (s *session) returnWriter() {
	if !s.lent {
		return
	}
	s.bw.Reset(nil)
	transWriters.Put(s.bw)
	s.bw, s.lent = s.small, false
}

// readFailed turns a failed command read into the session's end.
func (s *session) readFailed(err error) *sessionEnd {
	switch {
	case errors.Is(err, errLineTooLong):
		s.err(textLineTooLong)
		return s.final("too_many_errors", err)
	case s.srv.forced.Load():
		return &sessionEnd{reason: "shutdown", err: err, noFlush: true}
	case isTimeout(err):
		if s.state() == stateAuth {
			if s.srv.inShutdown.Load() {
				s.err(textShuttingDown)
				return s.final("shutdown", nil)
			}
			s.err(textLoginTimeout)
		} else {
			s.err(textIdleTimeout)
		}
		return s.final("timeout", err)
	}
	return s.ioEnd(err)
}

// final ends the session after a best-effort last reply.
func (s *session) final(reason string, err error) *sessionEnd {
	s.cw.timeout = min(s.cw.timeout, finalWriteTimeout)
	return endWith(reason, err)
}

// ioEnd classifies a client read or write failure.
func (s *session) ioEnd(err error) *sessionEnd {
	reason := "client_gone"
	switch {
	case s.srv.forced.Load():
		reason = "shutdown"
	case isTimeout(err):
		reason = "timeout"
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return &sessionEnd{reason: reason, err: err, noFlush: true}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// finish releases everything: reply flushed (unless noFlush), connection
// closed, stream and maildrop Closed (never Committed), one log line.
func (s *session) finish(end *sessionEnd) {
	if end == nil {
		end = &sessionEnd{reason: "error", noFlush: true}
	}
	if !end.noFlush && s.bw.Flush() == nil {
		s.linger()
	}
	s.returnWriter()
	if end.noFlush {
		// Close under TLS first: its close_notify could otherwise wait
		// on a client that stopped reading.
		s.raw.Close()
	}
	s.conn.Close()
	s.raw.Close() // a failed TLS handshake leaves it to us
	if s.holdsConn {
		s.srv.connCounts().releaseConn(s.ipKey)
		s.holdsConn = false
	}
	if s.userSlot != "" {
		s.srv.connCounts().releaseUser(s.userSlot)
		s.userSlot = ""
	}
	if s.stream != nil {
		s.safeClose("stream", s.stream)
		s.stream = nil
	}
	info := maildropAttrs(s.drop) // sessioninfo.go
	if s.drop != nil {
		s.safeClose("maildrop", s.drop)
		s.drop = nil
	}
	d := time.Since(s.start)
	s.obs.SessionEnded(end.reason, d)

	s.logEnd(end, d, info) // sessionlog.go
}

// linger half-closes the connection and drains what the client still
// sends for a moment, so pipelined bytes after QUIT (or after the line
// that ended the session) do not turn our last reply into a TCP reset.
func (s *session) linger() {
	cw, ok := s.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	s.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, s.br, lingerBytes)
}

// safeClose closes c, surviving a panic in it (docs/design.md, invariant 10).
func (s *session) safeClose(what string, c io.Closer) {
	defer func() {
		if v := recover(); v != nil {
			if testHookPanic != nil {
				testHookPanic(v)
			}
			s.log.Error("pop3 panic in close", "what", what, "panic", v)
		}
	}()
	if err := c.Close(); err != nil {
		s.log.Debug("pop3 close failed", "what", what, "client", s.clientAddr(), "err", err)
	}
}

// setClient records the client's address: the peer's, or the one a
// PROXY header carried (the listener's net.Conn reports it).
func (s *session) setClient(a net.Addr) {
	if a != nil {
		s.client = a.String()
	}
	if u, ok := a.(UnknownClient); ok {
		s.relayedUnknown = true
		a = u.Relay
	}
	s.ip = addrIP(a)
	s.ipKey = ipKey(s.ip)
}

func (s *session) clientAddr() string { return s.client }

// ipString is the client's IP for logs, "" when it has none.
func (s *session) ipString() string {
	if !s.ip.IsValid() {
		return ""
	}
	return s.ip.String()
}

// clientNetAddr is the client's address for LoginRequest.Client.
func (s *session) clientNetAddr() net.Addr { return s.raw.RemoteAddr() }

func (s *session) isTLS() bool {
	_, ok := s.conn.(interface{ ConnectionState() tls.ConnectionState })
	return ok
}

func (s *session) state() state {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// interruptAuth wakes a session blocked reading in AUTHORIZATION, for
// Shutdown; the loop then answers "shutting down".
func (s *session) interruptAuth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == stateAuth {
		s.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// enterTransaction switches to TRANSACTION unless the server started
// shutting down meanwhile; Shutdown checks the state under the same lock,
// so a session is either interrupted or authenticated, never both.
func (s *session) enterTransaction() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.inShutdown.Load() {
		return false
	}
	s.st = stateTrans
	return true
}

// badCommand answers a bad command (unknown, wrong state, syntax error)
// and counts it; the one that reaches the limit is answered
// "-ERR Too many bad commands" instead and ends the session.
func (s *session) badCommand(text string) error {
	if s.countBad() {
		s.err(textTooManyBad)
		return s.final("too_many_errors", nil)
	}
	s.err(text)
	return nil
}

// countBad counts one bad command and reports whether the limit is hit.
func (s *session) countBad() bool {
	s.bad++
	limit := s.lim.MaxBadCommands
	if s.state() == stateTrans {
		limit = s.lim.MaxBadCommandsAuthed
	}
	return s.bad >= limit
}
