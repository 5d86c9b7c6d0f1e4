package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The relay floor: a byte relay in front of Dovecot's own POP3, as a
// separate process, measured in the same rounds as the gateway. It reads
// every octet into user space and writes it out again through a 128 KiB
// buffer and does nothing else (no splice, no parsing): the least CPU per
// GB any POP3 gateway process pays on this machine to move the same
// mail, whatever it does with it. Its cpu-gw row is the floor under the
// gateway's.

// relayEnv names the upstream when the benchmark binary runs as the relay.
const relayEnv = "POPBRIDGE_BENCH_RELAY_TO"

const relayBuffer = 128 << 10

type relayProc struct {
	addr string
	cmd  *exec.Cmd
}

func (r *relayProc) Addr() string { return r.addr }
func (r *relayProc) PID() int     { return r.cmd.Process.Pid }
func (r *relayProc) Close() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// startRelay runs this binary again as a relay to target and returns it
// once it listens.
func startRelay(target string) (*relayProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayEnv+"="+target)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &relayProc{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case r.addr = <-line:
	case <-time.After(10 * time.Second):
	}
	if r.addr == "" {
		r.Close()
		return nil, fmt.Errorf("relay did not start")
	}
	return r, nil
}

// runRelay is the relay process: it listens on a loopback port, prints
// it, and copies each connection to and from target until killed.
func runRelay(target string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	return serveRelay(ln, target)
}

// serveRelay relays every connection ln accepts to target.
func serveRelay(ln net.Listener, target string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			go relayCopy(u, c)
			relayCopy(c, u)
		}()
	}
}

// relayCopy copies src to dst through its own buffer: plain reads and
// writes, never splice(2), which would move the bytes without the copy
// into user space that any gateway must make.
func relayCopy(dst, src net.Conn) {
	buf := make([]byte, relayBuffer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// relayMain runs the relay when this binary was started as one.
func relayMain() bool {
	target := os.Getenv(relayEnv)
	if target == "" {
		return false
	}
	if err := runRelay(target); err != nil && err != io.EOF {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	return true
}
