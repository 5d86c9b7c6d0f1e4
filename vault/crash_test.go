package vault

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashEnv makes the test binary act as crashChild (see TestMain): it
// names the point where the child stops to be killed.
const crashEnv = "POPBRIDGE_VAULT_CRASH_CHILD"

var (
	crashOld = Tokens{Refresh: "refresh-old", Access: "access-old", AccessExpiry: time.Unix(1700000000, 0)}
	crashNew = Tokens{Refresh: "refresh-new", Access: "access-new", AccessExpiry: time.Unix(1800000000, 0)}
)

// crashChild runs one Refresh on the SQLite store named by crashEnv+"_DB",
// announces on stdout when it reaches the point named by crashEnv, and
// waits there to be killed.
func crashChild() {
	point, path := os.Getenv(crashEnv), os.Getenv(crashEnv+"_DB")
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+path, Options{Key: testKey})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	stop := func(msg string) {
		fmt.Println(msg)
		time.Sleep(time.Hour) // until SIGKILL
	}
	if point == "after-commit" {
		afterRefreshCommit = func() { stop("committed") }
	}
	_, err = s.Refresh(ctx, "alice", func(cur Tokens) (Tokens, error) {
		if !cur.equal(crashOld) {
			return cur, fmt.Errorf("child read %+v, want %+v", cur, crashOld)
		}
		// The provider has rotated the refresh token at this point.
		if point == "inside-fn" {
			stop("rotated")
		}
		return crashNew, nil
	})
	fmt.Println("Refresh returned:", err)
	os.Exit(4)
}

// TestSQLiteCrashDuringRefresh kills a process in the middle of Refresh:
// the store afterwards opens cleanly, passes SQLite's integrity check, and
// holds the old grant (killed before commit) or the new one (after), never
// a lost or damaged one. While the child holds the lock, this process
// cannot refresh the same user.
func TestSQLiteCrashDuringRefresh(t *testing.T) {
	for _, c := range []struct {
		point, announce string
		want            Tokens
	}{
		{"inside-fn", "rotated", crashOld},
		{"after-commit", "committed", crashNew},
	} {
		t.Run(c.point, func(t *testing.T) {
			ctx := testCtx(t)
			path := filepath.Join(t.TempDir(), "vault.db")
			b := backend{"sqlite", "sqlite:" + path}
			s := b.open(t)
			if err := s.PutGrant(ctx, "alice", crashOld); err != nil {
				t.Fatal(err)
			}
			s.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+c.point, crashEnv+"_DB="+path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			defer func() {
				if !killed {
					cmd.Process.Kill()
					cmd.Wait()
				}
			}()
			line, _ := bufio.NewReader(out).ReadString('\n')
			if got := strings.TrimSpace(line); got != c.announce {
				t.Fatalf("child: got %q (stderr %q), want %q", got, stderr.String(), c.announce)
			}

			if c.point == "inside-fn" {
				// The child holds the lock: a Refresh here must not get in.
				s := b.open(t)
				wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				_, err := s.Refresh(wctx, "alice", func(cur Tokens) (Tokens, error) { return cur, errFnRan })
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Refresh while another process is inside fn: got %v, want to wait until the deadline", err)
				}
				s.Close()
			}

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			killed = true

			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			var check string
			if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Errorf("integrity_check: got %q, %v, want ok", check, err)
			}
			db.Close()
			s = b.open(t)
			got, err := s.Refresh(ctx, "alice", func(cur Tokens) (Tokens, error) { return cur, nil })
			if err != nil || !got.equal(c.want) {
				t.Errorf("grant after kill: got %+v, %v, want %+v", got, err, c.want)
			}
		})
	}
}
