// Package upstreams starts real IMAP servers other than Dovecot for a
// test, each as a private instance on a loopback port with its own
// configuration in a temporary directory: GNU Mailutils imap4d (Debian
// package mailutils-imap4d, which installs beside Dovecot), Cyrus IMAP and
// Courier-IMAP (Debian's packages conflict with Dovecot's:
// .ci/install-servers unpacks them into a private tree instead; Courier
// runs in a private mount namespace, see courier.go).
//
// A missing server fails the test when CI=true and skips it otherwise,
// with the installation hint (the rule of package dovecottest).
package upstreams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testtb"
)

// installHint tells a developer how to get the servers.
const installHint = "install them as root with: bash .ci/install-servers (or run the whole suite with: sudo bash .ci/run)"

// User is an account of a test server.
type User struct {
	Name     string // local part; the login name is Server.Login(Name)
	Password string
}

// Server is a running IMAP server instance.
type Server struct {
	Name    string // "mailutils"
	Version string // as the server reports it
	dir     string
	addr    string
	domain  string // login names are user@domain where non-empty
	users   map[string]string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string

	// Trash and Archive name the folders a gateway in front of this server
	// is configured with; empty means "Trash" and "Archive" (Courier's
	// folders live under INBOX).
	Trash, Archive string
}

// Addr is the server's IMAP address (plaintext, loopback).
func (s *Server) Addr() string { return s.addr }

// Login returns the login name of user.
func (s *Server) Login(user string) string {
	if s.domain != "" {
		return user + "@" + s.domain
	}
	return user
}

// Password returns user's password.
func (s *Server) Password(user string) string { return s.users[user] }

// Account is the oracle's view of user's mailbox.
func (s *Server) Account(user string) oracle.Account {
	return oracle.Account{Addr: s.addr, User: s.Login(user), Password: s.users[user]}
}

// Log returns what the server logged.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Dial logs in as user with a fresh IMAP connection, closed when the test
// ends.
func (s *Server) Dial(t testtb.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.addr, nil)
	if err != nil {
		t.Fatalf("%s: dial: %v", s.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.Login(user), s.users[user]).Wait(); err != nil {
		t.Fatalf("%s: login %s: %v", s.Name, user, err)
	}
	return c
}

// Append delivers raw messages to user's mailbox with IMAP APPEND, over a
// connection that has no mailbox selected (mailutils loses messages
// appended to the mailbox its own session has selected). A refused
// message fails the test.
func (s *Server) Append(t testtb.TB, user, mailbox string, raws ...[]byte) {
	t.Helper()
	for i, err := range s.TryAppend(t, user, mailbox, raws...) {
		if err != nil {
			t.Fatalf("%s: APPEND of message %d: %v", s.Name, i+1, err)
		}
	}
}

// TryAppend is Append returning each message's result: Cyrus refuses
// messages with bare LF or NUL (NO), which a test may leave out.
func (s *Server) TryAppend(t testtb.TB, user, mailbox string, raws ...[]byte) []error {
	t.Helper()
	c := s.Dial(t, user)
	defer func() { c.Logout().Wait() }()
	errs := make([]error, len(raws))
	for i, raw := range raws {
		cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{})
		_, err := cmd.Write(raw)
		if cerr := cmd.Close(); err == nil {
			err = cerr
		}
		if _, werr := cmd.Wait(); err == nil {
			err = werr
		}
		var ie *imap.Error
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("%s: APPEND: %v", s.Name, err)
		}
		errs[i] = err
	}
	return errs
}

// Messages returns user's mailbox as the server serves it (BODY[]).
func (s *Server) Messages(t testtb.TB, user, mailbox string) []oracle.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, _, err := oracle.Messages(ctx, s.Account(user), mailbox)
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	return msgs
}

// requireRoot skips (or in CI fails) without root: the servers switch to
// the mail store's user.
func requireRoot(t testtb.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "%s tests need root (the server switches to user %s)", what, dovecottest.MailUser)
	}
}

func skipOrFail(t testtb.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if dovecottest.InCI() {
		t.Fatalf("%s (CI=true: refusing to skip)", msg)
	}
	t.Skipf("%s; %s", msg, installHint)
}

// mailIDs returns the uid and gid of the mail store's user (created by
// package dovecottest, or by .ci/run).
func mailIDs(t testtb.TB) (int, int) {
	t.Helper()
	u, err := user.Lookup(dovecottest.MailUser)
	if err != nil {
		out, cerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", dovecottest.MailUser).CombinedOutput()
		if u, err = user.Lookup(dovecottest.MailUser); err != nil {
			t.Fatalf("upstreams: mail user %s: %v (useradd: %v %s)", dovecottest.MailUser, err, cerr, out)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return uid, gid
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testtb.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs cmd in its own process group (killed with it when the test
// ends) and waits for an IMAP greeting on addr.
func (s *Server) start(t testtb.TB, cmd *exec.Cmd) error {
	t.Helper()
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := greets(s.addr)
		if err == nil {
			t.Cleanup(s.stop)
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited: %s", s.Name, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s: no greeting on %s: %v\n%s", s.Name, s.addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server's process group (the daemon and its children).
func (s *Server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	// Children of a forking daemon outlive the master briefly.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "* OK") {
		return fmt.Errorf("greeting %q", buf[:n])
	}
	c.Write([]byte("g LOGOUT\r\n"))
	return nil
}

// StartMailutils starts GNU Mailutils imap4d (mode daemon, in the
// foreground) on a free loopback port. Users are virtual (virtdomain:
// a passwd file per domain, crypt passwords, login names user@example.org),
// mailboxes are mbox files owned by the mail store's user under the
// instance's directory.
func StartMailutils(t testtb.TB, users ...User) *Server {
	t.Helper()
	bin, err := exec.LookPath("imap4d")
	if err != nil {
		for _, p := range []string{"/usr/sbin/imap4d"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		skipOrFail(t, "GNU Mailutils imap4d not found (Debian package mailutils-imap4d)")
	}
	requireRoot(t, "mailutils")
	uid, gid := mailIDs(t)
	dir, err := os.MkdirTemp("", "popbridge-mailutils")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "mailutils", dir: dir, domain: "example.org", users: map[string]string{}, logPath: filepath.Join(dir, "imap4d.log")}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		s.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	domains := filepath.Join(dir, "domains")
	mail := filepath.Join(dir, "mail")
	for _, d := range []string{domains, mail} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var passwd strings.Builder
	for _, u := range users {
		hash, err := exec.Command("openssl", "passwd", "-6", u.Password).Output()
		if err != nil {
			skipOrFail(t, "openssl passwd: %v (needed to write mailutils' passwd file)", err)
		}
		home := filepath.Join(mail, u.Name)
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		inbox := filepath.Join(home, "INBOX") // an empty mbox: APPEND wants it to exist
		if err := os.WriteFile(inbox, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{home, inbox} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&passwd, "%s:%s:%d:%d::%s:/bin/false\n", u.Name, strings.TrimSpace(string(hash)), uid, gid, home)
		s.users[u.Name] = u.Password
	}
	if err := os.WriteFile(filepath.Join(domains, s.domain), []byte(passwd.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(dir, "imap4d.conf")
		text := fmt.Sprintf(`# Written by popbridge's tests (internal/upstreams).
mode daemon;
foreground yes;
max-children 64;
pidfile %q;
logging { syslog no; }
auth {
  authorization virtdomain;
  authentication generic;
}
virtdomain { passwd-dir %q; }
mailbox { mailbox-pattern "mbox:%s/${user}/INBOX"; }
server 127.0.0.1:%d { }
`, filepath.Join(dir, "imap4d.pid"), domains, mail, port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		lastErr = s.start(t, exec.Command(bin, "--config-file="+conf))
		if lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting mailutils imap4d: %v", lastErr)
	return nil
}

// serversDir is where .ci/install-servers unpacks the servers that cannot
// be installed beside Dovecot; POPBRIDGE_SERVERS overrides it.
func serversDir() string {
	if d := os.Getenv("POPBRIDGE_SERVERS"); d != "" {
		return d
	}
	return "/opt/popbridge-servers"
}

// StartCyrus starts Cyrus IMAP (master with one imapd service, no
// prefork) from the tree .ci/install-servers unpacked, on a free loopback
// port, with its configuration, database and spool in a private
// directory, running as the mail store's user (cyrus_user). Passwords are
// not checked (sasl_pwcheck_method: alwaystrue): Cyrus' own password
// database needs tools the unpacked tree does not have; wrong-password
// handling is tested against Dovecot. Mailboxes live under name-based
// paths (mailbox_legacy_dirs): with 3.6's default id-based paths, two
// users' INBOXes were given the same id on the test machine and shared
// one directory. INBOX, Trash and Archive (the
// latter two with SPECIAL-USE \Trash and \Archive) are created at the
// first login.
func StartCyrus(t testtb.TB, users ...User) *Server {
	t.Helper()
	root := filepath.Join(serversDir(), "cyrus")
	bin := filepath.Join(root, "usr", "lib", "cyrus", "bin")
	if _, err := os.Stat(filepath.Join(bin, "master")); err != nil {
		skipOrFail(t, "Cyrus IMAP not unpacked in %s", root)
	}
	requireRoot(t, "cyrus")
	uid, gid := mailIDs(t)
	dir, err := os.MkdirTemp("", "popbridge-cyrus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Name: "cyrus", dir: dir, users: map[string]string{}, logPath: filepath.Join(dir, "master.log")}
	if b, err := os.ReadFile(filepath.Join(root, ".popbridge-version")); err == nil {
		s.Version = "Cyrus IMAP " + strings.TrimSpace(string(b))
	}
	for _, u := range users {
		s.users[u.Name] = u.Password
	}
	for _, d := range []string{"conf", "spool", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "imapd.conf")
	text := fmt.Sprintf(`# Written by popbridge's tests (internal/upstreams).
configdirectory: %[1]s/conf
partition-default: %[1]s/spool
cyrus_user: %[2]s
cyrus_group: %[2]s
admins: popbridge-admin
sasl_pwcheck_method: alwaystrue
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
unixhierarchysep: yes
altnamespace: yes
autocreate_quota: 0
autocreate_inbox_folders: Trash|Archive
autocreate_specialuse_folders: Trash|Archive
lmtpsocket: %[1]s/run/lmtp
idlesocket: %[1]s/run/idle
notifysocket: %[1]s/run/notify
statuscache: no
mailbox_legacy_dirs: yes
syslog_prefix: popbridge-test
`, dir, dovecottest.MailUser)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		services := filepath.Join(dir, "cyrus.conf")
		text := fmt.Sprintf(`# Written by popbridge's tests (internal/upstreams).
START {
  recover cmd="%[1]s/ctl_cyrusdb -C %[2]s -r"
}
SERVICES {
  imap cmd="%[1]s/imapd -C %[2]s" listen="127.0.0.1:%[3]d" prefork=0
}
EVENTS {
}
`, bin, conf, port)
		if err := os.WriteFile(services, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, "master"), "-C", conf, "-M", services, "-p", filepath.Join(dir, "run", "master.pid"), "-D")
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr", "lib", "x86_64-linux-gnu"))
		lastErr = s.start(t, cmd)
		if lastErr == nil {
			// A login creates INBOX, Trash and Archive.
			for _, u := range users {
				s.Dial(t, u.Name).Logout().Wait()
			}
			return s
		}
	}
	t.Fatalf("starting cyrus: %v", lastErr)
	return nil
}
