package pop3front

import (
	"net/netip"
	"strings"
	"sync"
)

// Connection caps (docs/design.md, invariant 9 and "Limits"): in total and per
// client address across every listener of a Server, and per user after
// login. A client over a cap gets one "-ERR" line and is closed at once;
// nothing waits for a slot to free up.
const (
	textTooManyConns  = "[SYS/TEMP] Too many connections, try again later."
	textTooManyFromIP = "[SYS/TEMP] Too many connections from your address."
	textUserInUse     = "[IN-USE] Too many sessions for this user."
)

type connCaps struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Prefix]int
	users map[string]int
}

// acquireConn takes a connection slot for key (the zero Prefix for a
// connection without an IP, which only counts toward the total). It
// returns the refusal text, or "" when the slot was taken.
func (c *connCaps) acquireConn(key netip.Prefix, lim *Limits) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= lim.MaxConnections {
		return textTooManyConns
	}
	if key.IsValid() {
		if c.perIP[key] >= lim.MaxConnectionsPerIP {
			return textTooManyFromIP
		}
		if c.perIP == nil {
			c.perIP = make(map[netip.Prefix]int)
		}
		c.perIP[key]++
	}
	c.total++
	return ""
}

func (c *connCaps) releaseConn(key netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if key.IsValid() {
		if c.perIP[key] <= 1 {
			delete(c.perIP, key) // the map holds live addresses only
		} else {
			c.perIP[key]--
		}
	}
}

// userKey normalises a login name for counting: case folded, so "Alice"
// and "alice" share the cap (most stores treat them as one account).
func userKey(user string) string { return strings.ToLower(user) }

// acquireUser takes a session slot for user and reports whether it got
// one.
func (c *connCaps) acquireUser(user string, lim *Limits) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[user] >= lim.MaxSessionsPerUser {
		return false
	}
	if c.users == nil {
		c.users = make(map[string]int)
	}
	c.users[user]++
	return true
}

func (c *connCaps) releaseUser(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[user] <= 1 {
		delete(c.users, user)
	} else {
		c.users[user]--
	}
}
