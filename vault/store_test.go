package vault

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/popbridge/popbridge/internal/pgtest"
)

var testKey = func() *Key {
	var k Key
	for i := range k {
		k[i] = byte(i * 7)
	}
	return &k
}()

// backend opens handles on one fresh store; each call is a new handle, as
// another gateway instance would have.
type backend struct {
	name string
	dsn  string
}

func (b backend) open(t *testing.T) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, b.dsn, Options{Key: testKey})
	if err != nil {
		t.Fatalf("Open(%s): %v", b.dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachBackend runs f against a fresh SQLite and a fresh PostgreSQL store.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, backend{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "vault.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, backend{"postgres", pgtest.NewDatabase(t)})
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestStoreUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx, s := testCtx(t), b.open(t)
		if err := s.AddUser(ctx, "bob@example.com"); err != nil {
			t.Fatalf("AddUser: %v", err)
		}
		if err := s.AddUser(ctx, "alice@example.com"); err != nil {
			t.Fatalf("AddUser: %v", err)
		}
		if err := s.AddUser(ctx, "alice@example.com"); !errors.Is(err, ErrUserExists) {
			t.Errorf("AddUser twice: got %v, want ErrUserExists", err)
		}
		for _, bad := range []string{"", "a\nb", "a\x00b"} {
			if err := s.AddUser(ctx, bad); err == nil {
				t.Errorf("AddUser(%q): accepted, want an error", bad)
			}
		}
		us, err := s.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(us) != 2 || us[0].Name != "alice@example.com" || us[1].Name != "bob@example.com" {
			t.Fatalf("ListUsers: got %+v, want alice then bob", us)
		}
		u := us[0]
		if u.HasGrant || u.NeedsReenrollment || u.Devices != 0 || u.Created.IsZero() || !u.LastRefresh.IsZero() {
			t.Errorf("new user: got %+v, want no grant, no devices, created set", u)
		}
		if _, err := s.GetUser(ctx, "carol"); !errors.Is(err, ErrNoUser) {
			t.Errorf("GetUser(unknown): got %v, want ErrNoUser", err)
		}
		if err := s.RemoveUser(ctx, "bob@example.com"); err != nil {
			t.Fatalf("RemoveUser: %v", err)
		}
		if err := s.RemoveUser(ctx, "bob@example.com"); !errors.Is(err, ErrNoUser) {
			t.Errorf("RemoveUser twice: got %v, want ErrNoUser", err)
		}
		if us, _ := s.ListUsers(ctx); len(us) != 1 {
			t.Errorf("users after remove: got %d, want 1", len(us))
		}
	})
}

func TestStoreDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx, s := testCtx(t), b.open(t)
		lan := netip.MustParsePrefix("192.0.2.0/24")
		pwPhone, pwDesk := addDevices(t, ctx, s, lan)
		client := netip.MustParseAddr("192.0.2.10")
		checkDeviceLogins(t, ctx, s, lan, client, pwPhone, pwDesk)
		checkRevoke(t, ctx, s, b.open(t), lan, client, pwPhone, pwDesk)
	})
}

// addDevices adds alice's phone and desktop (allowed from lan only) and
// bob's phone, checks the listings and returns alice's passwords.
func addDevices(t *testing.T, ctx context.Context, s Store, lan netip.Prefix) (pwPhone, pwDesk string) {
	t.Helper()
	phone, pwPhone, err := s.AddDevice(ctx, "alice", "phone", nil)
	if err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	if !pwFormat.MatchString(pwPhone) || phone.ID == 0 || phone.User != "alice" || phone.Name != "phone" {
		t.Fatalf("AddDevice: got %+v, %q", phone, pwPhone)
	}
	_, pwDesk, err = s.AddDevice(ctx, "alice", "desktop", []netip.Prefix{lan})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddDevice(ctx, "alice", "phone", nil); !errors.Is(err, ErrDeviceExists) {
		t.Errorf("AddDevice with a used name: got %v, want ErrDeviceExists", err)
	}
	if _, _, err := s.AddDevice(ctx, "bob", "phone", nil); err != nil {
		t.Errorf("AddDevice for another user with the same device name: %v", err)
	}

	all, err := s.ListDevices(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range all {
		names = append(names, d.User+"/"+d.Name)
	}
	if got, want := fmt.Sprint(names), "[alice/desktop alice/phone bob/phone]"; got != want {
		t.Errorf("ListDevices(all): got %s, want %s", got, want)
	}
	ds, _ := s.ListDevices(ctx, "alice")
	if len(ds) != 2 || ds[0].Name != "desktop" || len(ds[0].AllowedNets) != 1 || ds[0].AllowedNets[0] != lan {
		t.Errorf("ListDevices(alice): got %+v, want desktop (allowed %v) and phone", ds, lan)
	}
	return pwPhone, pwDesk
}

// checkDeviceLogins checks Authenticate with the devices addDevices made.
func checkDeviceLogins(t *testing.T, ctx context.Context, s Store, lan netip.Prefix, client netip.Addr, pwPhone, pwDesk string) {
	t.Helper()
	d, err := s.Authenticate(ctx, "alice", pwPhone, client)
	if err != nil || d.Name != "phone" {
		t.Fatalf("Authenticate(phone): got %+v, %v", d, err)
	}
	if d.LastAddr != client || d.LastUsed.IsZero() {
		t.Errorf("Authenticate result: last use %v from %v, want now from %v", d.LastUsed, d.LastAddr, client)
	}
	ds, _ := s.ListDevices(ctx, "alice")
	if ds[1].Name != "phone" || ds[1].LastAddr != client || !ds[1].LastUsed.Equal(d.LastUsed) || !ds[0].LastUsed.IsZero() {
		t.Errorf("after login: got %+v, want phone used from %v, desktop never", ds, client)
	}
	// Without dashes and in upper case, from an IPv4-mapped address.
	typed := bytes.ToUpper(bytes.ReplaceAll([]byte(pwDesk), []byte("-"), nil))
	if d, err := s.Authenticate(ctx, "alice", string(typed), netip.MustParseAddr("::ffff:192.0.2.77")); err != nil || d.Name != "desktop" {
		t.Errorf("Authenticate(desktop, typed %s): got %+v, %v", typed, d, err)
	}
	if _, err := s.Authenticate(ctx, "alice", pwDesk, netip.MustParseAddr("198.51.100.1")); !errors.Is(err, ErrNetworkNotAllowed) {
		t.Errorf("desktop from outside %v: got %v, want ErrNetworkNotAllowed", lan, err)
	}
	if _, err := s.Authenticate(ctx, "alice", "aaaaa-aaaaa-aaaaa-aaaaa", client); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: got %v, want ErrWrongPassword", err)
	}
	if _, err := s.Authenticate(ctx, "bob", pwPhone, client); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("alice's password for bob: got %v, want ErrWrongPassword", err)
	}
	if _, err := s.Authenticate(ctx, "carol", pwPhone, client); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unknown user: got %v, want ErrUnknownDevice", err)
	}
}

// checkRevoke checks that revocation takes effect at once, also through
// other, a second handle on the same store, and that removing a user
// removes its devices.
func checkRevoke(t *testing.T, ctx context.Context, s, other Store, lan netip.Prefix, client netip.Addr, pwPhone, pwDesk string) {
	t.Helper()
	// Revocation takes effect at once, also through another handle.
	if _, err := other.Authenticate(ctx, "alice", pwPhone, client); err != nil {
		t.Fatalf("second handle before revoke: %v", err)
	}
	if err := s.RevokeDevice(ctx, "alice", "phone"); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if _, err := other.Authenticate(ctx, "alice", pwPhone, client); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("revoked phone (desktop remains): got %v, want ErrWrongPassword", err)
	}
	if err := s.RevokeDevice(ctx, "alice", "phone"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("RevokeDevice twice: got %v, want ErrNoDevice", err)
	}
	if err := s.RevokeDevice(ctx, "alice", "desktop"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(ctx, "alice", pwDesk, lan.Addr()); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("all devices revoked: got %v, want ErrUnknownDevice", err)
	}

	// Removing a user removes its devices.
	if err := s.RemoveUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.ListDevices(ctx, ""); len(ds) != 0 {
		t.Errorf("devices after removing bob and revoking alice's: got %+v, want none", ds)
	}
}

func TestStoreDeviceLimit(t *testing.T) {
	ctx := testCtx(t)
	s := backend{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "vault.db")}.open(t)
	for i := range MaxDevicesPerUser {
		if _, _, err := s.AddDevice(ctx, "alice", fmt.Sprint("d", i), nil); err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	if _, _, err := s.AddDevice(ctx, "alice", "one-more", nil); !errors.Is(err, ErrTooManyDevices) {
		t.Fatalf("device %d: got %v, want ErrTooManyDevices", MaxDevicesPerUser+1, err)
	}
}

func TestStoreGrant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx, s := testCtx(t), b.open(t)
		ident := func(cur Tokens) (Tokens, error) { return cur, nil }
		grant := checkPutGrant(t, ctx, s, ident)
		checkRotation(t, ctx, s, b.open(t), ident, grant)
		checkRecordRefresh(t, ctx, s)
	})
}

// checkPutGrant checks a grant's life up to its first Refresh and returns
// the grant stored for alice.
func checkPutGrant(t *testing.T, ctx context.Context, s Store, ident func(Tokens) (Tokens, error)) Tokens {
	t.Helper()
	if _, err := s.Refresh(ctx, "alice", ident); !errors.Is(err, ErrNoGrant) {
		t.Errorf("Refresh of unknown user: got %v, want ErrNoGrant", err)
	}
	s.AddUser(ctx, "alice")
	if _, err := s.Refresh(ctx, "alice", ident); !errors.Is(err, ErrNoGrant) {
		t.Errorf("Refresh of user without grant: got %v, want ErrNoGrant", err)
	}
	if err := s.MarkNeedsReenrollment(ctx, "alice", "invalid_grant: AADSTS50173"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.UsersNeedingReenrollment(ctx); err != nil || n != 1 {
		t.Errorf("UsersNeedingReenrollment: got %d, %v, want 1", n, err)
	}
	expiry := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	grant := Tokens{Refresh: "refresh-secret-1", Access: "access-secret-1", AccessExpiry: expiry}
	if err := s.PutGrant(ctx, "alice", grant); err != nil {
		t.Fatalf("PutGrant: %v", err)
	}
	u, _ := s.GetUser(ctx, "alice")
	if !u.HasGrant || u.NeedsReenrollment || u.LastError != "" || !u.AccessExpiry.Equal(expiry) {
		t.Errorf("after PutGrant: got %+v, want grant, not flagged, expiry %v", u, expiry)
	}
	if n, _ := s.UsersNeedingReenrollment(ctx); n != 0 {
		t.Errorf("UsersNeedingReenrollment after PutGrant: got %d, want 0", n)
	}
	got, err := s.Refresh(ctx, "alice", ident)
	if err != nil || !got.equal(grant) {
		t.Fatalf("Refresh(identity): got %+v, %v, want %+v", got, err, grant)
	}
	return grant
}

// checkRotation checks what Refresh saves, seen also through other, a
// second handle on the same store.
func checkRotation(t *testing.T, ctx context.Context, s, other Store, ident func(Tokens) (Tokens, error), grant Tokens) {
	t.Helper()
	expiry := grant.AccessExpiry
	// An error from fn saves nothing.
	boom := errors.New("provider down")
	_, err := s.Refresh(ctx, "alice", func(cur Tokens) (Tokens, error) {
		return Tokens{Refresh: "half-done", Access: "x"}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Refresh with failing fn: got %v, want %v", err, boom)
	}
	if got, _ := s.Refresh(ctx, "alice", ident); !got.equal(grant) {
		t.Errorf("after failing fn: got %+v, want unchanged %+v", got, grant)
	}

	// A rotation is saved and seen through another handle.
	rotated := Tokens{Refresh: "refresh-secret-2", Access: "access-secret-2", AccessExpiry: expiry.Add(time.Hour)}
	if got, err := s.Refresh(ctx, "alice", func(Tokens) (Tokens, error) { return rotated, nil }); err != nil || !got.equal(rotated) {
		t.Fatalf("Refresh(rotate): got %+v, %v", got, err)
	}
	if got, _ := other.Refresh(ctx, "alice", ident); !got.equal(rotated) {
		t.Errorf("other handle after rotation: got %+v, want %+v", got, rotated)
	}
	// No refresh token in fn's result keeps the stored one.
	newAccess := Tokens{Access: "access-secret-3", AccessExpiry: expiry.Add(2 * time.Hour)}
	got, err := s.Refresh(ctx, "alice", func(Tokens) (Tokens, error) { return newAccess, nil })
	if err != nil || got.Refresh != rotated.Refresh || got.Access != newAccess.Access {
		t.Errorf("Refresh without refresh token: got %+v, %v, want refresh %q kept", got, err, rotated.Refresh)
	}
}

// checkRecordRefresh checks the refresh outcome kept for a user.
func checkRecordRefresh(t *testing.T, ctx context.Context, s Store) {
	t.Helper()
	if err := s.RecordRefresh(ctx, "alice", errors.New("token endpoint: 503\nService Unavailable")); err != nil {
		t.Fatal(err)
	}
	u, _ := s.GetUser(ctx, "alice")
	if u.LastError != "token endpoint: 503 Service Unavailable" || u.LastRefresh.IsZero() {
		t.Errorf("after failed refresh: got last error %q at %v", u.LastError, u.LastRefresh)
	}
	if UserStatus(u) != "refresh failing: token endpoint: 503 Service Unavailable" {
		t.Errorf("UserStatus: got %q, want %q", UserStatus(u), "refresh failing: token endpoint: 503 Service Unavailable")
	}
	if err := s.RecordRefresh(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if u, _ = s.GetUser(ctx, "alice"); u.LastError != "" || UserStatus(u) != "ok" {
		t.Errorf("after good refresh: got last error %q, status %q", u.LastError, UserStatus(u))
	}
	if err := s.RecordRefresh(ctx, "nobody", nil); !errors.Is(err, ErrNoUser) {
		t.Errorf("RecordRefresh(unknown): got %v, want ErrNoUser", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestStoreTokensSealedAtRest reads the database directly: no token is
// stored in clear, and a sealed token copied to another user's row does
// not open for that user.
func TestStoreTokensSealedAtRest(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "vault.db")
	s := backend{"sqlite", "sqlite:" + path}.open(t)
	grant := Tokens{Refresh: "REFRESH-IN-CLEAR", Access: "ACCESS-IN-CLEAR", AccessExpiry: time.Now().Add(time.Hour)}
	if err := s.PutGrant(ctx, "alice", grant); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGrant(ctx, "mallory", Tokens{Refresh: "mallory's"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dump []byte
	rows, err := db.QueryContext(ctx, `SELECT name, COALESCE(refresh_sealed, x''), COALESCE(access_sealed, x'') FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var r, a []byte
		rows.Scan(&name, &r, &a)
		dump = append(append(append(dump, name...), r...), a...)
	}
	rows.Close()
	for _, secret := range []string{grant.Refresh, grant.Access} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("database holds %q in clear", secret)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE users SET refresh_sealed = (SELECT refresh_sealed FROM users WHERE name = 'alice') WHERE name = 'mallory'`); err != nil {
		t.Fatal(err)
	}
	s = backend{"sqlite", "sqlite:" + path}.open(t)
	_, err = s.Refresh(ctx, "mallory", func(cur Tokens) (Tokens, error) {
		t.Errorf("fn called with %+v for a moved ciphertext", cur)
		return cur, nil
	})
	if !errors.Is(err, ErrUnseal) {
		t.Errorf("Refresh with alice's ciphertext in mallory's row: got %v, want ErrUnseal", err)
	}
	// A store opened without the key keeps device logins but no tokens.
	nokey, err := Open(ctx, "sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nokey.Close()
	if _, err := nokey.Refresh(ctx, "alice", func(c Tokens) (Tokens, error) { return c, nil }); !errors.Is(err, ErrNoKey) {
		t.Errorf("Refresh without key: got %v, want ErrNoKey", err)
	}
}

// TestStoreRefreshOnce is the concurrency contract: 20 goroutines on two
// handles (two gateway instances) refresh one user's expired access token
// at once; the provider is asked exactly once and all get its token.
func TestStoreRefreshOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		handles := []Store{b.open(t), b.open(t)}
		old := Tokens{Refresh: "r0", Access: "a0", AccessExpiry: time.Now().Add(-time.Minute)}
		if err := handles[0].PutGrant(ctx, "alice", old); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		// The fake provider rotates the refresh token, as Microsoft's does:
		// a second call with the old one would be a lost race.
		provider := func(refresh string) (Tokens, error) {
			n := calls.Add(1)
			if refresh != "r0" {
				return Tokens{}, fmt.Errorf("provider: refresh token %q already used", refresh)
			}
			time.Sleep(20 * time.Millisecond) // widen the window for a race
			return Tokens{Refresh: fmt.Sprint("r", n), Access: fmt.Sprint("a", n), AccessExpiry: time.Now().Add(time.Hour)}, nil
		}
		fn := func(cur Tokens) (Tokens, error) {
			if cur.Access != "" && time.Until(cur.AccessExpiry) > 5*time.Minute {
				return cur, nil
			}
			return provider(cur.Refresh)
		}
		const n = 20
		start := make(chan struct{})
		results := make([]Tokens, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				results[i], errs[i] = handles[i%2].Refresh(ctx, "alice", fn)
			})
		}
		close(start)
		wg.Wait()
		if got := calls.Load(); got != 1 {
			t.Errorf("provider calls: got %d, want 1", got)
		}
		for i := range n {
			if errs[i] != nil || results[i].Access != "a1" || results[i].Refresh != "r1" {
				t.Errorf("goroutine %d: got %+v, %v, want access a1, refresh r1", i, results[i], errs[i])
			}
		}
		stored, err := b.open(t).Refresh(ctx, "alice", func(c Tokens) (Tokens, error) { return c, nil })
		if err != nil || stored.Refresh != "r1" || stored.Access != "a1" {
			t.Errorf("stored grant: got %+v, %v, want r1/a1", stored, err)
		}
	})
}

// TestStoreRefreshWaitEndsWithContext: a Refresh waiting for another
// one's lock gives up when its context ends.
func TestStoreRefreshWaitEndsWithContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		s1, s2 := b.open(t), b.open(t)
		if err := s1.PutGrant(ctx, "alice", Tokens{Refresh: "r0"}); err != nil {
			t.Fatal(err)
		}
		inside, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := s1.Refresh(ctx, "alice", func(cur Tokens) (Tokens, error) {
				close(inside)
				<-release
				return Tokens{Refresh: "r1"}, nil
			})
			done <- err
		}()
		<-inside
		for _, s := range []Store{s1, s2} { // same handle: mutex; other handle: database lock
			wctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				_, err := s.Refresh(wctx, "alice", func(cur Tokens) (Tokens, error) {
					return cur, errFnRan
				})
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond) // let it reach the wait; the outcome is the same if not
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("waiting Refresh after cancel: got %v, want context.Canceled", err)
			}
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("holding Refresh: %v", err)
		}
		got, err := s2.Refresh(ctx, "alice", func(c Tokens) (Tokens, error) { return c, nil })
		if err != nil || got.Refresh != "r1" {
			t.Errorf("after release: got %+v, %v, want r1", got, err)
		}
	})
}

var errFnRan = errors.New("fn ran while another Refresh held the lock")

func TestStoreSchemaVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		s := b.open(t)
		s.AddUser(ctx, "alice")
		s.Close()
		// Opening again keeps the data (migrations are not re-run).
		s = b.open(t)
		if _, err := s.GetUser(ctx, "alice"); err != nil {
			t.Fatalf("user after reopen: %v", err)
		}
		ss := s.(*sqlStore)
		var v int
		if err := ss.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(ss.d.migrations) {
			t.Fatalf("schema_version: got %d, %v, want %d", v, err, len(ss.d.migrations))
		}
		if _, err := ss.db.ExecContext(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := Open(ctx, b.dsn, Options{Key: testKey})
		if err == nil {
			s2.Close()
		}
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open with a newer schema: got %v, want ErrSchemaTooNew", err)
		}
	})
}

// TestStoreOpenTogether: instances starting at once on a new store all
// open it; the schema is created once.
func TestStoreOpenTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s, err := Open(ctx, b.dsn, Options{Key: testKey})
				if err == nil {
					err = s.AddUser(ctx, fmt.Sprint("user", i))
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}
		us, err := b.open(t).ListUsers(ctx)
		if err != nil || len(us) != n {
			t.Errorf("users: got %d, %v, want %d", len(us), err, n)
		}
	})
}

// TestSQLiteLoginDuringRefresh: while a Refresh holds SQLite's write lock
// for its provider call, a device login still succeeds (its last use is
// recorded later, or not at all, but the login is not refused).
func TestSQLiteLoginDuringRefresh(t *testing.T) {
	ctx := testCtx(t)
	b := backend{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "vault.db")}
	gw1, gw2 := b.open(t), b.open(t)
	_, pw, err := gw1.AddDevice(ctx, "alice", "phone", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw1.PutGrant(ctx, "alice", Tokens{Refresh: "r0"}); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := gw1.Refresh(ctx, "alice", func(Tokens) (Tokens, error) {
			close(inside)
			<-release
			return Tokens{Refresh: "r1"}, nil
		})
		done <- err
	}()
	<-inside
	d, err := gw2.Authenticate(ctx, "alice", pw, netip.MustParseAddr("192.0.2.1"))
	close(release)
	if err != nil || d.Name != "phone" {
		t.Errorf("login during a refresh: got %+v, %v, want the phone", d, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Refresh: %v", err)
	}
}

// TestStoreRefreshSavesAfterContextEnds: tokens that fn returns are saved
// even if the caller's context ended while fn ran (the provider may
// already have rotated the refresh token).
func TestStoreRefreshSavesAfterContextEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		if err := s.PutGrant(testCtx(t), "alice", Tokens{Refresh: "r0"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(testCtx(t))
		got, err := s.Refresh(ctx, "alice", func(Tokens) (Tokens, error) {
			cancel() // the deadline passes while the provider answers
			return Tokens{Refresh: "r1", Access: "a1", AccessExpiry: time.Now().Add(time.Hour)}, nil
		})
		if err != nil || got.Refresh != "r1" {
			t.Fatalf("Refresh: got %+v, %v, want r1 saved", got, err)
		}
		stored, err := b.open(t).Refresh(testCtx(t), "alice", func(c Tokens) (Tokens, error) { return c, nil })
		if err != nil || stored.Refresh != "r1" || stored.Access != "a1" {
			t.Errorf("stored: got %+v, %v, want r1/a1", stored, err)
		}
	})
}

func TestShortError(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	got := shortError("a\n\tb  " + long)
	if !strings.HasPrefix(got, "a b éé") || !strings.HasSuffix(got, "…") || len(got) > maxErrorText+len("…") || !utf8.ValidString(got) {
		t.Errorf("shortError: got %q (%d bytes), want one line of at most %d bytes plus an ellipsis, valid UTF-8", got, len(got), maxErrorText)
	}
}
