package daemon

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/imapback"
)

// What -check-config catches beyond single values: listeners that could
// not bind, listeners that would collide, and values that start but make
// no sense (warnings, Config.lint).

// validListen checks an address to listen on: host:port with a port
// number 0..65535 (0: any free port) or a service name.
func validListen(key, v string) error {
	if err := validAddr(key, v); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(v)
	if _, err := strconv.ParseUint(port, 10, 16); err == nil {
		return nil
	}
	if port[0] >= '0' && port[0] <= '9' || port[0] == '-' || port[0] == '+' {
		return invalid(key, "%q: port %s is out of range 0..65535", v, port)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return invalid(key, "%q: %q is not a port number or service name", v, port)
	}
	return nil
}

// listenConflicts reports two listeners on one address: the second
// would fail to bind at start. A wildcard host (empty, 0.0.0.0, ::)
// takes the port on every address. Port 0 never conflicts.
func (c *Config) listenConflicts() []error {
	type listener struct{ key, addr string }
	ls := []listener{{"pop3.listen", c.POP3.Listen}, {"pop3.listen_tls", c.POP3.ListenTLS}}
	if c.Upstream.Address == demoAddress {
		ls = append(ls, listener{"demo.imap_listen", c.Demo.IMAPListen})
	}
	ls = append(ls, listener{"metrics.listen", c.Metrics.Listen}, listener{"pprof.listen", c.Pprof.Listen})
	var errs []error
	for i, l := range ls {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil || port == "0" {
			continue
		}
		for _, prev := range ls[:i] {
			ph, pp, err := net.SplitHostPort(prev.addr)
			if err != nil || pp != port {
				continue
			}
			if strings.EqualFold(ph, host) || wildcardHost(ph) || wildcardHost(host) {
				errs = append(errs, invalid(l.key, "%q: %s listens there already", l.addr, prev.key))
				break
			}
		}
	}
	return errs
}

func wildcardHost(h string) bool {
	ip, err := netip.ParseAddr(h)
	return h == "" || err == nil && ip.IsUnspecified()
}

// local reports whether the upstream is the demo or on this host: a
// loopback IP or "localhost". Nothing sent to it leaves the machine.
func (u UpstreamConfig) local() bool {
	if u.Address == demoAddress {
		return true
	}
	host, _, err := net.SplitHostPort(u.Address)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// security is the effective upstream security: unset means none, which
// Validate allows only for local upstreams.
func (u UpstreamConfig) security() imapback.Security {
	if u.Security == "" {
		return imapback.SecurityNone
	}
	return u.Security
}

// timeoutFloor is the shortest timeout that can work at all: below it a
// slow client or server fails every time.
const timeoutFloor = time.Second

// lint returns warnings: values that pass Validate but are unsafe or
// make no sense.
func (c *Config) lint() []error {
	var ws []error
	if !c.Upstream.local() && c.Upstream.security() == "none" {
		ws = append(ws, invalid("upstream.security", "\"none\": every user's password crosses the network to %s in the clear", c.Upstream.Address))
	}
	for _, e := range c.POP3.ProxyTrusted {
		if p, err := parseCIDROrAddr(e); err == nil && p.Bits() == 0 {
			ws = append(ws, invalid("pop3.proxy_trusted", "%q trusts every peer: anyone can claim any client address", e))
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"upstream.dial_timeout", c.Upstream.DialTimeout},
		{"upstream.command_timeout", c.Upstream.CommandTimeout},
		{"limits.auth_timeout", c.Limits.AuthTimeout},
		{"limits.write_timeout", c.Limits.WriteTimeout},
		{"limits.login_timeout", c.Limits.LoginTimeout},
		{"limits.commit_timeout", c.Limits.CommitTimeout},
		{"limits.shutdown_grace", c.Limits.ShutdownGrace},
		{"limits.tls_handshake_timeout", c.Limits.TLSHandshakeTimeout},
		{"limits.proxy_header_timeout", c.Limits.ProxyHeaderTimeout},
	} {
		if d.v.Duration > 0 && d.v.Duration < timeoutFloor {
			ws = append(ws, invalid(d.key, "%v is below %v: sessions will time out", d.v.Duration, timeoutFloor))
		}
	}
	return ws
}
