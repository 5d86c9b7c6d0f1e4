package faultproxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one relayed connection.
type Conn struct {
	p       *Proxy
	index   int
	client  net.Conn
	plan    Plan
	done    chan struct{} // closed once both relays returned
	closed  chan struct{} // closed when the sockets are closed
	release chan struct{} // closed by Release: stalled directions resume

	mu       sync.Mutex
	upstream net.Conn
	ended    bool
	relOnce  sync.Once

	n      [2]atomic.Int64
	fired  [2]atomic.Bool
	errMu  sync.Mutex
	relErr error // first relay error, for diagnostics
}

// Err is the first error the relay met (nil for clean ends and faults).
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.relErr
}

func (c *Conn) setErr(err error) {
	c.errMu.Lock()
	if c.relErr == nil {
		c.relErr = err
	}
	c.errMu.Unlock()
}

// Index is the connection's accept order (0 for the first).
func (c *Conn) Index() int { return c.index }

// Bytes is the number of bytes forwarded in dir.
func (c *Conn) Bytes(dir Direction) int64 { return c.n[dir].Load() }

// Fired reports whether the plan's fault in dir acted.
func (c *Conn) Fired(dir Direction) bool { return c.fired[dir].Load() }

// Done reports whether the connection ended (both sides closed).
func (c *Conn) Done() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Wait returns a channel closed when the connection ended.
func (c *Conn) Wait() <-chan struct{} { return c.done }

// Release lets stalled directions forward again.
func (c *Conn) Release() { c.relOnce.Do(func() { close(c.release) }) }

// Cut closes the connection (FIN).
func (c *Conn) Cut() { c.end(false) }

// Reset resets the connection (RST).
func (c *Conn) Reset() { c.end(true) }

// end closes both sides; it reports whether the connection was still open.
func (c *Conn) end(rst bool) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended = true
	up := c.upstream
	close(c.closed)
	c.mu.Unlock()
	for _, x := range []net.Conn{c.client, up} {
		if x == nil {
			continue
		}
		if rst {
			resetClose(x)
		} else {
			x.Close()
		}
	}
	return true
}

func (c *Conn) run() {
	defer func() {
		c.end(false)
		close(c.done)
		c.p.notify()
	}()
	up, err := net.DialTimeout("tcp", c.p.target, 10*time.Second)
	if err != nil {
		c.setErr(err)
		resetClose(c.client)
		return
	}
	c.mu.Lock()
	if c.ended { // Close raced with the dial
		c.mu.Unlock()
		up.Close()
		return
	}
	c.upstream = up
	c.mu.Unlock()

	var faults [2]*Fault
	for i := range c.plan.Faults {
		f := &c.plan.Faults[i]
		if faults[f.Dir] == nil {
			faults[f.Dir] = f
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.relay(Up, c.client, up, faults[Up]) }()
	go func() { defer wg.Done(); c.relay(Down, up, c.client, faults[Down]) }()
	wg.Wait()
}

// relay copies src to dst in direction dir, acting out fault.
func (c *Conn) relay(dir Direction, src, dst net.Conn, fault *Fault) {
	// Either direction ending ends the connection: a half-closed relay
	// would hide faults from the side that keeps reading.
	defer c.end(false)
	bufSize := 32 << 10
	rate := c.plan.BytesPerSecond
	if rate > 0 {
		bufSize = max(1, min(bufSize, rate*int(pause)/int(time.Second)))
	}
	buf := make([]byte, bufSize)
	var pos int64       // bytes read from src so far in this direction
	fireAt := int64(-1) // absolute offset where the fault acts; -1 unknown
	var tail []byte     // end of what was read, for matches across reads
	if fault != nil && fault.Match == nil {
		fireAt = fault.After
	}
	for {
		if fault != nil && fireAt >= 0 && pos >= fireAt && !c.fired[dir].Load() {
			c.act(dir, fault, src, dst, nil)
			return
		}
		nr, rerr := src.Read(buf)
		chunk := buf[:nr]
		if fault != nil && fault.Match != nil && fireAt < 0 && nr > 0 {
			hay := append(tail, chunk...)
			if i := bytes.Index(hay, fault.Match); i >= 0 {
				fireAt = pos - int64(len(tail)) + int64(i) + fault.After
			}
			keep := min(len(hay), len(fault.Match)-1)
			tail = append(tail[:0], hay[len(hay)-keep:]...)
		}
		var held []byte // read but not forwarded: a stall forwards it on release
		fire := false
		if fault != nil && fireAt >= 0 && fireAt < pos+int64(nr) && !c.fired[dir].Load() {
			cut := max(0, fireAt-pos)
			chunk, held = chunk[:cut], chunk[cut:]
			fire = true
		}
		if len(chunk) > 0 {
			if _, werr := dst.Write(chunk); werr != nil {
				c.setErr(werr)
				return
			}
			c.n[dir].Add(int64(len(chunk)))
			c.p.total[dir].Add(int64(len(chunk)))
			c.p.notify()
		}
		pos += int64(nr)
		if fire {
			c.act(dir, fault, src, dst, held)
			return
		}
		if rerr != nil {
			if rerr != io.EOF {
				c.setErr(rerr)
			}
			return
		}
		if rate > 0 && nr > 0 {
			time.Sleep(time.Duration(nr) * time.Second / time.Duration(rate))
		}
	}
}

// maxHeld bounds what a stalled direction reads and holds.
const maxHeld = 8 << 20

// act carries out fault in dir. A stall waits for Release, then forwards
// held (read but not yet forwarded) and relays faithfully; or it returns
// when the connection ends.
func (c *Conn) act(dir Direction, fault *Fault, src, dst net.Conn, held []byte) {
	c.fired[dir].Store(true)
	c.p.fired.Add(1)
	c.p.notify()
	switch fault.Action {
	case Cut:
		c.end(false)
	case Reset:
		c.end(true)
	case Stall:
		// Keep reading the stalled side (into held, bounded) without
		// forwarding: a peer that gives up and closes must end the
		// connection, not leave it open until the other peer's timeout.
		var mu sync.Mutex
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				mu.Lock()
				held = append(held, buf[:n]...)
				full := len(held) >= maxHeld
				mu.Unlock()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						return // Release interrupted the read
					}
					c.end(false)
					return
				}
				if full {
					return
				}
			}
		}()
		select {
		case <-c.release:
		case <-c.closed:
			<-readerDone
			return
		}
		_ = src.SetReadDeadline(time.Now())
		<-readerDone
		_ = src.SetReadDeadline(time.Time{})
		mu.Lock()
		rest := held
		mu.Unlock()
		if len(rest) > 0 {
			if _, err := dst.Write(rest); err != nil {
				return
			}
			c.n[dir].Add(int64(len(rest)))
			c.p.total[dir].Add(int64(len(rest)))
			c.p.notify()
		}
		c.relay(dir, src, dst, nil)
	}
}
