package pop3front

import (
	"net"
	"net/netip"
)

// PlaintextPolicy says where USER/PASS and AUTH PLAIN/LOGIN, which send
// the password as it is, may be used without TLS (RFC 2595 section 2.3,
// RFC 8314 section 3: credentials only over TLS; docs/design.md,
// invariant 6). Over TLS they are always allowed.
type PlaintextPolicy int

const (
	// PlaintextLoopback (the zero value) allows them only from a client
	// on 127.0.0.0/8 or ::1, or on a connection that has no IP address at
	// all (a Unix socket, net.Pipe): nothing leaves the machine. Behind a
	// PROXY protocol listener the address is the one the proxy carried,
	// so a remote client relayed by a local HAProxy is not loopback, and
	// neither is an UnknownClient.
	PlaintextLoopback PlaintextPolicy = iota
	// PlaintextAlways allows them from anywhere (a trusted network).
	PlaintextAlways
	// PlaintextNever refuses them without TLS, loopback included.
	PlaintextNever
)

// textPlaintextRefused answers USER, PASS and AUTH PLAIN/LOGIN where the
// policy refuses them; nothing reaches the Backend.
const textPlaintextRefused = "[AUTH] Plaintext authentication disallowed"

// plaintextOK reports whether the session may take a password now.
func (s *session) plaintextOK() bool {
	if s.isTLS() {
		return true
	}
	switch s.srv.Plaintext {
	case PlaintextAlways:
		return true
	case PlaintextLoopback:
		return !s.relayedUnknown && (!s.ip.IsValid() || s.ip.IsLoopback())
	}
	return false
}

// UnknownClient is the remote address of a connection that a trusted
// relay passed on without saying who the client is (behind a PROXY
// protocol listener: a v1 UNKNOWN header, a v2 LOCAL one, or v2 with
// AF_UNIX addresses). Such a client is never loopback, whatever Relay
// is, so PlaintextLoopback refuses its passwords. Its failed-login
// penalty and its per-address cap count under Relay's address, shared
// by every client that relay passes on without an address, and logs
// show Relay's IP as ip=.
type UnknownClient struct {
	Relay net.Addr // the relay's own address, as the socket reports it
}

func (UnknownClient) Network() string { return "unknown" }

func (a UnknownClient) String() string {
	if a.Relay == nil {
		return "unknown"
	}
	return "unknown via " + a.Relay.String()
}

// addrIP returns the IP address of a, unmapped (::ffff:192.0.2.1 is
// 192.0.2.1), or the zero Addr when a carries none (Unix socket, pipe).
func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case nil:
		return netip.Addr{}
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ipKey is the unit penalties and per-address caps count: the address
// itself for IPv4, its /64 for IPv6 (one subscriber typically holds a
// whole /64 and can pick any address in it).
func ipKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
