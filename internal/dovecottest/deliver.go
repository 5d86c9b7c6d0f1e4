package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Deliver stores msg, byte for byte, as a new message in a mailbox of user,
// the way a local delivery agent does: it writes a file in the Maildir's tmp/
// and renames it into new/. Dovecot assigns UIDs in delivery order when it
// next looks at the mailbox. A mailbox other than INBOX is created first if
// needed.
//
// The bytes on disk are exactly msg; Dovecot normalises some of them when it
// serves the message (see package testmail).
func (d *Dovecot) Deliver(user, mailbox string, msg []byte) {
	d.t.Helper()
	if err := d.deliver(user, mailbox, msg); err != nil {
		d.t.Fatalf("dovecottest: deliver to %s/%s: %v", user, mailbox, err)
	}
}

// DeliverAll delivers the messages in order (see Deliver).
func (d *Dovecot) DeliverAll(user, mailbox string, msgs ...[]byte) {
	d.t.Helper()
	for _, m := range msgs {
		d.Deliver(user, mailbox, m)
	}
}

// CreateMailbox creates a mailbox of user (doveadm mailbox create).
func (d *Dovecot) CreateMailbox(user, mailbox string) {
	d.t.Helper()
	d.Doveadm("mailbox", "create", "-u", user, mailbox)
}

func (d *Dovecot) deliver(user, mailbox string, msg []byte) error {
	d.Password(user) // fails the test for an unknown user
	dir, err := d.maildir(user, mailbox)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); os.IsNotExist(err) {
		if strings.EqualFold(mailbox, "INBOX") {
			if err := d.mkdirs(filepath.Dir(dir), dir, filepath.Join(dir, "cur"),
				filepath.Join(dir, "new"), filepath.Join(dir, "tmp")); err != nil {
				return err
			}
		} else if _, err := d.doveadm("mailbox", "create", "-u", user, mailbox); err != nil {
			return err
		}
	}
	name := uniqueName()
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, d.mail.uid, d.mail.gid); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "new", name))
}

// maildir returns the directory of a mailbox in Dovecot's default Maildir++
// layout: INBOX is ~/Maildir, "A/B" is ~/Maildir/.A.B.
func (d *Dovecot) maildir(user, mailbox string) (string, error) {
	root := filepath.Join(d.Home(user), "Maildir")
	if strings.EqualFold(mailbox, "INBOX") {
		return root, nil
	}
	if mailbox == "" || strings.ContainsAny(mailbox, ".\x00") || strings.HasPrefix(mailbox, "/") {
		return "", fmt.Errorf("mailbox name %q not supported by Deliver", mailbox)
	}
	return filepath.Join(root, "."+strings.ReplaceAll(mailbox, "/", ".")), nil
}

// mkdirs creates directories owned by the mail user.
func (d *Dovecot) mkdirs(dirs ...string) error {
	for _, p := range dirs {
		if err := os.Mkdir(p, 0o700); err != nil {
			if os.IsExist(err) {
				continue
			}
			return err
		}
		if err := os.Chown(p, d.mail.uid, d.mail.gid); err != nil {
			return err
		}
	}
	return nil
}

var (
	nameMu   sync.Mutex
	lastName time.Time
	nameSeq  int
	hostname = func() string {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return "localhost"
		}
		return strings.NewReplacer("/", "_", ":", "_").Replace(h)
	}()
)

// uniqueName returns a Maildir file name never used before by this process.
// Dovecot orders new messages by the time stamp in the name, so the stamp is
// kept strictly increasing (to the microsecond) across calls.
func uniqueName() string {
	nameMu.Lock()
	defer nameMu.Unlock()
	now := time.Now().Truncate(time.Microsecond)
	if !now.After(lastName) {
		now = lastName.Add(time.Microsecond)
	}
	lastName = now
	nameSeq++
	return fmt.Sprintf("%d.M%06dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), nameSeq, hostname)
}
