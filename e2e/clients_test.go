package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

// popClient drives one real POP3 client program: it downloads every message
// of a mailbox, leaving them on the server, and returns what the program
// stored, normalised back to the octets it received where the program
// changes them in a documented way.
type popClient struct {
	name string
	tool string // the executable it needs
	// lf is set for clients that store messages with LF line endings: the
	// expected octets are compared with CRLF turned into LF.
	lf bool
	// ordered is set when the result is in message-number order; otherwise
	// it is matched against the expected messages as a set.
	ordered bool
	// download fetches all n messages from the POP3 server at addr.
	download func(t *testing.T, addr, user, pass string, n int) [][]byte
	// mangles names corpus messages the client itself is known to damage,
	// with the reason; only their header block is compared.
	mangles map[string]string
}

// popClients are the real clients the tests drive.
var popClients = []popClient{
	{name: "curl", tool: "curl", ordered: true, download: curlDownload},
	{name: "poplib", tool: "python3", ordered: true, download: poplibDownload},
	{name: "fetchmail", tool: "fetchmail", lf: true, ordered: true, download: fetchmailDownload,
		mangles: map[string]string{"long-line": "fetchmail 6.4 damages lines longer than its 8 KB " +
			"buffer on MDA delivery (inserts a NUL, a stray byte and a LF at each buffer boundary); " +
			"seen with Dovecot's own POP3 too",
			"bare-cr": "fetchmail drops a bare CR on MDA delivery; seen with Dovecot's own POP3 too"}},
	{name: "getmail", tool: "getmail", lf: true, download: getmailDownload,
		mangles: map[string]string{"bare-cr": "getmail6 stores a bare CR as a line end (LF); " +
			"seen with Dovecot's own POP3 too"}},
	{name: "mpop", tool: "mpop", lf: true, download: mpopDownload},
}

// run runs a client program with a deadline and fails the test on error.
func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := runErr(cmd); err != nil {
		t.Fatal(err)
	}
}

// runErr runs a client program with a deadline; the error includes the
// program's output.
func runErr(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %v", cmd.Args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
		}
		return nil
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: timed out\n%s", strings.Join(cmd.Args, " "), out.Bytes())
	}
}

// curlDownload fetches each message with curl pop3://HOST:PORT/N, which
// writes exactly the octets of the message.
func curlDownload(t *testing.T, addr, user, pass string, n int) [][]byte {
	dir := t.TempDir()
	msgs := make([][]byte, n)
	for i := 1; i <= n; i++ {
		file := filepath.Join(dir, strconv.Itoa(i))
		run(t, exec.Command("curl", "--silent", "--show-error", "--max-time", "60",
			"--user", user+":"+pass, "--output", file, fmt.Sprintf("pop3://%s/%d", addr, i)))
		msgs[i-1] = readFile(t, file)
	}
	return msgs
}

// poplibScript downloads every message with Python's poplib and writes
// each as the list of lines poplib returns, joined with CRLF.
const poplibScript = `
import os, poplib, sys
poplib._MAXLINE = 1 << 20  # the default, 2048, refuses the 100 KB line
addr, user, password, out = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=60)
p.user(user)
p.pass_(password)
count, _ = p.stat()
for i in range(1, count + 1):
    _, lines, _ = p.retr(i)
    with open(os.path.join(out, "%04d" % i), "wb") as f:
        f.write(b"".join(line + b"\r\n" for line in lines))
p.quit()
`

func poplibDownload(t *testing.T, addr, user, pass string, n int) [][]byte {
	dir := t.TempDir()
	run(t, exec.Command("python3", "-c", poplibScript, addr, user, pass, dir))
	return readDir(t, dir)
}

// fetchmailDownload runs fetchmail with an MDA that stores each message in
// a numbered file. fetchmail hands the MDA LF line endings and prepends a
// Received header, which is removed here.
func fetchmailDownload(t *testing.T, addr, user, pass string, n int) [][]byte {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	mkdir(t, out)
	mda := filepath.Join(dir, "mda.sh")
	writeFile(t, mda, 0o700, `#!/bin/sh
# Store the message on standard input in the next numbered file.
set -e
n=$(ls "$1" | wc -l)
cat > "$1/$(printf %04d "$n")"
`)
	host, port, _ := strings.Cut(addr, ":")
	rc := filepath.Join(dir, "fetchmailrc")
	writeFile(t, rc, 0o600, fmt.Sprintf(`set no bouncemail
set no softbounce
poll %s service %s protocol pop3 auth password
  user %q there with password %q is "root" here
  options keep fetchall no rewrite sslproto ''
  mda "/bin/sh %s %s"
`, host, port, user, pass, mda, out))
	cmd := exec.Command("fetchmail", "-f", rc, "--idfile", filepath.Join(dir, "ids"),
		"--nodetach", "--silent", "--nosoftbounce", "--nobounce")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	run(t, cmd)
	msgs := readDir(t, out)
	for i, m := range msgs {
		msgs[i] = receivedHeader.ReplaceAll(m, nil)
	}
	return msgs
}

// receivedHeader matches the Received header fetchmail prepends.
var receivedHeader = regexp.MustCompile(`\AReceived: [^\n]*\n(?:[ \t][^\n]*\n)*`)

// getmailDownload runs getmail6 (SimplePOP3Retriever, Maildir destination).
// getmail refuses to deliver as root, so it runs as the mail user, in a
// directory that user owns.
//
// getmail 6.18 has a race in its delivery: it forks the delivering child
// before installing its SIGCHLD handler, and waits on a condition without a
// predicate, so a child that finishes quickly can go unnoticed; the parent
// then gives up after its timeout with "waiting child pid N timed out" (seen
// with Dovecot's own POP3 as well, about one run in ten under load). The
// timeout is lowered to 10 s and the whole download retried from scratch,
// up to six times (under heavy load three were seen to lose the race).
func getmailDownload(t *testing.T, addr, user, pass string, n int) [][]byte {
	dovecottest.RequireTool(t, "runuser")
	for attempt := 1; ; attempt++ {
		msgs, err := getmailOnce(t, addr, user, pass)
		if err == nil {
			return msgs
		}
		if attempt < 6 && strings.Contains(err.Error(), "waiting child pid") {
			t.Logf("getmail lost track of its delivery child (its race); retrying: %v", err)
			continue
		}
		t.Fatal(err)
	}
}

func getmailOnce(t *testing.T, addr, user, pass string) ([][]byte, error) {
	dir := userDir(t)
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		mkdir(t, filepath.Join(maildir, sub))
	}
	host, port, _ := strings.Cut(addr, ":")
	rc := filepath.Join(dir, "getmailrc")
	writeFile(t, rc, 0o600, fmt.Sprintf(`[retriever]
type = SimplePOP3Retriever
server = %s
port = %s
username = %s
password = %s
timeout = 10

[destination]
type = Maildir
path = %s/

[options]
read_all = true
delete = false
delivered_to = false
received = false
verbose = 0
`, host, port, user, pass, maildir))
	chownToMailUser(t, dir)
	if err := runErr(exec.Command("runuser", "-u", dovecottest.MailUser, "--",
		"getmail", "--getmaildir="+dir, "--rcfile="+rc)); err != nil {
		return nil, err
	}
	return readDir(t, filepath.Join(maildir, "new")), nil
}

// mpopDownload runs mpop with Maildir delivery and no Received header.
func mpopDownload(t *testing.T, addr, user, pass string, n int) [][]byte {
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		mkdir(t, filepath.Join(maildir, sub))
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("mpop", "--host="+host, "--port="+port, "--tls=off", "--auth=user",
		"--user="+user, "--passwordeval=cat "+writePassword(t, dir, pass),
		"--keep=on", "--only-new=off", "--received-header=off",
		"--delivery=maildir,"+maildir, "--uidls-file="+filepath.Join(dir, "uidls"), "--quiet")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	run(t, cmd)
	return readDir(t, filepath.Join(maildir, "new"))
}

// writePassword stores a password in a private file and returns its path.
func writePassword(t *testing.T, dir, pass string) string {
	p := filepath.Join(dir, "password")
	writeFile(t, p, 0o600, pass)
	return p
}

// userDir returns a temporary directory owned by the mail user, whose
// parents it can traverse.
func userDir(t *testing.T) string {
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	chownToMailUser(t, dir)
	return dir
}

// chownToMailUser gives a directory tree to the mail user.
func chownToMailUser(t *testing.T, dir string) {
	out, err := exec.Command("chown", "-R", dovecottest.MailUser+":", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
}

func mkdir(t *testing.T, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, mode os.FileMode, text string) {
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readDir returns the contents of the files in dir, in name order.
func readDir(t *testing.T, dir string) [][]byte {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	msgs := make([][]byte, len(names))
	for i, name := range names {
		msgs[i] = readFile(t, filepath.Join(dir, name))
	}
	return msgs
}
