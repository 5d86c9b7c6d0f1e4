package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/popbridge/popbridge/internal/testtb"
)

// User is a mail account of an instance.
type User struct {
	Name     string
	Password string
}

// Options adjust an instance. The zero value is what Start uses.
type Options struct {
	// ExtraConfig is appended verbatim to the generated dovecot.conf.
	ExtraConfig string
	// OAuth2, if set, also accepts SASL XOAUTH2 and OAUTHBEARER logins
	// whose bearer token an OAuth 2.0 provider vouches for (oauth2.go).
	OAuth2 *OAuth2
}

// Dovecot is a running private Dovecot instance.
type Dovecot struct {
	t        testtb.TB
	bin      binaries
	mail     ids
	dir      string // the instance's private directory, removed at cleanup
	confPath string
	logPath  string
	homeRoot string
	imapAddr string
	pop3Addr string
	users    map[string]string
	*master  // the running master; replaced by Restart
}

var instanceSeq atomic.Int64

// Start starts a Dovecot instance with the given users (each with an empty
// INBOX) and stops it when the test ends. It skips the test (fails it in CI)
// when Dovecot is not installed or the test is not running as root.
func Start(t testtb.TB, users ...User) *Dovecot {
	t.Helper()
	return StartWith(t, Options{}, users...)
}

// StartWith is Start with options.
func StartWith(t testtb.TB, opts Options, users ...User) *Dovecot {
	t.Helper()
	bin, mail := requireDovecot(t)

	// Everything lives in one private directory with a short, plain name:
	// base_dir holds unix sockets whose paths must stay under 108 bytes, and
	// a test's t.TempDir is named after the test, which can be long and hold
	// characters (such as '#') that dovecot.conf would misread. Dovecot's
	// unprivileged processes (auth as "dovecot", mail as MailUser) must be
	// able to traverse it.
	dir, err := os.MkdirTemp("", "pbdv")
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	baseDir := filepath.Join(dir, "run")
	if err := os.Mkdir(baseDir, 0o755); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}

	d := &Dovecot{
		t:        t,
		bin:      bin,
		mail:     mail,
		dir:      dir,
		confPath: filepath.Join(dir, "dovecot.conf"),
		logPath:  filepath.Join(dir, "dovecot.log"),
		homeRoot: filepath.Join(dir, "home"),
		users:    map[string]string{},
	}
	if err := d.writeUsers(users); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}

	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	cfg := config{
		instanceName: fmt.Sprintf("popbridge-test-%d-%d", os.Getpid(), instanceSeq.Add(1)),
		baseDir:      baseDir,
		stateDir:     stateDir,
		logPath:      d.logPath,
		passwdFile:   filepath.Join(dir, "passwd"),
		homeRoot:     d.homeRoot,
		mailUID:      mail.uid,
		mailGID:      mail.gid,
		extra:        opts.ExtraConfig,
	}
	if opts.OAuth2 != nil {
		cfg.oauth2File = filepath.Join(dir, "oauth2.conf")
		keys := filepath.Join(dir, "keys")
		if err := opts.OAuth2.writeKeys(keys); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		if err := os.WriteFile(cfg.oauth2File, []byte(opts.OAuth2.render(keys)), 0o644); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.dumpLog()
		}
	})

	// A free port can be taken by someone else before Dovecot binds it:
	// retry with new ports when that happens.
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 2)
		cfg.imapPort, cfg.pop3Port = ports[0], ports[1]
		if err := os.WriteFile(d.confPath, []byte(cfg.render()), 0o644); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		if out, err := exec.Command(bin.doveconf, "-c", d.confPath, "-n").CombinedOutput(); err != nil {
			t.Fatalf("dovecottest: doveconf -c %s -n: %v\n%s", d.confPath, err, out)
		}
		_ = os.Remove(d.logPath)
		_ = os.Remove(filepath.Join(dir, "dovecot.stderr"))
		d.imapAddr = fmt.Sprintf("127.0.0.1:%d", cfg.imapPort)
		d.pop3Addr = fmt.Sprintf("127.0.0.1:%d", cfg.pop3Port)
		err := d.run()
		if err == nil {
			return d
		}
		if attempt < 3 && strings.Contains(d.readLog(), "Address already in use") {
			t.Logf("dovecottest: port clash, retrying: %v", err)
			continue
		}
		t.Fatalf("dovecottest: starting dovecot: %v\n%s", err, d.readLog())
	}
}

// writeUsers writes the passwd-file and creates each user's home.
func (d *Dovecot) writeUsers(users []User) error {
	if err := os.Mkdir(d.homeRoot, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name+u.Password, ":\r\n\x00") {
			return fmt.Errorf("user %q: names and passwords must be non-empty and free of ':', CR, LF, NUL", u.Name)
		}
		if _, dup := d.users[u.Name]; dup {
			return fmt.Errorf("user %q given twice", u.Name)
		}
		d.users[u.Name] = u.Password
		fmt.Fprintf(&b, "%s:{PLAIN}%s::::::\n", u.Name, u.Password)
		home := d.Home(u.Name)
		if err := os.Mkdir(home, 0o700); err != nil {
			return err
		}
		if err := os.Chown(home, d.mail.uid, d.mail.gid); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(d.dir, "passwd"), []byte(b.String()), 0o644)
}

// run starts the dovecot master in the foreground and waits until both
// listeners greet. On success the process is stopped at the test's cleanup.
func (d *Dovecot) run() error {
	m, err := startMaster(d.bin.dovecot, d.confPath, d.dir,
		listener{d.imapAddr, "* OK"}, listener{d.pop3Addr, "+OK"})
	if err != nil {
		return err
	}
	d.master = m
	d.t.Cleanup(d.stop)
	return nil
}

// stop stops the running master.
func (d *Dovecot) stop() { d.master.stop(d.t.Logf) }

// greets dials addr and checks that the first line starts with prefix.
func greets(addr, prefix string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, prefix) {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(t testtb.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// IMAPAddr is the host:port of the IMAP listener.
func (d *Dovecot) IMAPAddr() string { return d.imapAddr }

// POP3Addr is the host:port of Dovecot's own POP3 listener.
func (d *Dovecot) POP3Addr() string { return d.pop3Addr }

// ConfigPath is the instance's dovecot.conf.
func (d *Dovecot) ConfigPath() string { return d.confPath }

// LogPath is the instance's log file.
func (d *Dovecot) LogPath() string { return d.logPath }

// Password returns the password of a user of the instance.
func (d *Dovecot) Password(user string) string {
	p, ok := d.users[user]
	if !ok {
		d.t.Fatalf("dovecottest: unknown user %q", user)
	}
	return p
}

// Home is the home directory of a user (its Maildir is Home/Maildir).
func (d *Dovecot) Home(user string) string {
	sum := md5.Sum([]byte(user))
	return filepath.Join(d.homeRoot, hex.EncodeToString(sum[:]))
}

// Doveadm runs doveadm against this instance and returns its standard
// output; it fails the test if doveadm fails.
func (d *Dovecot) Doveadm(args ...string) string {
	d.t.Helper()
	out, err := d.doveadm(args...)
	if err != nil {
		d.t.Fatalf("dovecottest: %v", err)
	}
	return out
}

func (d *Dovecot) doveadm(args ...string) (string, error) {
	cmd := exec.Command(d.bin.doveadm, append([]string{"-c", d.confPath}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("doveadm %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// readLog returns the instance's log and early standard error output.
func (d *Dovecot) readLog() string {
	var b strings.Builder
	for _, p := range []string{filepath.Join(d.dir, "dovecot.stderr"), d.logPath} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
		b.Write(data)
	}
	return b.String()
}

// dumpLog logs the end of the instance's log, for failed tests.
func (d *Dovecot) dumpLog() {
	log := d.readLog()
	const max = 8 << 10
	if len(log) > max {
		log = "...\n" + log[len(log)-max:]
	}
	d.t.Logf("dovecottest: end of the dovecot log (%s):\n%s", d.logPath, log)
}
