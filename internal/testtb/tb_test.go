package testtb

import "testing"

// Every testing.TB is a TB: tests pass their *testing.T to the harnesses.
var _ TB = testing.TB(nil)

func TestTIsTB(t *testing.T) {
	var tb TB = t
	if got := tb.Name(); got != "TestTIsTB" {
		t.Errorf("Name: got %q, want %q", got, "TestTIsTB")
	}
}
