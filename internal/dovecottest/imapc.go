package dovecottest

// Added for the benchmark (bench/): Dovecot's own POP3-to-IMAP gateway, a
// second instance that serves POP3 only and keeps its mail on an IMAP
// server through Dovecot's imapc storage, the only other POP3 front end
// for an IMAP store to compare the gateway with.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/popbridge/popbridge/internal/testtb"
)

// ImapcOptions adjust an imapc gateway. The zero value is the standard
// recipe (see ImapcGateway).
type ImapcOptions struct {
	// ExtraConfig is appended verbatim to the generated dovecot.conf
	// (for example "mail_prefetch_count = 20").
	ExtraConfig string
}

// ImapcGateway is a running Dovecot POP3 server whose mail storage is
// imapc: every POP3 session logs in to the upstream instance's IMAP and
// serves what it fetches there. It is configured the way Dovecot documents
// an IMAP proxy-gateway:
//
//   - passdb imap authenticates each POP3 login by logging in to the
//     upstream (the gateway knows no passwords) and hands the user name and
//     plaintext password on to the mail process as imapc_user and
//     imapc_password (default_fields userdb_imapc_user=%u
//     userdb_imapc_password=%w);
//   - mail_location = imapc:~/imapc keeps imapc's local index and cache in a
//     per-user home of the instance's own directory;
//   - imapc_features = rfc822.size, so that STAT and LIST ask the upstream
//     for RFC822.SIZE instead of downloading every message to count it;
//   - pop3_uidl_format = %08Xu%08Xv, as on the upstream, and
//     pop3_no_flag_updates = yes, so that RETR changes nothing upstream
//     (popbridge's benchmark runs it with seen = never too).
//
// It has its own base_dir, state, log and port: nothing is shared with the
// upstream but its IMAP listener.
type ImapcGateway struct {
	t        testtb.TB
	bin      binaries
	dir      string
	confPath string
	logPath  string
	pop3Addr string
	*master
}

// StartImapcGateway starts an imapc POP3 gateway in front of upstream and
// stops it when the test ends. Any user of upstream can log in to it with
// the same password. It skips the test (fails it in CI) when Dovecot is not
// installed or the test is not running as root.
func StartImapcGateway(t testtb.TB, upstream *Dovecot, opts ImapcOptions) *ImapcGateway {
	t.Helper()
	bin, mail := requireDovecot(t)
	host, port, err := net.SplitHostPort(upstream.IMAPAddr())
	if err != nil {
		t.Fatalf("dovecottest: upstream address: %v", err)
	}
	dir, err := os.MkdirTemp("", "pbic")
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	g := &ImapcGateway{
		t:        t,
		bin:      bin,
		dir:      dir,
		confPath: filepath.Join(dir, "dovecot.conf"),
		logPath:  filepath.Join(dir, "dovecot.log"),
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
	}
	// Homes (imapc's index and cache) are created on first login by the
	// mail processes, which run as MailUser.
	if err := os.Chown(filepath.Join(dir, "home"), mail.uid, mail.gid); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dovecottest: end of the imapc gateway's log (%s):\n%s", g.logPath, tail(g.readLog(), 8<<10))
		}
	})
	seq := instanceSeq.Add(1)
	for attempt := 1; ; attempt++ {
		pop3Port := freePorts(t, 1)[0]
		conf := renderImapc(imapcConfig{
			instanceName: fmt.Sprintf("popbridge-imapc-%d-%d", os.Getpid(), seq),
			dir:          dir,
			upHost:       host,
			upPort:       port,
			pop3Port:     pop3Port,
			mailUID:      mail.uid,
			mailGID:      mail.gid,
			extra:        opts.ExtraConfig,
		})
		if err := os.WriteFile(g.confPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
		if out, err := exec.Command(bin.doveconf, "-c", g.confPath, "-n").CombinedOutput(); err != nil {
			t.Fatalf("dovecottest: doveconf -c %s -n: %v\n%s", g.confPath, err, out)
		}
		_ = os.Remove(g.logPath)
		g.pop3Addr = fmt.Sprintf("127.0.0.1:%d", pop3Port)
		err := g.run()
		if err == nil {
			return g
		}
		if attempt < 3 && strings.Contains(g.readLog(), "Address already in use") {
			t.Logf("dovecottest: port clash, retrying: %v", err)
			continue
		}
		t.Fatalf("dovecottest: starting the imapc gateway: %v\n%s", err, g.readLog())
	}
}

// StartImapcGatewayForBench is StartImapcGateway for a program that is not
// a test, with the harness's failures turned into errors the way
// StartForBench does. stop stops the instance and removes its directory.
func StartImapcGatewayForBench(h BenchHost, upstream *Dovecot, opts ImapcOptions) (g *ImapcGateway, stop func(), err error) {
	tb := &benchTB{h: h}
	stop = tb.runCleanups
	defer func() {
		if v := recover(); v != nil {
			f, ok := v.(benchFatal)
			if !ok {
				panic(v)
			}
			stop()
			g, err = nil, f
		}
	}()
	if os.Geteuid() != 0 {
		return nil, stop, fmt.Errorf("dovecottest: the imapc gateway needs root (it switches to user %s)", MailUser)
	}
	return StartImapcGateway(tb, upstream, opts), stop, nil
}

// POP3Addr is the host:port of the gateway's POP3 listener.
func (g *ImapcGateway) POP3Addr() string { return g.pop3Addr }

// PID is the process id of the instance's master process; its other
// processes run in its process group (the same id).
func (g *ImapcGateway) PID() int { return g.cmd.Process.Pid }

// ConfigPath is the instance's dovecot.conf.
func (g *ImapcGateway) ConfigPath() string { return g.confPath }

// LogPath is the instance's log file.
func (g *ImapcGateway) LogPath() string { return g.logPath }

// run starts the master in the foreground and waits for the POP3 greeting.
func (g *ImapcGateway) run() error {
	m, err := startMaster(g.bin.dovecot, g.confPath, g.dir, listener{g.pop3Addr, "+OK"})
	if err != nil {
		return err
	}
	g.master = m
	g.t.Cleanup(g.stop)
	return nil
}

// stop stops the master.
func (g *ImapcGateway) stop() { g.master.stop(g.t.Logf) }

func (g *ImapcGateway) readLog() string {
	var b strings.Builder
	for _, p := range []string{filepath.Join(g.dir, "dovecot.stderr"), g.logPath} {
		data, _ := os.ReadFile(p)
		b.Write(data)
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

type imapcConfig struct {
	instanceName     string
	dir              string
	upHost, upPort   string
	pop3Port         int
	mailUID, mailGID int
	extra            string
}

// renderImapc returns a self-contained dovecot.conf for the imapc gateway.
func renderImapc(c imapcConfig) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by popbridge's dovecottest: Dovecot's imapc POP3 gateway; do not edit.")
	w("instance_name = %s", c.instanceName)
	w("base_dir = %s", filepath.Join(c.dir, "run"))
	w("state_dir = %s", filepath.Join(c.dir, "state"))
	w("log_path = %s", filepath.Join(c.dir, "dovecot.log"))
	w("protocols = pop3")
	w("listen = 127.0.0.1")
	w("ssl = no")
	w("disable_plaintext_auth = no")
	w("auth_mechanisms = plain login")
	w("auth_username_format = %%u")
	w("mail_location = imapc:~/imapc")
	w("mail_uid = %d", c.mailUID)
	w("mail_gid = %d", c.mailGID)
	w("first_valid_uid = %d", c.mailUID)
	w("last_valid_uid = %d", c.mailUID)
	w("first_valid_gid = %d", c.mailGID)
	w("last_valid_gid = %d", c.mailGID)
	w("mail_max_userip_connections = 1000")
	w("imapc_host = %s", c.upHost)
	w("imapc_port = %s", c.upPort)
	w("imapc_features = rfc822.size")
	w("pop3_uidl_format = %%08Xu%%08Xv")
	w("pop3_no_flag_updates = yes")
	w("passdb {")
	w("  driver = imap")
	w("  args = host=%s port=%s", c.upHost, c.upPort)
	w("  default_fields = userdb_imapc_user=%%u userdb_imapc_password=%%w")
	w("}")
	w("userdb {")
	w("  driver = static")
	w("  args = uid=%d gid=%d home=%s/%%Mu", c.mailUID, c.mailGID, filepath.Join(c.dir, "home"))
	w("}")
	w("service pop3-login {")
	w("  inet_listener pop3 {")
	w("    address = 127.0.0.1")
	w("    port = %d", c.pop3Port)
	w("  }")
	w("  inet_listener pop3s {")
	w("    port = 0")
	w("  }")
	w("}")
	if c.extra != "" {
		w("%s", c.extra)
	}
	return b.String()
}
