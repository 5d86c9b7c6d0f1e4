package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/popbridge/popbridge/daemon"
)

// gateway is a running gateway: a separate process built from ./proxy
// (its RSS and CPU time are then its own), or in this process.
type gateway interface {
	Addr() string
	PID() int // 0 when in-process
	Close()
}

// buildGateway builds ./proxy into dir and returns the binary's path.
func buildGateway(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "popbridge-gateway")
	cmd := exec.Command("go", "build", "-o", bin, "./proxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./proxy: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the benchmark from inside the module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

type procGateway struct {
	addr      string
	pprofAddr string // [pprof] listen, with -profile
	cmd       *exec.Cmd
	exited    chan struct{}
	stderr    *os.File
}

// startProcGateway runs the binary with a configuration pointing at the
// upstream. Policies change nothing upstream (delete keep, seen never), so
// every round sees the same mailboxes.
// capsTOML raises the connection caps: every benchmark session comes from
// 127.0.0.1 and up to 200 are one user's.
const capsTOML = `
[limits]
max_connections = 5000
max_connections_per_ip = 5000
max_sessions_per_user = 1000
`

func startProcGateway(bin, dir, upstream string) (*procGateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pprofAddr, extraTOML := "", capsTOML
	if gatewayPprof {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		extraTOML += fmt.Sprintf("\n[pprof]\nlisten = %q\n", pprofAddr)
	}
	conf := filepath.Join(dir, "gateway.toml")
	cfg := fmt.Sprintf(`# written by go run ./bench
[pop3]
listen = %q

[upstream]
address = %q
security = "none"
mailbox = "INBOX"

[policy]
delete = "keep"
seen = "never"
%s
[log]
level = "warn"
format = "text"
`, addr, upstream, extraTOML)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	errf, err := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", conf)
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		errf.Close()
		return nil, err
	}
	g := &procGateway{addr: addr, pprofAddr: pprofAddr, cmd: cmd, exited: make(chan struct{}), stderr: errf}
	go func() { cmd.Wait(); close(g.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if greetsPOP(addr) == nil {
			return g, nil
		}
		select {
		case <-g.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
			errf.Close()
			return nil, fmt.Errorf("gateway exited at start: %s", lastLines(string(log), 20))
		default:
		}
		if time.Now().After(deadline) {
			g.Close()
			return nil, fmt.Errorf("gateway did not greet on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *procGateway) Addr() string { return g.addr }
func (g *procGateway) PID() int     { return g.cmd.Process.Pid }

func (g *procGateway) Close() {
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		g.cmd.Process.Kill()
		<-g.exited
	}
	g.stderr.Close()
}

func greetsPOP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("greeting %q", l)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// inprocGateway is the daemon's own wiring (package daemon, what ./proxy
// runs) in this process, configured as startProcGateway configures the
// binary.
type inprocGateway struct {
	gw *daemon.Gateway
}

func startInprocGateway(upstream string) (*inprocGateway, error) {
	return startInprocGatewayOn("127.0.0.1:0", upstream)
}

func startInprocGatewayOn(listen, upstream string) (*inprocGateway, error) {
	cfg := daemon.DefaultConfig()
	cfg.POP3.Listen = listen
	cfg.Upstream.Address = upstream
	cfg.Upstream.Security = "none"
	cfg.Upstream.Mailbox = "INBOX"
	cfg.Policy.Delete = "keep"
	cfg.Policy.Seen = "never"
	cfg.Limits.MaxConnections = 5000 // capsTOML
	cfg.Limits.MaxConnectionsPerIP = 5000
	cfg.Limits.MaxSessionsPerUser = 1000
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := daemon.Start(context.Background(), cfg, daemon.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	return &inprocGateway{gw: gw}, nil
}

func (g *inprocGateway) Addr() string { return g.gw.POP3Addr() }
func (g *inprocGateway) PID() int     { return 0 }
func (g *inprocGateway) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.gw.Shutdown(ctx)
	g.gw.Close()
}
