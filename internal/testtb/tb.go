// Package testtb is the part of testing.TB that the test harnesses
// (dovecottest, upstreams, fakeimap, the soak) use. A *testing.T is one;
// a command that runs a harness (the soak, the benchmarks) implements
// these methods instead of faking all of testing.TB, which cannot be
// implemented outside package testing.
package testtb

// TB is the subset of testing.TB the harnesses call.
type TB interface {
	Helper()
	Name() string
	Log(args ...any)
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
	Cleanup(f func())
	Failed() bool
}
