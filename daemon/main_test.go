package daemon

import (
	"os"
	"testing"

	"github.com/popbridge/popbridge/internal/pgtest"
)

// TestMain stops the private PostgreSQL the vault tests may start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
