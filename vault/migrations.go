package vault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Schema migrations: migrations[i] takes the schema from version i to i+1.
// A released migration is never edited; a change of schema appends one.
// Times are microseconds since the Unix epoch (NULL for never), the same in
// both databases so one code path reads them.

var sqliteMigrations = [][]string{
	{ // 1: users and devices
		`CREATE TABLE users (
			name TEXT NOT NULL PRIMARY KEY,
			created_us INTEGER NOT NULL,
			refresh_sealed BLOB,
			access_sealed BLOB,
			access_expiry_us INTEGER,
			last_refresh_us INTEGER,
			last_error TEXT NOT NULL DEFAULT '',
			needs_reenrollment INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE TABLE devices (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
			name TEXT NOT NULL,
			pw_hash TEXT NOT NULL,
			allowed TEXT NOT NULL DEFAULT '',
			created_us INTEGER NOT NULL,
			last_used_us INTEGER,
			last_addr TEXT NOT NULL DEFAULT '',
			UNIQUE (user_name, name)
		)`,
	},
}

var postgresMigrations = [][]string{
	{ // 1: users and devices
		`CREATE TABLE users (
			name TEXT NOT NULL PRIMARY KEY,
			created_us BIGINT NOT NULL,
			refresh_sealed BYTEA,
			access_sealed BYTEA,
			access_expiry_us BIGINT,
			last_refresh_us BIGINT,
			last_error TEXT NOT NULL DEFAULT '',
			needs_reenrollment BOOLEAN NOT NULL DEFAULT FALSE
		)`,
		`CREATE TABLE devices (
			id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
			name TEXT NOT NULL,
			pw_hash TEXT NOT NULL,
			allowed TEXT NOT NULL DEFAULT '',
			created_us BIGINT NOT NULL,
			last_used_us BIGINT,
			last_addr TEXT NOT NULL DEFAULT '',
			UNIQUE (user_name, name)
		)`,
	},
}

// migrate brings the schema up to date in one transaction, so a failure
// leaves the previous version in place. A schema newer than the program
// knows is refused: an older program could misread or damage it.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	// Usually the schema is current: check with a read, so that opening the
	// store (an admin command, say) does not wait for SQLite's write lock
	// that a Refresh in the gateway may hold.
	var cur int
	if err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&cur); err == nil {
		if cur > len(d.migrations) {
			return fmt.Errorf("%w: version %d, this program knows up to %d", ErrSchemaTooNew, cur, len(d.migrations))
		}
		if cur == len(d.migrations) {
			return nil
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault: migrate: %w", err)
	}
	defer tx.Rollback()
	if d.migrationLock != "" {
		// Instances starting together take turns.
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("vault: migrate: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("vault: migrate: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
	}
	if err != nil {
		return fmt.Errorf("vault: migrate: %w", err)
	}
	known := len(d.migrations)
	if v > known {
		return fmt.Errorf("%w: version %d, this program knows up to %d", ErrSchemaTooNew, v, known)
	}
	if v == known {
		return nil
	}
	for i := v; i < known; i++ {
		for _, stmt := range d.migrations[i] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("vault: migrate to version %d: %w", i+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE schema_version SET version = ?`), known); err != nil {
		return fmt.Errorf("vault: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault: migrate: %w", err)
	}
	return nil
}
