package vault

import (
	"os"
	"testing"

	"github.com/popbridge/popbridge/internal/pgtest"
)

func TestMain(m *testing.M) {
	// Cheap hashes: under the race detector a production-cost hash takes
	// most of a second, and the store tests make dozens. The production
	// parameters are tested in TestHashPasswordFormat.
	hashParams = argonParams{time: 1, memory: 64, threads: 1}
	if os.Getenv(crashEnv) != "" {
		crashChild() // never returns
	}
	os.Exit(pgtest.Main(m))
}
