package vault

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
)

var postgresDialect = &dialect{
	name:       "postgres",
	numbered:   true,
	forUpdate:  " FOR UPDATE",
	beginWrite: "BEGIN",
	// An arbitrary constant naming popbridge's migration lock.
	migrationLock: `SELECT pg_advisory_xact_lock(7062636974726775)`,
	migrations:    postgresMigrations,
}

// postgresMaxConns bounds the connections of one instance. A Refresh holds
// one for the provider round trip, so this bounds concurrent refreshes too.
const postgresMaxConns = 32

// openPostgres opens the PostgreSQL store at the libpq URL dsn.
//
// Refresh locks the user's row with SELECT ... FOR UPDATE in a transaction
// that lasts until the new tokens are committed, which excludes Refresh of
// the same user in every instance; other users and logins are not held up.
func openPostgres(ctx context.Context, dsn string, sealer *Sealer, log *slog.Logger) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("vault: postgres: %w", err)
	}
	db.SetMaxOpenConns(postgresMaxConns)
	s := &sqlStore{db: db, d: postgresDialect, sealer: sealer, log: log}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db, postgresDialect); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
