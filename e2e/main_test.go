package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// buildDir holds the gateway binary built for this test run (removed when
// the tests end). The build itself happens on first use (gatewayBinary), so
// a run whose tests all skip builds nothing.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "popbridge-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// gatewayBinary builds the gateway (go build ./proxy from the module root)
// once per test run, with the race detector if this test binary has it, and
// returns its path. A build failure fails the calling test.
func gatewayBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go tool is not in PATH: %v", err)
			return
		}
		out, err := exec.Command(goTool, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			buildErr = fmt.Errorf("finding the module root: %v", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		bin := filepath.Join(buildDir, "popbridge")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./proxy")
		cmd := exec.Command(goTool, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		buildPath = bin
	})
	if buildErr != nil {
		t.Fatalf("building the gateway: %v", buildErr)
	}
	return buildPath
}
