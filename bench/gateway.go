package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
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
func startProcGateway(bin, dir, upstream string) (*procGateway, error) {
	return startProcGatewayWith(bin, nil, dir, upstream, capsTOML)
}

// capsTOML raises the connection caps: every benchmark session comes from
// 127.0.0.1 and up to 200 are one user's.
const capsTOML = `
[limits]
max_connections = 5000
max_connections_per_ip = 5000
max_sessions_per_user = 1000
`

// benchLimits are the same caps for a gateway wired by the benchmark.
var benchLimits = pop3front.Limits{MaxConnections: 5000, MaxConnectionsPerIP: 5000, MaxSessionsPerUser: 1000}

// errConfigKeys reports that ./proxy's configuration has no connection-cap
// keys (yet): the caller falls back to the benchmark's own gateway process.
var errConfigKeys = errors.New("./proxy does not accept the [limits] connection-cap keys")

func startProcGatewayWith(bin string, argsFor func(listen string) []string, dir, upstream, limitsTOML string) (*procGateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pprofAddr := ""
	if gatewayPprof && argsFor == nil {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		limitsTOML += fmt.Sprintf("\n[pprof]\nlisten = %q\n", pprofAddr)
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
`, addr, upstream, limitsTOML)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	errf, err := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := []string{"-config", conf}
	if argsFor != nil {
		args = argsFor(addr)
	}
	cmd := exec.Command(bin, args...)
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
			if strings.Contains(string(log), "max_connections") {
				return nil, errConfigKeys
			}
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

// inprocGateway wires pop3front and imapback in this process, the way
// ./proxy does, without config files or metrics.
type inprocGateway struct {
	srv *pop3front.Server
	ln  net.Listener
}

func startInprocGateway(upstream string) (*inprocGateway, error) {
	return startInprocGatewayOn("127.0.0.1:0", upstream)
}

func startInprocGatewayOn(listen, upstream string) (*inprocGateway, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := imapback.New(imapback.Config{
		Address:  upstream,
		Security: imapback.SecurityNone,
		Logger:   log,
		Policy:   imapback.Policy{Delete: imapback.DeleteKeep, Seen: imapback.SeenNever},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	g := &inprocGateway{srv: &pop3front.Server{Backend: b, Logger: log, Limits: benchLimits}, ln: ln}
	go g.srv.Serve(ln)
	return g, nil
}

func (g *inprocGateway) Addr() string { return g.ln.Addr().String() }
func (g *inprocGateway) PID() int     { return 0 }
func (g *inprocGateway) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.srv.Shutdown(ctx)
	g.srv.Close()
}

// serveGateway is the benchmark binary re-executed as a gateway process
// (bench -serve-gateway LISTEN UPSTREAM): pop3front and imapback wired as
// ./proxy wires them, minus metrics. Used when ./proxy's configuration
// cannot raise the connection caps.
func serveGateway(listen, upstream string) error {
	g, err := startInprocGatewayOn(listen, upstream)
	if err != nil {
		return err
	}
	// PBBENCH_CPUPROFILE=FILE profiles the gateway process (for work on
	// the hot paths; not used by the benchmark itself).
	if path := os.Getenv("PBBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	g.Close()
	return nil
}
