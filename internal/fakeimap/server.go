package fakeimap

import (
	"bufio"
	"net"
	"sync"
	"time"

	"github.com/popbridge/popbridge/internal/testtb"
)

// DefaultTimeout bounds each Expect step and Hang (a client that never
// closes).
const DefaultTimeout = 10 * time.Second

// Server is a running fake IMAP server on a loopback port.
type Server struct {
	t       testtb.TB
	ln      net.Listener
	scripts []Script
	timeout time.Duration

	mu    sync.Mutex
	conns []*Conn
	wg    sync.WaitGroup
}

// Start serves scripts (connection k plays scripts[k]) on a free
// loopback port until the test ends.
func Start(t testtb.TB, scripts ...Script) *Server {
	t.Helper()
	return StartTimeout(t, DefaultTimeout, scripts...)
}

// StartTimeout is Start with a different bound for each Expect step.
func StartTimeout(t testtb.TB, timeout time.Duration, scripts ...Script) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakeimap: %v", err)
	}
	s := &Server{t: t, ln: ln, scripts: scripts, timeout: timeout}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		k := len(s.conns)
		c := &Conn{s: s, index: k, nc: nc, br: bufio.NewReader(nc), done: make(chan struct{})}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(c.done)
			defer nc.Close()
			if k >= len(s.scripts) {
				s.t.Errorf("fakeimap: unexpected connection %d (only %d scripts)", k, len(s.scripts))
				return
			}
			c.play(s.scripts[k])
		}()
	}
}

// Accepted is the number of connections accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Conn returns connection k, or nil if not accepted yet.
func (s *Server) Conn(k int) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k < len(s.conns) {
		return s.conns[k]
	}
	return nil
}

// Received returns the lines connection k received (without CRLF; a
// client literal is appended to its line), or nil.
func (s *Server) Received(k int) []string {
	if c := s.Conn(k); c != nil {
		return c.Received()
	}
	return nil
}

// WaitDone waits until connection k finished its script (and was
// closed), up to timeout; it reports whether it did.
func (s *Server) WaitDone(k int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if c := s.Conn(k); c != nil {
			select {
			case <-c.done:
				return true
			case <-time.After(time.Until(deadline)):
				return false
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops listening, closes every connection and waits for the
// scripts to end. Tests need not call it: Start registers it as cleanup.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
