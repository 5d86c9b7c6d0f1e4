package upstreams

import (
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/popbridge/popbridge/internal/testtb"
)

// courierScript runs inside the instance's private mount namespace (the
// process is started with CLONE_NEWNS; nothing it mounts is seen
// outside, and everything is gone when its last process exits). Courier
// compiles in its paths: the authdaemon's configuration and userdb in
// /etc/courier, its socket in /run/courier/authdaemon, its modules in
// /usr/lib/courier-authlib, makeuserdb's helper in /usr/lib/courier. None
// of those exists on the host, so read-only overlays put the unpacked tree
// over /usr and the instance's etc over /etc, and a tmpfs covers /run.
// authdaemond runs in the background, couriertcpd in the foreground
// (imaplogin checks the password with authdaemond, switches to the user
// userdb names and runs imapd on the user's Maildir).
const courierScript = `set -eu
mount --make-rprivate /
mount -t overlay popbridge-courier-usr -o "lowerdir=$COURIER_ROOT/usr:/usr" /usr
/usr/sbin/makeuserdb -f "$COURIER_DIR/etc/courier/userdb"
mount -t overlay popbridge-courier-etc -o "lowerdir=$COURIER_DIR/etc:/etc" /etc
mount -t tmpfs -o mode=0755 popbridge-courier-run /run
mkdir -p /run/courier/authdaemon
/usr/lib/courier/courier-authlib/authdaemond &
i=0
while [ ! -S /run/courier/authdaemon/socket ]; do
	i=$((i + 1))
	if [ $i -gt 500 ]; then echo "authdaemond did not start" >&2; exit 1; fi
	sleep 0.01
done
exec /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=100 -maxperip=100 \
	-nodnslookup -noidentlookup "$COURIER_PORT" \
	/usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir
`

// courierEnv is imapd's environment: Debian's /etc/courier/imapd
// defaults, without TLS (the tests speak plaintext on loopback).
var courierEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"IMAP_CAPABILITY=IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE",
	"IMAP_KEYWORDS=1",
	"IMAP_ACL=1",
	"IMAP_STARTTLS=NO",
	"IMAP_TLS_REQUIRED=0",
	"IMAP_IDLE_TIMEOUT=60",
	"IMAP_MAILBOX_SANITY_CHECK=1",
	"IMAP_USELOCKS=1",
	"IMAP_UMASK=022",
	"IMAP_TRASHFOLDERNAME=Trash",
	"IMAP_EMPTYTRASH=",
	"IMAP_MOVE_EXPUNGE_TO_TRASH=0",
	"IMAP_DISABLETHREADSORT=0",
	"IMAP_CHECK_ALL_FOLDERS=0",
	"IMAP_OBSOLETE_CLIENT=0",
	"IMAP_ENHANCEDIDLE=0",
}

// StartCourier starts Courier-IMAP (couriertcpd, imaplogin, imapd, with
// authdaemond and its userdb module) from the tree .ci/install-servers
// unpacked, on a free loopback port, in a private mount namespace (see
// courierScript). Users are userdb entries with {SHA512} passwords,
// switched to the mail store's user; mailboxes are Maildirs under the
// instance's directory. Courier's folders live under INBOX (namespace
// "INBOX." with "." as separator): INBOX.Trash and INBOX.Archive exist
// from the start (Server.Trash, Server.Archive).
func StartCourier(t testtb.TB, users ...User) *Server {
	t.Helper()
	root := filepath.Join(serversDir(), "courier")
	for _, b := range []string{"usr/sbin/couriertcpd", "usr/bin/imapd", "usr/lib/courier/courier/imaplogin", "usr/lib/courier/courier-authlib/authdaemond"} {
		if _, err := os.Stat(filepath.Join(root, b)); err != nil {
			skipOrFail(t, "Courier-IMAP not unpacked in %s", root)
		}
	}
	requireRoot(t, "courier")
	for _, tool := range []string{"mount", "perl"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "courier: %s not found", tool)
		}
	}
	uid, gid := mailIDs(t)
	dir, err := os.MkdirTemp("", "popbridge-courier")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "courier", dir: dir, users: map[string]string{}, logPath: filepath.Join(dir, "courier.log"),
		Trash: "INBOX.Trash", Archive: "INBOX.Archive"}
	if b, err := os.ReadFile(filepath.Join(root, ".popbridge-version")); err == nil {
		s.Version = "Courier-IMAP " + strings.TrimSpace(string(b))
	}
	etc := filepath.Join(dir, "etc", "courier")
	mail := filepath.Join(dir, "mail")
	for _, d := range []string{etc, mail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	authrc := `# Written by popbridge's tests (internal/upstreams).
authmodulelist="authuserdb"
daemons=4
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
`
	if err := os.WriteFile(filepath.Join(etc, "authdaemonrc"), []byte(authrc), 0o644); err != nil {
		t.Fatal(err)
	}
	var userdb strings.Builder
	for _, u := range users {
		home := filepath.Join(mail, u.Name)
		maildir := filepath.Join(home, "Maildir")
		var paths []string
		for _, folder := range []string{"", ".Trash", ".Archive"} {
			fd := filepath.Join(maildir, folder)
			for _, sub := range []string{"cur", "new", "tmp"} {
				if err := os.MkdirAll(filepath.Join(fd, sub), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if folder != "" {
				if err := os.WriteFile(filepath.Join(fd, "maildirfolder"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.Chmod(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := filepath.WalkDir(home, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			paths = append(paths, p)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		sum := sha512.Sum512([]byte(u.Password))
		fmt.Fprintf(&userdb, "%s\tuid=%d|gid=%d|home=%s|mail=%s|systempw={SHA512}%s\n",
			u.Name, uid, gid, home, maildir, base64.StdEncoding.EncodeToString(sum[:]))
		s.users[u.Name] = u.Password
	}
	// makeuserdb refuses a userdb with group or world permissions.
	if err := os.WriteFile(filepath.Join(etc, "userdb"), []byte(userdb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command("/bin/sh", "-c", courierScript)
		cmd.Env = append(courierEnv, "COURIER_ROOT="+root, "COURIER_DIR="+dir, "COURIER_PORT="+strconv.Itoa(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		lastErr = s.start(t, cmd)
		if lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting courier: %v", lastErr)
	return nil
}
