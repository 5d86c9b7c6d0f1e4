package imapback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// Commit applies the session's outcome at QUIT (RFC 1939 UPDATE state).
//
// Indexes become the UIDs mapped at login; sequence numbers are never
// used. With nothing to apply it only logs out. Otherwise it SELECTs the
// mailbox read-write (the session held it with EXAMINE), checks that
// UIDVALIDITY is unchanged (if not, the UIDs name other messages: nothing
// is applied; with several folders, every folder with something to apply
// is checked before anything changes: folders.go), then, waiting for each
// tagged OK:
//
//   - seen=quit: UID STORE retrieved +FLAGS.SILENT (\Seen);
//   - flag: UID STORE deleted +FLAGS.SILENT (\Deleted);
//   - keyword: UID STORE deleted +FLAGS.SILENT (keyword), if PERMANENTFLAGS
//     allows it;
//   - expunge: UID STORE \Deleted, then UID EXPUNGE of exactly those UIDs
//     (RFC 4315 section 2.1);
//   - trash, archive: UID MOVE (RFC 6851) to the SPECIAL-USE (RFC 6154)
//     mailbox or the configured name; without MOVE, UID COPY, and only
//     after its OK, UID STORE \Deleted and UID EXPUNGE. On NO [TRYCREATE]
//     the target is created and the command retried once;
//   - keep: nothing.
//
// A plain EXPUNGE is never sent, nor go-imap's Move without MOVE (it
// pipelines COPY, STORE and a plain EXPUNGE without waiting for COPY).
// UIDs another client expunged meanwhile are simply absent. Any failure
// returns SYS/TEMP; what was applied before it stays applied, and nothing
// outside Deleted/Retrieved is touched. The session ends either way.
func (m *maildrop) Commit(ctx context.Context, outcome pop3front.Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		m.log.Error("QUIT update impossible", "err", err)
		return &pop3front.Error{Code: pop3front.CodeSysTemp, Text: commitText, Err: err}
	}
	m.done = true
	m.stopAhead() // prefetches in flight end first; nothing of them is kept

	deletedIdx, retrievedIdx := m.withoutGone(outcome.Deleted), outcome.Retrieved
	if m.policy.Delete == DeleteKeep {
		deletedIdx = nil
	}
	if len(m.retrievedFlags()) == 0 {
		retrievedIdx = nil
	}
	work, err := m.folderWork(deletedIdx, retrievedIdx)
	if err == nil {
		if len(work) == 0 {
			m.logout(ctx)
			return nil
		}
		err = m.do(ctx, "commit", func() error { return m.applyAll(work) })
	}
	if err != nil {
		m.log.Error("QUIT update failed", "policy", m.policy.Delete, "deleted", len(outcome.Deleted), "err", err)
		if imapError(err) == nil {
			m.teardown(err)
		} else {
			m.logout(ctx)
		}
		return &pop3front.Error{Code: pop3front.CodeSysTemp, Text: commitText, Err: err}
	}
	m.log.Info("QUIT update applied", "policy", m.policy.Delete, "deleted", len(outcome.Deleted), "seen", len(outcome.Retrieved))
	if o := m.b.cfg.Observer; o != nil {
		o.Committed(string(m.policy.Delete), len(outcome.Deleted))
	}
	m.logout(ctx)
	return nil
}

// work is what QUIT applies to one folder.
type work struct {
	folder             int
	deleted, retrieved imap.UIDSet
}

// folderWork maps message indexes to the snapshot's UIDs, folder by
// folder; folders with nothing to apply are left out.
func (m *maildrop) folderWork(deleted, retrieved []int) ([]work, error) {
	byFolder := make([][2][]imap.UID, len(m.folders))
	for k, indexes := range [2][]int{deleted, retrieved} {
		for _, i := range indexes {
			if i < 0 || i >= len(m.msgs) {
				return nil, fmt.Errorf("message index %d out of range", i)
			}
			e := m.msgs[i]
			byFolder[e.folder][k] = append(byFolder[e.folder][k], e.uid)
		}
	}
	var out []work
	for fi, l := range byFolder {
		if len(l[0]) == 0 && len(l[1]) == 0 {
			continue
		}
		out = append(out, work{folder: fi, deleted: uidSet(l[0]), retrieved: uidSet(l[1])})
	}
	return out, nil
}

// uidSet makes a UID set of l; adjacent UIDs merge into ranges, and a
// range holds no UID outside l.
func uidSet(l []imap.UID) imap.UIDSet {
	if len(l) == 0 {
		return nil
	}
	slices.Sort(l)
	l = slices.Compact(l)
	var set imap.UIDSet
	for _, u := range l {
		set.AddNum(u)
	}
	return set
}

// applyAll SELECTs every folder with work and checks its UIDVALIDITY
// before changing anything (a change anywhere applies nothing), then
// applies each folder's work, the folder SELECTed last first.
func (m *maildrop) applyAll(ws []work) error {
	sels := make([]*imap.SelectData, len(ws))
	for i, w := range ws {
		sel, err := m.selectFolder(w.folder)
		if err != nil {
			return err
		}
		sels[i] = sel
	}
	for i := len(ws) - 1; i >= 0; i-- {
		sel := sels[i]
		if i != len(ws)-1 {
			var err error
			if sel, err = m.selectFolder(ws[i].folder); err != nil {
				return err
			}
		}
		if err := m.apply(ws[i], sel); err != nil {
			return err
		}
	}
	return nil
}

// selectFolder SELECTs folder fi read-write and checks its UIDVALIDITY.
func (m *maildrop) selectFolder(fi int) (*imap.SelectData, error) {
	f := &m.folders[fi]
	m.cur = -1
	sel, err := m.c.Select(f.name, nil).Wait()
	if err != nil {
		if len(m.folders) > 1 {
			return nil, fmt.Errorf("SELECT %q: %w", f.name, err)
		}
		return nil, fmt.Errorf("SELECT: %w", err)
	}
	if sel.UIDValidity != f.uidValidity {
		if len(m.folders) > 1 {
			return nil, fmt.Errorf("UIDVALIDITY of %q changed from %d to %d: nothing applied", f.name, f.uidValidity, sel.UIDValidity)
		}
		return nil, fmt.Errorf("UIDVALIDITY changed from %d to %d: nothing applied", f.uidValidity, sel.UIDValidity)
	}
	return sel, nil
}

func addFlags(flags ...imap.Flag) *imap.StoreFlags {
	return &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}
}

// apply applies one folder's work; the folder is SELECTed (sel).
func (m *maildrop) apply(w work, sel *imap.SelectData) error {
	deleted, retrieved := w.deleted, w.retrieved
	var err error
	if !m.caps.Has(imap.CapUIDPlus) {
		// Without UIDPLUS, name only UIDs that still exist: mailutils
		// applies a UID above its last to its last message (quirks.go).
		if deleted, retrieved, err = m.existing(sel.NumMessages, deleted, retrieved); err != nil {
			return err
		}
	}
	if len(retrieved) > 0 {
		flags := m.retrievedFlags() // \Seen and/or the retrieved keyword (views.go)
		if m.policy.HideRetrieved && !permanent(sel.PermanentFlags, imap.Flag(m.policy.RetrievedKeyword)) {
			return fmt.Errorf("mailbox cannot store keyword %s permanently (PERMANENTFLAGS %v)", m.policy.RetrievedKeyword, sel.PermanentFlags)
		}
		if err := m.c.Store(retrieved, addFlags(flags...), nil).Close(); err != nil {
			return fmt.Errorf("UID STORE %v: %w", flags, err)
		}
	}
	if len(deleted) == 0 {
		return nil
	}
	switch m.policy.Delete {
	case DeleteFlag:
		return m.storeDeleted(deleted)
	case DeleteKeyword:
		kw := imap.Flag(m.policy.Keyword)
		if !permanent(sel.PermanentFlags, kw) {
			return fmt.Errorf("mailbox cannot store keyword %s permanently (PERMANENTFLAGS %v)", kw, sel.PermanentFlags)
		}
		if err := m.c.Store(deleted, addFlags(kw), nil).Close(); err != nil {
			return fmt.Errorf("UID STORE %s: %w", kw, err)
		}
		return nil
	case DeleteExpunge:
		if err := m.storeDeleted(deleted); err != nil {
			return err
		}
		return m.uidExpunge(deleted)
	case DeleteTrash, DeleteArchive:
		return m.moveTo(w.folder, deleted)
	}
	return nil
}

func (m *maildrop) storeDeleted(uids imap.UIDSet) error {
	if err := m.c.Store(uids, addFlags(imap.FlagDeleted), nil).Close(); err != nil {
		return fmt.Errorf("UID STORE \\Deleted: %w", err)
	}
	return nil
}

// uidExpunge removes exactly uids (RFC 4315 section 2.1), never a plain
// EXPUNGE.
func (m *maildrop) uidExpunge(uids imap.UIDSet) error {
	if !m.caps.Has(imap.CapUIDPlus) {
		return errors.New("UID EXPUNGE needs UIDPLUS") // checkPolicy prevents this
	}
	if err := m.c.UIDExpunge(uids).Close(); err != nil {
		return fmt.Errorf("UID EXPUNGE: %w", err)
	}
	return nil
}

// permanent reports whether PERMANENTFLAGS lets kw be stored (RFC 3501
// section 7.1: \* allows new keywords).
func permanent(perm []imap.Flag, kw imap.Flag) bool {
	for _, f := range perm {
		if f == imap.FlagWildcard || strings.EqualFold(string(f), string(kw)) {
			return true
		}
	}
	return false
}

// moveTo moves uids to the trash or archive mailbox.
func (m *maildrop) moveTo(fi int, uids imap.UIDSet) error {
	target, err := m.target()
	if err != nil {
		return err
	}
	if sameMailbox(m.folders[fi].name, target) {
		// Already where the policy puts it (folders.go): flagged only.
		return m.storeDeleted(uids)
	}
	// go-imap's Move decides on its own Caps(); check both so its unsafe
	// fallback can never run.
	if m.caps.Has(imap.CapMove) && m.c.Caps().Has(imap.CapMove) {
		return m.retryCreate(target, "UID MOVE", func() error {
			_, err := m.c.Move(uids, target).Wait()
			return err
		})
	}
	err = m.retryCreate(target, "UID COPY", func() error {
		_, err := m.c.Copy(uids, target).Wait()
		return err
	})
	if err != nil {
		return err // the source is untouched
	}
	if err := m.storeDeleted(uids); err != nil {
		return err
	}
	return m.uidExpunge(uids)
}

// retryCreate runs f; on NO [TRYCREATE] it creates target and runs f once
// more.
func (m *maildrop) retryCreate(target, what string, f func() error) error {
	err := f()
	if err != nil && isTryCreate(err) {
		m.log.Info("creating mailbox for the delete policy", "mailbox", target)
		if cerr := m.c.Create(target, nil).Wait(); cerr != nil {
			if ie := imapError(cerr); ie == nil || ie.Code != imap.ResponseCodeAlreadyExists {
				return fmt.Errorf("%s: %w; CREATE %q: %w", what, err, target, cerr)
			}
		}
		err = f()
	}
	if err != nil {
		return fmt.Errorf("%s to %q: %w", what, target, err)
	}
	return nil
}

// target finds the trash or archive mailbox: the one with the special-use
// attribute (RFC 6154) when the server advertises SPECIAL-USE, else the
// configured name.
func (m *maildrop) target() (string, error) {
	if m.targetName != "" {
		return m.targetName, nil
	}
	name, err := m.findTarget()
	m.targetName = name
	return name, err
}

func (m *maildrop) findTarget() (string, error) {
	attr, name := imap.MailboxAttrTrash, m.policy.Trash
	if m.policy.Delete == DeleteArchive {
		attr, name = imap.MailboxAttrArchive, m.policy.Archive
	}
	if !m.caps.Has(imap.CapSpecialUse) {
		return name, nil
	}
	list, err := m.c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		return "", fmt.Errorf("LIST RETURN (SPECIAL-USE): %w", err)
	}
	for _, mb := range list {
		for _, a := range mb.Attrs {
			if strings.EqualFold(string(a), string(attr)) {
				return mb.Mailbox, nil
			}
		}
	}
	return name, nil
}
