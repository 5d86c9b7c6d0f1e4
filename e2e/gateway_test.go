package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

// policy is the [policy] section of a gateway configuration.
type policy struct {
	Delete        string // flag | keyword | trash | archive | expunge | keep
	Seen          string // quit | never
	HideRetrieved bool   // hide_retrieved (retrieved_keyword left at its default)
}

// defaultPolicy is the shipped default.
var defaultPolicy = policy{Delete: "flag", Seen: "quit"}

// gateway is a running gateway process.
type gateway struct {
	addr    string // POP3 listener, host:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// startGateway writes a configuration for the gateway in front of d's IMAP
// service, starts the binary, waits until its POP3 listener greets, and
// stops it when the test ends. The test fails if the gateway exits on its
// own, or logs a panic or a data race.
func startGateway(t testing.TB, d *dovecottest.Dovecot, pol policy) *gateway {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		g, err := tryStartGateway(t, bin, dir, d.IMAPAddr(), pol)
		if err == nil {
			return g
		}
		if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			t.Logf("gateway: port clash, retrying: %v", err)
			continue
		}
		t.Fatalf("starting the gateway: %v", err)
	}
}

func tryStartGateway(t testing.TB, bin, dir, imapAddr string, pol policy) (*gateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()

	conf := filepath.Join(dir, "popbridge.toml")
	text := fmt.Sprintf(`# Written by the e2e tests.
[pop3]
listen = %q

[upstream]
address = %q
security = "none"
mailbox = "INBOX"

[policy]
delete = %q
seen = %q
trash = "Trash"
archive = "Archive"
hide_retrieved = %v

[log]
level = "debug"
format = "text"
`, addr, imapAddr, pol.Delete, pol.Seen, pol.HideRetrieved)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "popbridge.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "-config", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that stragglers can be killed together; and
	// SIGTERM if the test process dies without cleaning up (a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gateway{addr: addr, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { g.waitErr = cmd.Wait(); close(g.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := greets(addr)
		if err == nil {
			break
		}
		select {
		case <-g.exited:
			return nil, fmt.Errorf("gateway exited: %v\n%s", g.waitErr, g.log())
		default:
		}
		if time.Now().After(deadline) {
			g.kill()
			return nil, fmt.Errorf("no POP3 greeting on %s: %v\n%s", addr, err, g.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { g.stop(t) })
	return g, nil
}

// stop terminates the gateway and checks how it lived.
func (g *gateway) stop(t testing.TB) {
	select {
	case <-g.exited:
		t.Errorf("the gateway exited during the test: %v", g.waitErr)
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("the gateway did not stop within 15s of SIGTERM")
			g.kill()
		}
	}
	log := g.log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(log, bad) {
			t.Errorf("the gateway's log contains %q", bad)
		}
	}
	if t.Failed() {
		const max = 16 << 10
		if len(log) > max {
			log = "...\n" + log[len(log)-max:]
		}
		t.Logf("gateway log (%s):\n%s", g.logPath, log)
	}
}

// kill kills the gateway's process group and waits for it.
func (g *gateway) kill() {
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}

// log returns what the gateway logged.
func (g *gateway) log() string {
	b, err := os.ReadFile(g.logPath)
	if err != nil {
		return fmt.Sprintf("(reading the log: %v)", err)
	}
	return string(b)
}

// greets dials addr and checks for a +OK greeting.
func greets(addr string) error {
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
	if !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("greeting %q", line)
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}
