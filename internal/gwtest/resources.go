package gwtest

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Resources is a snapshot of the process's resource use.
type Resources struct {
	Goroutines int
	FDs        int   // open file descriptors (-1 if unknown)
	RSS        int64 // resident set size in bytes (-1 if unknown)
	HeapInuse  uint64
}

func (r Resources) String() string {
	return fmt.Sprintf("goroutines=%d fds=%d rss=%.1fMB heap=%.1fMB", r.Goroutines, r.FDs, float64(r.RSS)/(1<<20), float64(r.HeapInuse)/(1<<20))
}

// Measure reads the current resource use (Linux /proc for fds and RSS).
func Measure() Resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Resources{Goroutines: runtime.NumGoroutine(), FDs: fdCount(), RSS: rss(), HeapInuse: ms.HeapInuse}
}

func fdCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// WaitBaseline waits up to timeout until goroutines and fds are back
// within slack of base, and returns the last measurement and whether
// they got there.
func WaitBaseline(base Resources, slack int, timeout time.Duration) (Resources, bool) {
	deadline := time.Now().Add(timeout)
	for {
		r := Measure()
		ok := r.Goroutines <= base.Goroutines+slack && (base.FDs < 0 || r.FDs <= base.FDs+slack)
		if ok || time.Now().After(deadline) {
			return r, ok
		}
		time.Sleep(20 * time.Millisecond)
	}
}
