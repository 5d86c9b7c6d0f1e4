package imapback

import (
	"math/bits"
	"sync"
)

// Prefetched bodies (prefetch.go) are recycled: a session downloading a
// mailbox of ordinary mail gets nearly every message through read-ahead,
// and one fresh buffer per message made the garbage collector, and the
// scavenger handing the memory back to the kernel, a quarter of the
// gateway's CPU under eight such sessions. A buffer returns to the pool
// only when the stream serving it is closed, so nothing still reading it
// can see it reused.
//
// Sizes are rounded up to a quarter of a power of two (at most 25% more
// than asked), from 4 KiB up to prefetchCap; anything else is allocated
// and left to the collector.

const (
	minPooledLog  = 12 // 4 KiB
	maxPooledLog  = 20 // prefetchCap, 1 MiB
	minPooledBody = 1 << minPooledLog
	maxPooledBody = 1 << maxPooledLog
	// bodyClasses: one for up to minPooledBody, then four per doubling.
	bodyClasses = 1 + 4*(maxPooledLog-minPooledLog)
)

var bodyPools [bodyClasses]sync.Pool

// bodyClass returns the pool index and the capacity of its buffers for a
// body of n octets, or -1 when n is not pooled.
func bodyClass(n int) (int, int) {
	switch {
	case n > maxPooledBody:
		return -1, 0
	case n <= minPooledBody:
		return 0, minPooledBody
	}
	// n in (2^(e-1), 2^e]: capacities 2^(e-1) times 5/4, 6/4, 7/4, 8/4.
	e := bits.Len(uint(n - 1))
	step := 1 << (e - 3)
	q := (n - 1<<(e-1) + step - 1) / step // 1..4
	return 1 + 4*(e-1-minPooledLog) + q - 1, 1<<(e-1) + q*step
}

// getBody returns a buffer of length n, recycled when one is free.
func getBody(n int64) []byte {
	i, c := bodyClass(int(n))
	if i < 0 {
		return make([]byte, n)
	}
	if p, ok := bodyPools[i].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, c)
}

// putBody recycles b (from getBody); the caller must not use it again.
func putBody(b []byte) {
	if b == nil {
		return
	}
	i, c := bodyClass(cap(b))
	if i < 0 || c != cap(b) {
		return // not one of ours
	}
	b = b[:0]
	bodyPools[i].Put(&b)
}
