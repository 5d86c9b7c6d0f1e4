package upstreams

import (
	"fmt"
	"sync"

	"github.com/popbridge/popbridge/internal/testtb"
)

// BenchHost is what StartForBench needs from a program that is not a test
// (the benchmark command, go run ./bench): somewhere to log.
type BenchHost interface {
	Logf(format string, args ...any)
}

// benchFatal carries a Fatalf or Skipf of the harness out of StartForBench
// and of BenchServer's methods as a panic they recover.
type benchFatal struct{ msg string }

func (f benchFatal) Error() string { return "upstreams: " + f.msg }

// benchTB adapts a BenchHost to the testtb.TB the harness is written
// against (the pattern of dovecottest's bench.go).
type benchTB struct {
	h BenchHost

	mu       sync.Mutex
	cleanups []func()
}

var _ testtb.TB = (*benchTB)(nil)

func (b *benchTB) Helper()                           {}
func (b *benchTB) Name() string                      { return "bench" }
func (b *benchTB) Logf(format string, args ...any)   { b.h.Logf(format, args...) }
func (b *benchTB) Log(args ...any)                   { b.h.Logf("%s", fmt.Sprint(args...)) }
func (b *benchTB) Errorf(format string, args ...any) { panic(benchFatal{fmt.Sprintf(format, args...)}) }
func (b *benchTB) Fatalf(format string, args ...any) { panic(benchFatal{fmt.Sprintf(format, args...)}) }
func (b *benchTB) Fatal(args ...any)                 { panic(benchFatal{fmt.Sprint(args...)}) }
func (b *benchTB) Skipf(format string, args ...any)  { panic(benchFatal{fmt.Sprintf(format, args...)}) }
func (b *benchTB) Skip(args ...any)                  { panic(benchFatal{fmt.Sprint(args...)}) }

// Failed is false: every failure panics instead.
func (b *benchTB) Failed() bool { return false }

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	b.cleanups = append(b.cleanups, f)
	b.mu.Unlock()
}

// runCleanups runs the registered cleanups, last first, once.
func (b *benchTB) runCleanups() {
	b.mu.Lock()
	fs := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// catch turns a harness failure (a benchFatal panic) into *err.
func catch(err *error) {
	if v := recover(); v != nil {
		f, ok := v.(benchFatal)
		if !ok {
			panic(v)
		}
		*err = f
	}
}

// BenchServer is a server started by StartForBench.
type BenchServer struct {
	*Server
	tb *benchTB
}

// StartForBench starts the server called name ("mailutils", "cyrus" or
// "courier") for a program that is not a test, such as the benchmark
// command. It is StartMailutils, StartCyrus or StartCourier with the
// harness's test failures and skips turned into errors: a server that is
// not installed, or no root, is an error saying why. stop stops the server
// and removes its directory; call it on every path.
func StartForBench(h BenchHost, name string, users ...User) (s *BenchServer, stop func(), err error) {
	tb := &benchTB{h: h}
	stop = tb.runCleanups
	start := map[string]func(testtb.TB, ...User) *Server{
		"mailutils": StartMailutils,
		"cyrus":     StartCyrus,
		"courier":   StartCourier,
	}[name]
	if start == nil {
		return nil, stop, fmt.Errorf("upstreams: no server called %q", name)
	}
	defer func() {
		if err != nil {
			stop()
			s = nil
		}
	}()
	defer catch(&err)
	return &BenchServer{Server: start(tb, users...), tb: tb}, stop, nil
}

// AppendForBench is Server.Append with failures returned as errors.
func (s *BenchServer) AppendForBench(user, mailbox string, raws ...[]byte) (err error) {
	defer catch(&err)
	s.Server.Append(s.tb, user, mailbox, raws...)
	return nil
}
