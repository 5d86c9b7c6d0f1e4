// Package syncbuf is a buffer that many goroutines may write to while a
// test reads it: a gateway's log, or what an upstream read.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes; its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
