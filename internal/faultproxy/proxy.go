package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays connections from its loopback listener to a target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	planner Planner
	refuse  bool
	next    int
	conns   []*Conn
	closed  bool

	total  [2]atomic.Int64 // bytes forwarded, all connections
	fired  atomic.Int64    // faults that acted
	change chan struct{}   // closed and replaced at every count change
	chMu   sync.Mutex
	wg     sync.WaitGroup
}

// Start listens on a free loopback port and relays every connection to
// target (host:port) according to the current Planner (faithful until
// SetPlanner). Close stops it.
func Start(target string) (*Proxy, error) {
	if err := loopbackOnly(target); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, change: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// loopbackOnly refuses targets that are not loopback addresses: the
// relay is a test tool.
func loopbackOnly(target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("faultproxy: target %q: %v", target, err)
	}
	if ip := net.ParseIP(host); (ip == nil && !strings.EqualFold(host, "localhost")) || (ip != nil && !ip.IsLoopback()) {
		return fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	return nil
}

// Addr is the proxy's listening address (host:port): point the client
// here instead of at the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetPlanner sets the plans of connections accepted from now on. Indexes
// keep counting from the first connection the proxy ever accepted.
func (p *Proxy) SetPlanner(pl Planner) {
	p.mu.Lock()
	p.planner = pl
	p.mu.Unlock()
}

// SetPlan gives every connection accepted from now on plan pl.
func (p *Proxy) SetPlan(pl Plan) { p.SetPlanner(Always(pl)) }

// Refuse makes connections accepted from now on fail at once (reset
// right after accept), like an upstream that is down; Refuse(false)
// relays again.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		k := p.next
		p.next++
		refuse := p.refuse
		var plan Plan
		if p.planner != nil {
			plan = p.planner(k)
		}
		conn := &Conn{p: p, index: k, client: c, plan: plan, done: make(chan struct{}), closed: make(chan struct{}), release: make(chan struct{})}
		if !refuse {
			p.conns = append(p.conns, conn)
		}
		p.mu.Unlock()
		p.notify()
		if refuse {
			resetClose(c)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			conn.run()
		}()
	}
}

// Conns returns every connection relayed so far, in accept order.
func (p *Proxy) Conns() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Conn(nil), p.conns...)
}

// Conn returns connection k, or nil if it was not accepted yet.
func (p *Proxy) Conn(k int) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.index == k {
			return c
		}
	}
	return nil
}

// Accepted is the number of connections accepted (refused ones included).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// Active is the number of relayed connections still open.
func (p *Proxy) Active() int {
	n := 0
	for _, c := range p.Conns() {
		if !c.Done() {
			n++
		}
	}
	return n
}

// Bytes is the number of bytes forwarded in dir over all connections.
func (p *Proxy) Bytes(dir Direction) int64 { return p.total[dir].Load() }

// Fired is the number of faults that acted, over all connections
// (CutAll and ResetAll count one per connection they ended).
func (p *Proxy) Fired() int64 { return p.fired.Load() }

// WaitBytes waits until at least n bytes were forwarded in dir over all
// connections, or ctx ends.
func (p *Proxy) WaitBytes(ctx context.Context, dir Direction, n int64) error {
	return p.waitFor(ctx, func() bool { return p.Bytes(dir) >= n })
}

// WaitActive waits until exactly n relayed connections are open.
func (p *Proxy) WaitActive(ctx context.Context, n int) error {
	return p.waitFor(ctx, func() bool { return p.Active() == n })
}

// waitFor re-checks cond at every count change and connection end.
func (p *Proxy) waitFor(ctx context.Context, cond func() bool) error {
	for {
		ch := p.changed()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Proxy) changed() <-chan struct{} {
	p.chMu.Lock()
	defer p.chMu.Unlock()
	return p.change
}

func (p *Proxy) notify() {
	p.chMu.Lock()
	close(p.change)
	p.change = make(chan struct{})
	p.chMu.Unlock()
}

// CutAll closes every open connection (FIN) and returns how many it ended.
func (p *Proxy) CutAll() int { return p.endAll(false) }

// ResetAll resets every open connection (RST) and returns how many it
// ended: an upstream restart as the gateway sees it.
func (p *Proxy) ResetAll() int { return p.endAll(true) }

func (p *Proxy) endAll(rst bool) int {
	n := 0
	for _, c := range p.Conns() {
		if c.end(rst) {
			p.fired.Add(1)
			n++
		}
	}
	return n
}

// Close stops listening, closes every connection and waits for the relay
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range p.Conns() {
		c.end(false)
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// resetClose closes c with RST.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// pause is how long a throttled relay sleeps per chunk at most; chunks
// are sized so that the rate holds.
const pause = 50 * time.Millisecond
