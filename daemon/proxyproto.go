package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/popbridge/popbridge/pop3front"
)

// PROXY protocol (HAProxy's v1 text and v2 binary headers) on the POP3
// listeners, when [pop3] proxy_protocol is on:
//
//   - a peer in proxy_trusted MUST send a header (the library's REQUIRE
//     policy): the session then sees the carried client address for its
//     cleartext policy, penalties, caps, logs and LoginRequest.Client. A
//     trusted peer without one (or with a broken one) is closed once the
//     header deadline passes. A header naming no client IP (v1 UNKNOWN,
//     v2 LOCAL as for HAProxy's health checks, v2 AF_UNIX) is served as
//     a pop3front.UnknownClient: never loopback, counted under the
//     peer's address.
//   - any other peer may not send one: its connection is served as it is,
//     and if it starts with a PROXY signature it is closed before a
//     single command is read.
//
// The header is read in the session's goroutine, never in Accept, within
// [limits] proxy_header_timeout.
type proxySettings struct {
	trusted []netip.Prefix
	timeout time.Duration
	logger  *slog.Logger
}

// wrap applies the PROXY protocol rules to one accepted connection.
func (l *proxySettings) wrap(c net.Conn) net.Conn {
	if l.isTrusted(c.RemoteAddr()) {
		pc := proxyproto.NewConn(c,
			proxyproto.WithPolicy(proxyproto.REQUIRE),
			proxyproto.SetReadHeaderTimeout(l.timeout))
		return proxiedConn{pc}
	}
	return &headerGuard{Conn: c, logger: l.logger}
}

func (l *proxySettings) isTrusted(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseTrusted turns proxy_trusted entries (CIDRs or single addresses,
// validated by Config.Validate) into prefixes.
func parseTrusted(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		p, err := parseCIDROrAddr(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseCIDROrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR or IP address")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// proxiedConn lets the session half-close a PROXY connection (it lingers
// after its last reply, see pop3front's session.linger), and reports a
// header that names no client IP as such.
type proxiedConn struct{ *proxyproto.Conn }

// RemoteAddr is the client address the header carried, or, for a header
// without one (v1 UNKNOWN, v2 LOCAL, v2 AF_UNIX) or a broken header, a
// pop3front.UnknownClient relayed by the peer: never the peer's own
// address, which for a proxy on the same host is loopback.
func (c proxiedConn) RemoteAddr() net.Addr {
	a := c.Conn.RemoteAddr() // reads the header; the peer's on error
	if h := c.ProxyHeader(); h != nil && h.Command.IsProxy() && a == h.SourceAddr {
		switch src := a.(type) {
		case *net.TCPAddr:
			if src.IP != nil {
				return a
			}
		case *net.UDPAddr:
			if src.IP != nil {
				return a
			}
		}
	}
	return pop3front.UnknownClient{Relay: c.Raw().RemoteAddr()}
}

func (c proxiedConn) CloseWrite() error {
	if tc, ok := c.TCPConn(); ok {
		return tc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// The two PROXY protocol signatures (v1 text, v2 binary).
var (
	proxySigV1 = []byte("PROXY ")
	proxySigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

var errUntrustedHeader = errors.New("PROXY protocol header from an untrusted peer")

// headerGuard refuses a PROXY header from an untrusted peer without
// delaying the greeting (POP3 servers speak first, so no header can be
// awaited): the first octets the client sends are held back while they
// may still be the start of a signature, and a whole signature fails the
// read, so the session ends before reading any command.
type headerGuard struct {
	net.Conn
	logger  *slog.Logger
	checked bool   // the stream does not start with a signature
	held    []byte // octets read while undecided
	err     error  // errUntrustedHeader, for good
}

func (g *headerGuard) Read(p []byte) (int, error) {
	for !g.checked && g.err == nil {
		var buf [len("\r\n\r\n\x00\r\nQUIT\n")]byte
		n, err := g.Conn.Read(buf[:])
		g.held = append(g.held, buf[:n]...)
		switch {
		case bytes.HasPrefix(g.held, proxySigV1), bytes.HasPrefix(g.held, proxySigV2):
			g.err = errUntrustedHeader
			g.logger.Warn("PROXY header from an untrusted peer refused", "peer", g.Conn.RemoteAddr().String())
		case !bytes.HasPrefix(proxySigV1, g.held) && !bytes.HasPrefix(proxySigV2, g.held):
			g.checked = true
		case err != nil:
			if len(g.held) == 0 {
				return 0, err
			}
			g.checked = true // a partial line then EOF or a deadline: release it
		}
	}
	if g.err != nil {
		return 0, g.err
	}
	if len(g.held) > 0 {
		n := copy(p, g.held)
		g.held = g.held[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

func (g *headerGuard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// validTrusted checks proxy_trusted entries.
func validTrusted(key string, entries []string) error {
	for _, e := range entries {
		if _, err := parseCIDROrAddr(e); err != nil {
			return invalid(key, "%q: %v", e, err)
		}
	}
	return nil
}
