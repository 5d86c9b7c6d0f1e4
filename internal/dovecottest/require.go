package dovecottest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"

	"github.com/popbridge/popbridge/internal/testtb"
)

// MailUser is the system user that owns the mail store of every instance.
// Start creates it (useradd --system) when it does not exist yet.
const MailUser = "popbridge-mail"

// installHint tells a developer how to get the dependencies of these tests.
const installHint = "install Dovecot and the POP3 clients as root " +
	"(apt-get install dovecot-imapd dovecot-pop3d fetchmail getmail6 mpop curl python3) " +
	"or run the whole suite with: sudo bash .ci/run"

// InCI reports whether the tests run in CI (environment CI=true), where a
// missing dependency must fail a test instead of skipping it.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// SkipOrFail skips the test with the reason and an installation hint, or
// fails it when running in CI.
func SkipOrFail(t testtb.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: refusing to skip)", msg)
	}
	t.Skipf("%s; %s", msg, installHint)
}

// RequireTool returns the path of an executable found in PATH, or skips (or
// in CI fails) the test when it is missing.
func RequireTool(t testtb.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, "%s not found in PATH", name)
	}
	return p
}

// binaries holds the paths of the Dovecot programs.
type binaries struct {
	dovecot, doveconf, doveadm string
}

// requireDovecot checks for the Dovecot programs, root, and the mail user.
func requireDovecot(t testtb.TB) (binaries, ids) {
	t.Helper()
	var b binaries
	b.dovecot = RequireTool(t, "dovecot")
	b.doveconf = RequireTool(t, "doveconf")
	b.doveadm = RequireTool(t, "doveadm")
	if os.Geteuid() != 0 {
		SkipOrFail(t, "Dovecot tests need root (they run a private dovecot that switches to user %s)", MailUser)
	}
	id, err := mailUser()
	if err != nil {
		t.Fatalf("dovecottest: mail user: %v", err)
	}
	return b, id
}

// ids are the numeric user and group ids of MailUser.
type ids struct {
	uid, gid int
}

var (
	mailUserOnce sync.Once
	mailUserIDs  ids
	mailUserErr  error
)

// mailUser looks up MailUser, creating it first if it does not exist.
func mailUser() (ids, error) {
	mailUserOnce.Do(func() {
		u, err := user.Lookup(MailUser)
		if err != nil {
			var unknown user.UnknownUserError
			if !errors.As(err, &unknown) {
				mailUserErr = err
				return
			}
			out, cerr := exec.Command("useradd", "--system", "--no-create-home",
				"--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
			// Another test process may have created it concurrently: look again.
			u, err = user.Lookup(MailUser)
			if err != nil {
				mailUserErr = fmt.Errorf("useradd %s: %v: %s", MailUser, cerr, out)
				return
			}
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err := errors.Join(err1, err2); err != nil {
			mailUserErr = err
			return
		}
		mailUserIDs = ids{uid, gid}
	})
	return mailUserIDs, mailUserErr
}
