package nothinglost

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/faultproxy"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// gatewayBinary builds ./proxy once per test run into dir.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binDir, binErr = os.MkdirTemp("", "popbridge-kill")
		if binErr != nil {
			return
		}
		bin := filepath.Join(binDir, "popbridge")
		cmd := exec.Command("go", "build", "-o", bin, "./proxy")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./proxy: %v\n%s", err, out)
			return
		}
		binPath = bin
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	return binPath
}

// proc is a gateway process.
type proc struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startProc runs the gateway binary in front of upstream with policy
// expunge and waits for its greeting.
func startProc(t *testing.T, bin, upstream string) *proc {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "popbridge.toml")
	text := fmt.Sprintf("[pop3]\nlisten = %q\n\n[upstream]\naddress = %q\nsecurity = \"none\"\n\n"+
		"[policy]\ndelete = \"expunge\"\nseen = \"quit\"\n\n[log]\nlevel = \"debug\"\n", addr, upstream)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{addr: addr, cmd: cmd, done: make(chan struct{}), log: logf.Name()}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			g, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(g, "+OK") {
				return p
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("gateway exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not greet: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// TestDGatewayKilled: the gateway process is SIGKILLed after DELEs, in
// the middle of a 5 MB RETR, and in the middle of the QUIT update (UID
// STORE done, UID EXPUNGE held in the fault proxy). Nothing outside the
// DELE set ever changes, and a restarted gateway serves the mailbox.
func TestDGatewayKilled(t *testing.T) {
	heavy(t)
	bin := gatewayBinary(t)
	d := dovecottest.Start(t, dovecottest.User{Name: dUser, Password: dPass})
	msgs := append(testmail.Ordinary(3), testmail.Big())
	for _, m := range msgs {
		d.Deliver(dUser, "INBOX", m.Raw)
	}
	fp, err := faultproxy.Start(d.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	before := d.Snapshot(t, dUser, "INBOX")

	t.Run("after DELEs", func(t *testing.T) {
		g := startProc(t, bin, fp.Addr())
		p := dial(t, g.addr)
		must(t, p.Login(dUser, dPass))
		for _, c := range []string{"DELE 1", "DELE 2", "DELE 4"} {
			if _, err := p.OK(c); err != nil {
				t.Fatal(err)
			}
		}
		g.kill()
		checkOracle(t, oracle.CheckUnchanged(before, d.Snapshot(t, dUser, "INBOX")))
	})
	t.Run("during RETR", func(t *testing.T) {
		g := startProc(t, bin, fp.Addr())
		p := dial(t, g.addr)
		must(t, p.Login(dUser, dPass))
		must(t, p.Send("DELE 1\r\nRETR 4\r\nDELE 4\r\nQUIT\r\n"))
		p.Line()
		p.Line()
		p.Line() // first line of the message
		g.kill()
		rest, _ := readAll(p)
		if strings.Contains(rest, "\r\n.\r\n") {
			t.Fatal("terminator after SIGKILL")
		}
		checkOracle(t, oracle.CheckUnchanged(before, d.Snapshot(t, dUser, "INBOX")))
	})
	t.Run("during the QUIT update", func(t *testing.T) {
		g := startProc(t, bin, fp.Addr())
		fp.SetPlanner(faultproxy.Only(fp.Accepted(), faultproxy.Plan{Faults: []faultproxy.Fault{
			{Dir: faultproxy.Up, Action: faultproxy.Stall, Match: []byte("UID EXPUNGE")},
		}}))
		k := fp.Accepted()
		p := dial(t, g.addr)
		must(t, p.Login(dUser, dPass))
		if _, err := p.Retr(3); err != nil {
			t.Fatal(err)
		}
		must(t, p.Send("DELE 1\r\nDELE 2\r\nQUIT\r\n"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for !fp.Conn(k).Fired(faultproxy.Up) {
			if ctx.Err() != nil {
				t.Fatal("the update never reached UID EXPUNGE")
			}
			time.Sleep(5 * time.Millisecond)
		}
		g.kill()
		fp.Conn(k).Cut()
		after := d.Snapshot(t, dUser, "INBOX")
		checkOracle(t, oracle.Check(before, after, oracle.Rules{Policy: "expunge", Deleted: []uint32{1, 2}, Retrieved: []uint32{3}}))

		// A restarted gateway serves what is left: 1 and 2 are marked
		// \Deleted (hidden), 3 and 4 remain.
		g = startProc(t, bin, fp.Addr())
		p = dial(t, g.addr)
		must(t, p.Login(dUser, dPass))
		uidl, err := p.UIDL()
		must(t, err)
		if len(uidl) != 2 || !strings.HasPrefix(uidl[0], "00000003") {
			t.Fatalf("after restart: UIDL %q", uidl)
		}
		if l, _ := p.Quit(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("after restart: QUIT %q, want prefix %q", l, "+OK")
		}
	})
}
