package vault

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// dialect holds what differs between the SQL databases; everything else
// is one implementation over database/sql.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// forUpdate locks the selected row until the transaction ends.
	forUpdate string
	// beginWrite starts a transaction that will write.
	beginWrite    string
	migrationLock string
	migrations    [][]string
}

// rebind rewrites ? placeholders for dialects that number them. The
// queries of this package have no ? inside literals.
func (d *dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

type sqlStore struct {
	db     *sql.DB
	d      *dialect
	sealer *Sealer
	log    *slog.Logger
	locks  userLocks
}

// saveTimeout bounds the save of refreshed tokens, which runs even after
// the caller's context ended.
const saveTimeout = 30 * time.Second

// recordTimeout bounds the recording of a device's last use at login.
const recordTimeout = 2 * time.Second

// afterRefreshCommit, if set (by tests only), runs right after Refresh
// committed new tokens.
var afterRefreshCommit func()

func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

func (s *sqlStore) Close() error { return s.db.Close() }

func (s *sqlStore) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("vault: %s store: %w", s.d.name, err)
	}
	return nil
}

// micros and fromMicros convert times for the *_us columns; the zero time
// is NULL.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64)
}

// checkName rejects empty names and names with control characters, which
// could not come through a POP3 USER command and would garble listings.
func checkName(kind, s string) error {
	if s == "" {
		return fmt.Errorf("vault: empty %s name", kind)
	}
	if len(s) > 255 {
		return fmt.Errorf("vault: %s name longer than 255 bytes", kind)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("vault: %s name %q has control characters", kind, s)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier is a *sql.Tx or a *sql.Conn inside a transaction.
type querier interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) ensureUser(ctx context.Context, e execer, user string) error {
	_, err := e.ExecContext(ctx, s.q(`INSERT INTO users (name, created_us) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
		user, time.Now().UnixMicro())
	return err
}

func (s *sqlStore) AddUser(ctx context.Context, user string) error {
	if err := checkName("user", user); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (name, created_us) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
		user, time.Now().UnixMicro())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrUserExists
	}
	return nil
}

const userColumns = `name, created_us, refresh_sealed IS NOT NULL, access_expiry_us, last_refresh_us,
	last_error, needs_reenrollment, (SELECT COUNT(*) FROM devices WHERE devices.user_name = users.name)`

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner) (User, error) {
	var u User
	var created, expiry, last sql.NullInt64
	err := r.Scan(&u.Name, &created, &u.HasGrant, &expiry, &last, &u.LastError, &u.NeedsReenrollment, &u.Devices)
	u.Created, u.AccessExpiry, u.LastRefresh = fromMicros(created), fromMicros(expiry), fromMicros(last)
	return u, err
}

func (s *sqlStore) GetUser(ctx context.Context, user string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE name = ?`), user))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNoUser
	}
	return u, err
}

func (s *sqlStore) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	return scanAll(rows, err, func(r *sql.Rows) (User, error) { return scanUser(r) })
}

// scanAll reads every row of a query that returned rows and err, with
// scan, and closes rows.
func scanAll[T any](rows *sql.Rows, err error, scan func(*sql.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *sqlStore) RemoveUser(ctx context.Context, user string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM devices WHERE user_name = ?`), user); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM users WHERE name = ?`), user)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNoUser
	}
	return tx.Commit()
}

func (s *sqlStore) AddDevice(ctx context.Context, user, name string, allowed []netip.Prefix) (Device, string, error) {
	if err := checkName("user", user); err != nil {
		return Device{}, "", err
	}
	if err := checkName("device", name); err != nil {
		return Device{}, "", err
	}
	pw := GeneratePassword()
	// Hash before the transaction: it takes a while and needs no lock.
	if err := acquireHashSlot(ctx); err != nil {
		return Device{}, "", err
	}
	hash := HashPassword(pw)
	releaseHashSlot()

	d := Device{User: user, Name: name, Created: time.Now().Truncate(time.Microsecond), AllowedNets: allowed}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Device{}, "", err
	}
	defer tx.Rollback()
	if err := s.ensureUser(ctx, tx, user); err != nil {
		return Device{}, "", err
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM devices WHERE user_name = ?`), user).Scan(&n); err != nil {
		return Device{}, "", err
	}
	if n >= MaxDevicesPerUser {
		return Device{}, "", ErrTooManyDevices
	}
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO devices (user_name, name, pw_hash, allowed, created_us)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_name, name) DO NOTHING RETURNING id`),
		user, name, hash, formatNets(allowed), d.Created.UnixMicro()).Scan(&d.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, "", ErrDeviceExists
	}
	if err != nil {
		return Device{}, "", err
	}
	if err := tx.Commit(); err != nil {
		return Device{}, "", err
	}
	return d, pw, nil
}

const deviceColumns = `id, user_name, name, allowed, created_us, last_used_us, last_addr`

func scanDevice(r scanner, extra ...any) (Device, error) {
	var d Device
	var allowed, addr string
	var created, used sql.NullInt64
	dest := append([]any{&d.ID, &d.User, &d.Name, &allowed, &created, &used, &addr}, extra...)
	if err := r.Scan(dest...); err != nil {
		return d, err
	}
	d.Created, d.LastUsed = fromMicros(created), fromMicros(used)
	if addr != "" {
		d.LastAddr, _ = netip.ParseAddr(addr)
	}
	nets, err := ParseNets([]string{allowed})
	if err != nil {
		return d, fmt.Errorf("vault: device %d: %w", d.ID, err)
	}
	d.AllowedNets = nets
	return d, nil
}

func (s *sqlStore) ListDevices(ctx context.Context, user string) ([]Device, error) {
	var rows *sql.Rows
	var err error
	if user == "" {
		rows, err = s.db.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY user_name, name`)
	} else {
		rows, err = s.db.QueryContext(ctx, s.q(`SELECT `+deviceColumns+` FROM devices WHERE user_name = ? ORDER BY name`), user)
	}
	return scanAll(rows, err, func(r *sql.Rows) (Device, error) { return scanDevice(r) })
}

func (s *sqlStore) RevokeDevice(ctx context.Context, user, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM devices WHERE user_name = ? AND name = ?`), user, name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNoDevice
	}
	return nil
}

func (s *sqlStore) Authenticate(ctx context.Context, user, password string, client netip.Addr) (Device, error) {
	type candidate struct {
		d    Device
		hash string
	}
	// The most recently used device first: a phone polling every few
	// minutes then costs one hash per login.
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+deviceColumns+`, pw_hash FROM devices
		WHERE user_name = ? ORDER BY COALESCE(last_used_us, 0) DESC, id`), user)
	cands, err := scanAll(rows, err, func(r *sql.Rows) (c candidate, err error) {
		c.d, err = scanDevice(r, &c.hash)
		return c, err
	})
	if err != nil {
		return Device{}, err
	}

	if len(cands) == 0 {
		// Cost the same as a wrong password, so timing does not tell
		// which users exist.
		if err := acquireHashSlot(ctx); err != nil {
			return Device{}, err
		}
		VerifyPassword(dummyHash(), password)
		releaseHashSlot()
		return Device{}, ErrUnknownDevice
	}
	for _, c := range cands {
		if err := acquireHashSlot(ctx); err != nil {
			return Device{}, err
		}
		ok, err := VerifyPassword(c.hash, password)
		releaseHashSlot()
		if err != nil {
			s.log.Warn("vault: device has a malformed password hash", "user", user, "device", c.d.Name, "err", err)
			continue
		}
		if !ok {
			continue
		}
		if !c.d.Allowed(client) {
			return c.d, ErrNetworkNotAllowed
		}
		now := time.Now().Truncate(time.Microsecond)
		addr := client.Unmap()
		var addrText string
		if addr.IsValid() {
			addrText = addr.String()
		}
		// Bookkeeping must not fail or stall a login that checked out (with
		// SQLite, a Refresh waiting for its provider holds the write lock).
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		_, err = s.db.ExecContext(rctx, s.q(`UPDATE devices SET last_used_us = ?, last_addr = ? WHERE id = ?`),
			now.UnixMicro(), addrText, c.d.ID)
		cancel()
		if err != nil {
			s.log.Warn("vault: cannot record device use", "user", user, "device", c.d.Name, "err", err)
		} else {
			c.d.LastUsed, c.d.LastAddr = now, addr
		}
		return c.d, nil
	}
	return Device{}, ErrWrongPassword
}

// readTokens reads and opens user's tokens inside tx, locking the row
// where the dialect can.
func (s *sqlStore) readTokens(ctx context.Context, tx querier, user string) (Tokens, error) {
	var refresh, access []byte
	var expiry sql.NullInt64
	err := tx.QueryRowContext(ctx, s.q(`SELECT refresh_sealed, access_sealed, access_expiry_us FROM users WHERE name = ?`+s.d.forUpdate), user).
		Scan(&refresh, &access, &expiry)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && refresh == nil) {
		return Tokens{}, ErrNoGrant
	}
	if err != nil {
		return Tokens{}, err
	}
	var t Tokens
	pt, err := s.sealer.Open(user, "refresh", refresh)
	if err != nil {
		return Tokens{}, fmt.Errorf("vault: refresh token of %q: %w", user, err)
	}
	t.Refresh = string(pt)
	if access != nil {
		pt, err := s.sealer.Open(user, "access", access)
		if err != nil {
			return Tokens{}, fmt.Errorf("vault: access token of %q: %w", user, err)
		}
		t.Access = string(pt)
		t.AccessExpiry = fromMicros(expiry)
	}
	return t, nil
}

// writeTokens seals and writes user's tokens inside tx.
func (s *sqlStore) writeTokens(ctx context.Context, tx querier, user string, t Tokens, extra string, args ...any) (int64, error) {
	var access []byte
	var expiry sql.NullInt64
	if t.Access != "" {
		access = s.sealer.Seal(user, "access", []byte(t.Access))
		expiry = micros(t.AccessExpiry)
	}
	all := append([]any{s.sealer.Seal(user, "refresh", []byte(t.Refresh)), access, expiry}, args...)
	all = append(all, user)
	res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET refresh_sealed = ?, access_sealed = ?, access_expiry_us = ?`+extra+
		` WHERE name = ?`), all...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *sqlStore) Refresh(ctx context.Context, user string, fn func(cur Tokens) (Tokens, error)) (Tokens, error) {
	if s.sealer == nil {
		return Tokens{}, ErrNoKey
	}
	unlock, err := s.locks.lock(ctx, user)
	if err != nil {
		return Tokens{}, err
	}
	defer unlock()

	// The transaction is driven by hand on one connection rather than by
	// sql.Tx, which rolls back when its context ends: once fn has returned
	// a token the provider already rotated, that token must be saved even
	// if ctx ended meanwhile. The waits before fn (the database's write or
	// row lock) still end with ctx.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return Tokens{}, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, s.d.beginWrite); err != nil {
		return Tokens{}, err
	}
	open := true
	defer func() {
		if open {
			s.rollback(ctx, conn)
		}
	}()
	cur, err := s.readTokens(ctx, conn, user)
	if err != nil {
		return Tokens{}, err
	}
	next, err := fn(cur)
	if err != nil {
		return Tokens{}, err
	}
	if next.Refresh == "" {
		next.Refresh = cur.Refresh
	}
	if next.Access == "" {
		next.AccessExpiry = time.Time{}
	}
	next.AccessExpiry = next.AccessExpiry.Truncate(time.Microsecond)
	if next.equal(cur) {
		return cur, nil
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	if _, err := s.writeTokens(saveCtx, conn, user, next, ""); err != nil {
		return Tokens{}, fmt.Errorf("vault: saving refreshed tokens of %q: %w", user, err)
	}
	if _, err := conn.ExecContext(saveCtx, "COMMIT"); err != nil {
		return Tokens{}, fmt.Errorf("vault: saving refreshed tokens of %q: %w", user, err)
	}
	open = false
	if afterRefreshCommit != nil {
		afterRefreshCommit()
	}
	return next, nil
}

// rollback ends a hand-driven transaction. If that fails, the connection
// is discarded rather than returned to the pool inside a transaction.
func (s *sqlStore) rollback(ctx context.Context, conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

func (s *sqlStore) PutGrant(ctx context.Context, user string, t Tokens) error {
	if s.sealer == nil {
		return ErrNoKey
	}
	if err := checkName("user", user); err != nil {
		return err
	}
	if t.Refresh == "" {
		return errors.New("vault: grant without refresh token")
	}
	unlock, err := s.locks.lock(ctx, user)
	if err != nil {
		return err
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.ensureUser(ctx, tx, user); err != nil {
		return err
	}
	t.AccessExpiry = t.AccessExpiry.Truncate(time.Microsecond)
	if _, err := s.writeTokens(ctx, tx, user, t, `, needs_reenrollment = ?, last_error = ?`, false, ""); err != nil {
		return err
	}
	return tx.Commit()
}

// maxErrorText bounds the error text kept per user: a line for a listing.
const maxErrorText = 200

func shortError(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrorText {
		// Cut on a rune boundary.
		cut := maxErrorText
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func (s *sqlStore) updateUser(ctx context.Context, user, set string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE users SET `+set+` WHERE name = ?`), append(args, user)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNoUser
	}
	return nil
}

func (s *sqlStore) RecordRefresh(ctx context.Context, user string, rerr error) error {
	var text string
	if rerr != nil {
		text = shortError(rerr.Error())
	}
	return s.updateUser(ctx, user, `last_refresh_us = ?, last_error = ?`, time.Now().UnixMicro(), text)
}

func (s *sqlStore) MarkNeedsReenrollment(ctx context.Context, user, reason string) error {
	return s.updateUser(ctx, user, `needs_reenrollment = ?, last_error = ?`, true, shortError(reason))
}

func (s *sqlStore) UsersNeedingReenrollment(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE needs_reenrollment = ?`), true).Scan(&n)
	return n, err
}
