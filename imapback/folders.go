package imapback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// Several folders as one maildrop (Config.Folders).
//
// The maildrop lists the configured folders one after the other, in the
// configured order, each by ascending UID: message numbers are fixed for
// the session (docs/design.md, invariant 5). One upstream connection serves them all:
//
//   - login EXAMINEs each folder in turn and snapshots it, recording its
//     UIDVALIDITY. A folder that does not exist (EXAMINE answers NO
//     without a code or with [NONEXISTENT]) is skipped with a warning: a
//     Junk folder need not exist for every user. If none exists, the
//     login fails as for a missing mailbox (SYS/TEMP);
//   - RETR and TOP of a message in another folder than the one examined
//     last first wait for the prefetches in flight, then EXAMINE its
//     folder (checking that its UIDVALIDITY is unchanged; if not, the
//     session ends with SYS/TEMP). Prefetch batches never cross a folder;
//   - QUIT first SELECTs every folder with something to apply and checks
//     its UIDVALIDITY; a change in any of them applies nothing anywhere
//     (-ERR [SYS/TEMP]). Then it applies the policy folder by folder, by
//     UID, re-SELECTing each (and checking again). Trash and archive move
//     from any folder; a message DELE'd in the trash (archive) folder
//     itself is already where the policy puts it: it is only flagged
//     \Deleted, so it is not listed again and the server's own clean-up
//     removes it.
//
// UIDLs: the first configured folder keeps the scheme's UIDLs unchanged
// (so adding a folder to a single-INBOX setup changes nothing for INBOX).
// Under the dovecot scheme, the other folders' UIDLs get "-" and a tag of
// 8 hex digits of SHA-256 of the folder name appended (25 octets): they
// cannot equal a first-folder UIDL (16 octets), and folders' tags are
// checked distinct at configuration. Under the other schemes (global
// identities), a UIDL already used by an earlier folder is renamed like a
// duplicate within one folder ("-2", "-3", ...).
//
// The listing window (max_messages, max_age) applies to each folder.

// maxFolders bounds Config.Folders.
const maxFolders = 32

// folder is one mailbox of the maildrop.
type folder struct {
	name        string
	tag         string // UIDL suffix, "" for the first folder
	uidValidity uint32 // at login
	missing     bool   // EXAMINE answered "no such mailbox" at login
	count       int    // messages listed
}

// CheckFolders validates a list of folders as New does Config.Folders:
// at most 32, none empty or holding NUL, CR or LF, none twice (INBOX in
// any case counts as INBOX).
func CheckFolders(names []string) error { return checkFolders(names) }

// checkFolders validates Config.Folders.
func checkFolders(names []string) error {
	if len(names) > maxFolders {
		return fmt.Errorf("imapback: folders: at most %d", maxFolders)
	}
	seen := map[string]string{}
	tags := map[string]string{}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "\x00\r\n") {
			return fmt.Errorf("imapback: folder %q: empty or invalid characters", n)
		}
		k := folderKey(n)
		if seen[k] != "" {
			return fmt.Errorf("imapback: folder %q listed twice", n)
		}
		seen[k] = n
		t := folderTag(n)
		if o := tags[t]; o != "" {
			return fmt.Errorf("imapback: folders %q and %q have the same UIDL tag; rename one", o, n)
		}
		tags[t] = n
	}
	return nil
}

// folderKey compares mailbox names: INBOX is case-insensitive (RFC 3501
// section 5.1), other names are not.
func folderKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// folderTag is the UIDL suffix of a folder after the first.
func folderTag(name string) string {
	sum := sha256.Sum256([]byte(folderKey(name)))
	return hex.EncodeToString(sum[:4])
}

// multiFolder reports whether Config.Folders is in use.
func (m *maildrop) multiFolder() bool { return len(m.b.cfg.Folders) > 0 }

// initFolders sets up the session's folders.
func (m *maildrop) initFolders() {
	names := m.b.cfg.Folders
	if len(names) == 0 {
		names = []string{m.b.cfg.Mailbox}
	}
	m.folders = make([]folder, len(names))
	for i, n := range names {
		m.folders[i] = folder{name: n}
		if i > 0 {
			m.folders[i].tag = folderTag(n)
		}
	}
	m.cur = -1
}

// examine EXAMINEs folder fi at login. It returns nil, nil for a folder
// that does not exist (multi-folder only: it is skipped).
func (m *maildrop) examine(ctx context.Context, fi int) (*imap.SelectData, error) {
	f := &m.folders[fi]
	var sel *imap.SelectData
	m.cur = -1
	err := m.do(ctx, "examine", func() error {
		var err error
		sel, err = m.c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err != nil {
		if ie := imapError(err); m.multiFolder() && ie != nil && ie.Type == imap.StatusResponseTypeNo &&
			(ie.Code == "" || ie.Code == imap.ResponseCodeNonExistent) {
			m.log.Warn("folder skipped: upstream EXAMINE refused", "mailbox", f.name, "err", err)
			f.missing = true
			return nil, nil
		}
		m.log.Error("upstream EXAMINE failed", "mailbox", f.name, "err", err)
		return nil, tempErr(mailboxText, err)
	}
	if sel.UIDValidity == 0 {
		m.log.Error("upstream sent no UIDVALIDITY", "mailbox", f.name)
		return nil, tempErr(mailboxText, errors.New("no UIDVALIDITY"))
	}
	f.uidValidity = sel.UIDValidity
	m.cur = fi
	return sel, nil
}

// enter makes folder fi the examined one before a fetch from it: the
// prefetches in flight (of the folder examined now) complete first.
// Callers hold m.mu.
func (m *maildrop) enter(ctx context.Context, fi int) error {
	if m.cur == fi {
		return nil
	}
	hints := append([]aheadKey(nil), m.ahead.hints...)
	m.stopAhead()
	m.ahead.hints = append(m.ahead.hints, hints...)
	m.ahead.opened = false // no sequential read-ahead across folders
	f := &m.folders[fi]
	m.cur = -1
	var sel *imap.SelectData
	err := m.do(ctx, "examine", func() error {
		var err error
		sel, err = m.c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err == nil && sel.UIDValidity != f.uidValidity {
		err = fmt.Errorf("UIDVALIDITY of %q changed from %d to %d", f.name, f.uidValidity, sel.UIDValidity)
	}
	if err != nil {
		m.log.Warn("upstream EXAMINE of another folder failed", "mailbox", f.name, "err", err)
		m.teardown(err)
		return tempErr(lostText, err)
	}
	m.cur = fi
	return nil
}

// foldersAttr is the session log's per-folder message counts, e.g.
// "INBOX=12,Junk=3,Spam=missing".
func (m *maildrop) foldersAttr() string {
	var b strings.Builder
	for i, f := range m.folders {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.name)
		b.WriteByte('=')
		if f.missing {
			b.WriteString("missing")
		} else {
			fmt.Fprintf(&b, "%d", f.count)
		}
	}
	return b.String()
}

// sameMailbox compares two mailbox names.
func sameMailbox(a, b string) bool { return folderKey(a) == folderKey(b) }

// snapshotAll snapshots folder first, EXAMINEd with exists messages, then
// EXAMINEs and snapshots each later folder, and lists them in order.
func (m *maildrop) snapshotAll(ctx context.Context, first int, exists uint32) error {
	var msgs []entry
	var infos []pop3front.MessageInfo
	matched := 0
	defer func() { m.usedUIDLs = nil }()
	for fi := first; fi < len(m.folders); fi++ {
		if fi != first {
			sel, err := m.examine(ctx, fi)
			if err != nil {
				return err
			}
			if sel == nil {
				continue
			}
			exists = sel.NumMessages
		}
		m.matched = 0
		start := time.Now()
		err := m.do(ctx, "snapshot", func() error { return m.snapshot(exists) })
		if err != nil {
			m.log.Error("snapshot failed", "mailbox", m.folders[fi].name, "err", err, "elapsed", time.Since(start))
			return tempErr(mailboxText, err)
		}
		for i := range m.msgs {
			m.msgs[i].folder = uint16(fi)
		}
		m.folders[fi].count = len(m.msgs)
		matched += m.matched
		if len(m.folders) == 1 {
			return nil
		}
		msgs = append(msgs, m.msgs...)
		infos = append(infos, m.infos...)
	}
	m.msgs, m.infos, m.matched = msgs, infos, matched
	return nil
}
