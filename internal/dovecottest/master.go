package dovecottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// master is a dovecot master process running in the foreground, in its
// own process group, for one instance (the test upstream or an imapc
// gateway).
type master struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// listener is an address and the greeting it must answer with.
type listener struct{ addr, greeting string }

// startMaster runs `dovecot -c confPath -F` with its output appended to
// dir/dovecot.stderr, and waits until every listener greets.
func startMaster(bin, confPath, dir string, listeners ...listener) (*master, error) {
	stderr, err := os.OpenFile(filepath.Join(dir, "dovecot.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd := exec.Command(bin, "-c", confPath, "-F")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// Its own process group, so that stragglers can be killed together; and
	// SIGTERM if the test process dies without cleaning up (a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &master{cmd: cmd, exited: make(chan struct{})}
	go func() { m.waitErr = cmd.Wait(); close(m.exited) }()

	deadline := time.Now().Add(15 * time.Second)
	for _, l := range listeners {
		for {
			err := greets(l.addr, l.greeting)
			if err == nil {
				break
			}
			select {
			case <-m.exited:
				return nil, fmt.Errorf("dovecot exited: %v", m.waitErr)
			default:
			}
			if time.Now().After(deadline) {
				m.stop(func(string, ...any) {})
				return nil, fmt.Errorf("%s did not greet in time: %v", l.addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return m, nil
}

// stop terminates the master (which stops its children), then kills the
// whole process group if anything is left. It is safe to call twice.
func (m *master) stop(logf func(format string, args ...any)) {
	pgid := m.cmd.Process.Pid
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		logf("dovecottest: dovecot did not stop on SIGTERM; killing its process group")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-m.exited
	}
	// Children that outlived the master (they should not) go too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
