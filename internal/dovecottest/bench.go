package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/popbridge/popbridge/internal/testtb"
)

// BenchHost is what StartForBench needs from a program that is not a test
// (the benchmark command): somewhere to log.
type BenchHost interface {
	Logf(format string, args ...any)
}

// benchFatal carries a Fatalf of the harness out of StartForBench and of
// later calls (Deliver, Doveadm) as a panic the caller can recover.
type benchFatal struct{ msg string }

func (f benchFatal) Error() string { return "dovecottest: " + f.msg }

// benchTB adapts a BenchHost to the testtb.TB the harness is written
// against.
type benchTB struct {
	h BenchHost

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

var _ testtb.TB = (*benchTB)(nil)

func (b *benchTB) Helper()                           {}
func (b *benchTB) Name() string                      { return "bench" }
func (b *benchTB) Logf(format string, args ...any)   { b.h.Logf(format, args...) }
func (b *benchTB) Log(args ...any)                   { b.h.Logf("%s", fmt.Sprint(args...)) }
func (b *benchTB) Errorf(format string, args ...any) { b.fail(); b.h.Logf(format, args...) }
func (b *benchTB) Fatalf(format string, args ...any) {
	b.fail()
	panic(benchFatal{fmt.Sprintf(format, args...)})
}
func (b *benchTB) Fatal(args ...any)                { b.fail(); panic(benchFatal{fmt.Sprint(args...)}) }
func (b *benchTB) Skipf(format string, args ...any) { panic(benchFatal{fmt.Sprintf(format, args...)}) }
func (b *benchTB) Skip(args ...any)                 { panic(benchFatal{fmt.Sprint(args...)}) }

func (b *benchTB) fail() {
	b.mu.Lock()
	b.failed = true
	b.mu.Unlock()
}

func (b *benchTB) Failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	b.cleanups = append(b.cleanups, f)
	b.mu.Unlock()
}

func (b *benchTB) TempDir() string {
	dir, err := os.MkdirTemp("", "pbbench")
	if err != nil {
		b.Fatalf("%v", err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runCleanups runs the registered cleanups, last first, once.
func (b *benchTB) runCleanups() {
	b.mu.Lock()
	fs := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// StartForBench starts an instance for a program that is not a test, such
// as the benchmark command (go run ./bench). It is StartWith with the
// harness's test failures turned into errors: a failure while starting is
// returned; a failure in a later call on the instance (Deliver, Doveadm)
// panics with an error value, which the caller may recover. stop stops the
// instance and removes its directory; call it on every path.
//
// Unlike Start it never skips: without Dovecot or root it returns an error.
func StartForBench(h BenchHost, opts Options, users ...User) (d *Dovecot, stop func(), err error) {
	tb := &benchTB{h: h}
	stop = tb.runCleanups
	defer func() {
		if v := recover(); v != nil {
			f, ok := v.(benchFatal)
			if !ok {
				panic(v)
			}
			stop()
			d, err = nil, f
		}
	}()
	if os.Geteuid() != 0 {
		return nil, stop, fmt.Errorf("dovecottest: the benchmark's Dovecot needs root (it switches to user %s)", MailUser)
	}
	d = StartWith(tb, opts, users...)
	return d, stop, nil
}

// PID is the process id of the instance's master process. Dovecot's other
// processes run in its process group (the same id); the CPU time of those
// that exited is in the master's cutime and cstime once reaped.
func (d *Dovecot) PID() int { return d.cmd.Process.Pid }

// Dir is the instance's private directory.
func (d *Dovecot) Dir() string { return d.dir }

// MailOwner returns the numeric uid and gid that own the mail store: files
// written into a Maildir directly must be chowned to them.
func (d *Dovecot) MailOwner() (uid, gid int) { return d.mail.uid, d.mail.gid }

// Maildir returns the Maildir directory of a user's mailbox (see Deliver),
// creating INBOX's cur/new/tmp if they do not exist yet. It is meant for
// seeding many messages fast: write files into tmp/, chown them to
// MailOwner, and rename them into new/ or cur/.
func (d *Dovecot) Maildir(user, mailbox string) (string, error) {
	dir, err := d.maildir(user, mailbox)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(mailbox, "INBOX") {
		if err := d.mkdirs(filepath.Dir(dir), dir, filepath.Join(dir, "cur"),
			filepath.Join(dir, "new"), filepath.Join(dir, "tmp")); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// UniqueMaildirName returns a Maildir file name never used before by this
// process, with time stamps increasing across calls (Dovecot assigns UIDs
// to new messages in that order).
func UniqueMaildirName() string { return uniqueName() }
