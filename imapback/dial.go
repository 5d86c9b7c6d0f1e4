package imapback

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// upstream is one IMAP connection.
type upstream struct {
	b      *Backend
	log    *slog.Logger
	conn   *watchConn
	c      *imapclient.Client
	router *router
	tls    bool

	closeOnce sync.Once
}

// connect dials the upstream, protects the connection as configured and
// waits for a usable greeting. The whole of it is bounded by DialTimeout
// and ctx. A PREAUTH greeting is refused in every mode (RFC 3501 section
// 7.1.4, RFC 9051 section 7.1.4): the session must be the user's own
// login, the gateway cannot tell whose mailbox a PREAUTH connection
// opened, and before STARTTLS it would skip TLS (RFC 3501 section 6.2.1).
//
// With idFields (Login, when forwarding is on), the pre-login exchange is
// done by hand after TLS, to send them with ID where advertised (id.go).
func (b *Backend) connect(ctx context.Context, idFields []string, trace *slog.Logger) (u *upstream, err error) {
	start := time.Now()
	defer func() { b.observe("connect", start, err) }()

	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()

	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", b.cfg.Address)
	if err != nil {
		return nil, tempErr(unavailableText, err)
	}
	// Until the greeting is in, ctx (with DialTimeout) owns the connection.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer func() {
		if !stop() || err != nil {
			raw.Close()
			if err == nil {
				err = tempErr(unavailableText, context.Cause(ctx))
			}
		}
	}()

	var conn net.Conn = raw
	var prefix []byte
	switch b.cfg.Security {
	case SecurityTLS:
		tc := tls.Client(raw, b.cfg.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, tempErr(unavailableText, fmt.Errorf("tls: %w", err))
		}
		conn = tc
	case SecurityStartTLS:
		tc, err := startTLS(raw, b.cfg.TLSConfig)
		if err != nil {
			return nil, tempErr(unavailableText, fmt.Errorf("starttls: %w", err))
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, tempErr(unavailableText, fmt.Errorf("starttls: %w", err))
		}
		conn = tc
		// STARTTLS has no second greeting but imapclient.New expects one.
		// Without CAPABILITY in it, go-imap asks for the post-TLS
		// capabilities, as RFC 3501 section 6.2.1 requires.
		prefix = []byte("* OK TLS established\r\n")
	}
	if trace != nil {
		conn = newTraceConn(conn, trace) // after TLS: what the server sees
	}
	if idFields != nil {
		// Bytes read here come from the protected stream only: TLS is
		// verified by now, and startTLS left nothing of the plaintext.
		p, err := b.identify(conn, b.cfg.Security == SecurityStartTLS, idFields)
		if err != nil {
			return nil, tempErr(unavailableText, err)
		}
		prefix = p
	}

	u = &upstream{
		b:      b,
		log:    b.log,
		conn:   &watchConn{Conn: conn, timeout: b.cfg.CommandTimeout, prefix: prefix},
		router: &router{},
		tls:    b.cfg.Security != SecurityNone,
	}
	u.c = imapclient.New(newQuirkConn(u.conn), &imapclient.Options{ // quirks.go: mailutils' "* n EXPUNGED"
		UnilateralDataHandler: u.router.handler(),
	})
	if err := u.c.WaitGreeting(); err != nil {
		u.closeClient()
		return nil, tempErr(unavailableText, fmt.Errorf("greeting: %w", err))
	}
	if st := u.c.State(); st != imap.ConnStateNotAuthenticated {
		u.closeClient()
		return nil, tempErr(unavailableText, fmt.Errorf("greeting: unexpected state %v (PREAUTH?)", st))
	}
	return u, nil
}

// maxPreTLSLine and maxPreTLSLines bound what a server may send before
// STARTTLS completes.
const (
	maxPreTLSLine  = 8 << 10
	maxPreTLSLines = 64
)

// startTLS runs the plaintext part of STARTTLS by hand: go-imap's
// NewStartTLS neither checks that STARTTLS is advertised nor refuses bytes
// the server (or a man in the middle) sent after the tagged OK, which it
// would carry into the TLS stream. Nothing of the plaintext phase survives
// except the decision to go on.
func startTLS(raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	br := bufio.NewReaderSize(raw, 4096)
	greeting, err := readPreTLSLine(br)
	if err != nil {
		return nil, err
	}
	switch {
	case hasPrefixFold(greeting, "* OK"):
	case hasPrefixFold(greeting, "* PREAUTH"):
		return nil, errors.New("PREAUTH greeting on a plaintext connection")
	default:
		return nil, fmt.Errorf("greeting refused: %.80q", greeting)
	}
	caps, ok := parseCapCode(greeting)
	if !ok {
		if _, err := raw.Write([]byte("S1 CAPABILITY\r\n")); err != nil {
			return nil, err
		}
		lines, err := readPreTLSResponse(br, "S1")
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if hasPrefixFold(l, "* CAPABILITY ") {
				caps = append(caps, strings.Fields(l[len("* CAPABILITY "):])...)
			}
		}
	}
	if !containsFold(caps, "STARTTLS") {
		return nil, errors.New("server does not advertise STARTTLS")
	}
	if _, err := raw.Write([]byte("S2 STARTTLS\r\n")); err != nil {
		return nil, err
	}
	if _, err := readPreTLSResponse(br, "S2"); err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, errors.New("data after STARTTLS response (injection attempt?)")
	}
	return tls.Client(raw, cfg), nil
}

func readPreTLSLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		sb.Write(frag)
		if sb.Len() > maxPreTLSLine {
			return "", errors.New("line too long before TLS")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(sb.String(), "\r\n"), nil
	}
}

// readPreTLSResponse reads untagged lines until the tagged one, which must
// be OK.
func readPreTLSResponse(br *bufio.Reader, tag string) ([]string, error) {
	var lines []string
	for range maxPreTLSLines {
		l, err := readPreTLSLine(br)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(l, tag+" ") {
			if !hasPrefixFold(l[len(tag)+1:], "OK") {
				return nil, fmt.Errorf("%s refused: %.80q", tag, l)
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
	return nil, errors.New("too many lines before TLS")
}

// parseCapCode extracts a [CAPABILITY ...] response code.
func parseCapCode(line string) ([]string, bool) {
	i := strings.Index(strings.ToUpper(line), "[CAPABILITY ")
	if i < 0 {
		return nil, false
	}
	rest := line[i+len("[CAPABILITY "):]
	j := strings.IndexByte(rest, ']')
	if j < 0 {
		return nil, false
	}
	return strings.Fields(rest[:j]), true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// kill closes the connection at once, from any goroutine: every pending
// command fails and go-imap's reader exits. It is how a context, a
// watchdog or a torn-down stream cancels: go-imap has no cancellation.
func (u *upstream) kill() { u.conn.Conn.Close() }

// waitDead closes the connection and waits until go-imap's reader has
// exited. A literal that ended early (truncated, or a read error) must not
// be read again before that: go-imap's discard would re-read it through the
// bufio.Reader its reader goroutine is using again.
func (u *upstream) waitDead() {
	u.kill()
	select {
	case <-u.c.Closed():
	case <-time.After(5 * time.Second):
	}
}

// closeClient closes the connection and waits for go-imap's reader.
func (u *upstream) closeClient() {
	u.closeOnce.Do(func() {
		u.kill()
		u.c.Close()
	})
}

// logout sends LOGOUT, bounded by a short deadline, then closes. Best
// effort: LOGOUT changes nothing upstream.
func (u *upstream) logout(ctx context.Context) {
	start := time.Now()
	bound := min(u.b.cfg.CommandTimeout, 5*time.Second)
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	stop := context.AfterFunc(ctx, u.kill)
	u.conn.begin()
	err := u.c.Logout().Wait()
	u.conn.end()
	stop()
	u.b.observe("logout", start, err)
	u.closeClient()
}
