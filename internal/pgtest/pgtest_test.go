package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestServer checks that two databases of the shared server are separate
// and that the server runs as a non-root user.
func TestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn1, dsn2 := NewDatabase(t), NewDatabase(t)
	if dsn1 == dsn2 {
		t.Fatalf("two databases with one DSN %q", dsn1)
	}
	c1, err := pgx.Connect(ctx, dsn1)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn1, err)
	}
	defer c1.Close(ctx)
	if _, err := c1.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := c1.QueryRow(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 42 {
		t.Fatalf("SELECT v: got %d, %v, want 42", v, err)
	}
	c2, err := pgx.Connect(ctx, dsn2)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn2, err)
	}
	defer c2.Close(ctx)
	var n int
	if err := c2.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table x in the second database: got %d, %v, want 0", n, err)
	}
	if os.Geteuid() == 0 {
		var owner string
		if err := c1.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&owner); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(owner)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys(); st != nil {
			if uid := statUID(st); uid == 0 {
				t.Errorf("data directory %s owned by root, want %s", owner, SystemUser)
			}
		}
	}
}
