package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/popbridge/popbridge/internal/testtb"
)

// cmdTB lets the command use internal/dovecottest: it is a testtb.TB.
// Fatal and Skip print, run the cleanups (stopping Dovecot) and exit.
type cmdTB struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	once     sync.Once
}

var _ testtb.TB = (*cmdTB)(nil)

func newTB() *cmdTB { return &cmdTB{} }

func (t *cmdTB) Helper()      {}
func (t *cmdTB) Name() string { return "soak" }
func (t *cmdTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *cmdTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

// cleanup runs the cleanups once, last registered first.
func (t *cmdTB) cleanup() {
	t.once.Do(func() {
		t.mu.Lock()
		cs := t.cleanups
		t.cleanups = nil
		t.mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i]()
		}
	})
}

func (t *cmdTB) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (t *cmdTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (t *cmdTB) Error(args ...any)               { t.Log(args...); t.Fail() }
func (t *cmdTB) Errorf(format string, args ...any) {
	t.Logf(format, args...)
	t.Fail()
}
func (t *cmdTB) Fail() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}
func (t *cmdTB) FailNow() {
	t.Fail()
	t.cleanup()
	os.Exit(2)
}
func (t *cmdTB) Fatal(args ...any)                 { t.Log(args...); t.FailNow() }
func (t *cmdTB) Fatalf(format string, args ...any) { t.Logf(format, args...); t.FailNow() }
func (t *cmdTB) Skip(args ...any)                  { t.Log(args...); t.SkipNow() }
func (t *cmdTB) Skipf(format string, args ...any)  { t.Logf(format, args...); t.SkipNow() }
func (t *cmdTB) SkipNow() {
	t.cleanup()
	fmt.Fprintln(os.Stderr, "soak: cannot run (see above)")
	os.Exit(3)
}
func (t *cmdTB) Skipped() bool { return false }
func (t *cmdTB) TempDir() string {
	d, err := os.MkdirTemp("", "popbridge-soak")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
