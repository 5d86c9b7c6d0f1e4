package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestSoakShort runs the soak for 25 s (POPBRIDGE_SOAK_DURATION to
// change it); skipped with -short.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	o := defaultOptions()
	o.Duration = 25 * time.Second
	if d, err := time.ParseDuration(os.Getenv("POPBRIDGE_SOAK_DURATION")); err == nil {
		o.Duration = d
	}
	o.Seed = time.Now().UnixNano()
	sum, err := Run(context.Background(), t, o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() {
		t.Fatalf("soak failed (seed %d): see the summary above", o.Seed)
	}
	if sum.Verdict.delivered == 0 || sum.Sessions == 0 {
		t.Fatal("soak did nothing")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
