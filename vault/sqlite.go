package vault

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"

	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"
)

// sqliteBusyTimeout is how long (ms) a write waits for another one. A
// Refresh holds SQLite's write lock while its fn asks the provider, so this
// must exceed a provider round trip; readers are not blocked (WAL).
const sqliteBusyTimeout = 30000

var sqliteDialect = &dialect{
	name:       "sqlite",
	beginWrite: "BEGIN IMMEDIATE",
	migrations: sqliteMigrations,
}

// openSQLite opens (creating if needed) the SQLite store at path.
//
// Write transactions begin IMMEDIATE, so a Refresh holds the database's
// write lock from its read to its commit: that excludes Refresh in other
// processes on the same file, and the per-user mutex orders those of this
// process without spinning on the busy timeout. WAL journal with
// synchronous=FULL: a commit survives a crash of the process or the
// machine, and readers run beside the writer.
func openSQLite(ctx context.Context, path string, sealer *Sealer, log *slog.Logger) (Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("vault: SQLite path %q: empty or has ? or #", path)
	}
	// Create the file ourselves, private: it holds password hashes and
	// sealed tokens. SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	f.Close()
	dsn := fmt.Sprintf("file:%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate",
		path, sqliteBusyTimeout)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("vault: open %s: %w", path, err)
	}
	s := &sqlStore{db: db, d: sqliteDialect, sealer: sealer, log: log}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db, sqliteDialect); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (store %s)", err, path)
	}
	return s, nil
}
