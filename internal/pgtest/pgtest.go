// Package pgtest runs a private PostgreSQL server for tests: initdb in a
// temporary directory, listening only on a Unix socket in it, as an
// unprivileged system user when the tests run as root (PostgreSQL refuses
// to run as root). One server is shared by all tests of a test binary;
// each test gets its own database.
//
// Use from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and in a test: dsn := pgtest.NewDatabase(t).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SystemUser runs the server when the tests run as root. Start creates it
// (useradd --system) when it does not exist yet.
const SystemUser = "popbridge-pg"

// superuser is the database role the tests connect as (trust auth over
// the private socket).
const superuser = "popbridge"

const installHint = "install PostgreSQL as root (apt-get install postgresql) " +
	"or run the whole suite with: sudo bash .ci/run"

// InCI reports whether the tests run in CI (CI=true), where a missing
// PostgreSQL fails the tests instead of skipping them.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Server is a running private PostgreSQL.
type Server struct {
	dir     string // temporary root: data/ and the socket
	cmd     *exec.Cmd
	exited  chan struct{}
	counter atomic.Int64
}

// binDir finds the directory of initdb and postgres: PATH first, then the
// newest /usr/lib/postgresql/VERSION/bin (Debian keeps them off PATH).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ErrMissing reports that PostgreSQL is not installed.
var ErrMissing = errors.New("pgtest: PostgreSQL missing")

// Start initialises and starts a server. The error wraps ErrMissing when
// PostgreSQL is not installed.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMissing, err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		uid, gid, err := systemUser()
		if err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uid, Gid: gid}
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exited: make(chan struct{})}
	if err := s.start(bin, cred); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(bin string, cred *syscall.Credential) error {
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser,
		"--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	initdb.Dir = s.dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// Durability settings off: the data is thrown away with the directory.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=16MB")
	s.cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, "postgres.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// If the test binary dies without Stop, the server shuts down at once
	// instead of living on.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgtest: postgres exited: %s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections: %v\n%s", err, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// DSN returns a connection URL for database db, in the form vault.Open
// takes (postgres://USER@/DB?host=SOCKETDIR).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&sslmode=disable", superuser, db, s.dir)
}

// CreateDatabase creates a fresh database and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d", s.counter.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.DSN(name), nil
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// systemUser looks up SystemUser, creating it first if needed.
func systemUser() (uid, gid uint32, err error) {
	u, err := user.Lookup(SystemUser)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, err
		}
		out, cerr := exec.Command("useradd", "--system", "--no-create-home",
			"--shell", "/usr/sbin/nologin", SystemUser).CombinedOutput()
		// Another test process may have created it meanwhile: look again.
		if u, err = user.Lookup(SystemUser); err != nil {
			return 0, 0, fmt.Errorf("pgtest: useradd %s: %v: %s", SystemUser, cerr, strings.TrimSpace(string(out)))
		}
	}
	u64, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g64, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return uint32(u64), uint32(g64), nil
}

// The server shared by the tests of one binary.
var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	sharedMu   sync.Mutex
)

// Main runs the tests and stops the shared server, if one was started,
// before returning m.Run's exit code.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Require returns the shared server, starting it on first use. It skips
// the test with a clear message if PostgreSQL is missing (fails in CI), and
// fails it if the server does not start.
func Require(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		shared, sharedErr = Start()
	})
	if sharedErr != nil {
		if errors.Is(sharedErr, ErrMissing) && !InCI() {
			t.Skipf("%v; %s", sharedErr, installHint)
		}
		if errors.Is(sharedErr, ErrMissing) {
			t.Fatalf("%v (CI=true: refusing to skip)", sharedErr)
		}
		t.Fatalf("%v", sharedErr)
	}
	return shared
}

// NewDatabase returns the DSN of a new database on the shared server.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return dsn
}
