package main

import (
	"bytes"
	"fmt"
	"sync"
)

// ledger records, by Message-ID, every delivered message and what
// happened to it.
type ledger struct {
	mu   sync.Mutex
	msgs map[string]*entry
}

// entry is one delivered message.
type entry struct {
	user string
	sha  string // of the bytes Dovecot serves
	// What clients did to it.
	retrieved   bool // a POP3 RETR completed byte-exact
	popDeleted  bool // RETR'd, DELE'd and +OK to QUIT
	popUnsure   bool // RETR'd, DELE'd, QUIT failed (the update may be partial)
	imapRemoved bool // an IMAP client expunged it (OK received)
	// imapExpunging: an IMAP client sent UID EXPUNGE for it, and the
	// reply never came (the device's deadline closed its connection
	// first): the expunge may have landed.
	imapExpunging bool
	imapMoved     bool // an IMAP client moved it to Archive (OK received)
	imapDeleted   bool // an IMAP client set \Deleted without expunging
	corruptRetr   bool // a RETR completed with other bytes: never allowed
	corruptDetail string
}

func newLedger() *ledger { return &ledger{msgs: make(map[string]*entry)} }

func (l *ledger) add(id, user, sha string) {
	l.mu.Lock()
	l.msgs[id] = &entry{user: user, sha: sha}
	l.mu.Unlock()
}

// update runs f on the entry of id, if it is known.
func (l *ledger) update(id string, f func(e *entry)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.msgs[id]
	if e == nil {
		return false
	}
	f(e)
	return true
}

// messageID returns the Message-ID header's value of msg, or "".
func messageID(msg []byte) string {
	hdr := msg
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		hdr = msg[:i+2]
	}
	for _, line := range bytes.Split(hdr, []byte("\r\n")) {
		if len(line) > 11 && bytes.EqualFold(line[:11], []byte("Message-ID:")) {
			return string(bytes.TrimSpace(line[11:]))
		}
	}
	return ""
}

// verdict compares the ledger with where messages are at the end.
type verdict struct {
	delivered, inMailbox, inTrash, inArchive                int
	popDeleted, popUnsure, imapRemoved, imapUnsure, pending int
	lost, changed, misplaced, corrupt                       int
	problems                                                []string
}

// place is where a message was found at the end.
type place struct {
	mailbox string
	sha     string
	deleted bool // has \Deleted
}

func (l *ledger) judge(found map[string][]place) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v verdict
	bad := func(kind *int, format string, args ...any) {
		*kind++
		if len(v.problems) < 20 {
			v.problems = append(v.problems, fmt.Sprintf(format, args...))
		}
	}
	for id, e := range l.msgs {
		v.delivered++
		if e.corruptRetr {
			bad(&v.corrupt, "%s: a RETR completed with other bytes: %s", id, e.corruptDetail)
		}
		if e.popDeleted {
			v.popDeleted++
		}
		if e.popUnsure && !e.popDeleted {
			v.popUnsure++
		}
		if e.imapRemoved {
			v.imapRemoved++
		}
		ps := found[id]
		popDel := e.popDeleted || e.popUnsure
		if len(ps) == 0 {
			if e.imapExpunging && !e.imapRemoved && !popDel {
				v.imapUnsure++
				continue
			}
			if !popDel && !e.imapRemoved {
				bad(&v.lost, "%s (%s): LOST: not in any mailbox, never deleted by a client (%+v)", id, e.user, *e)
			}
			continue
		}
		for _, p := range ps {
			if p.sha != e.sha {
				bad(&v.changed, "%s: bytes changed in %s", id, p.mailbox)
			}
			switch p.mailbox {
			case "INBOX":
				v.inMailbox++
				if p.deleted {
					v.pending++
					if !popDel && !e.imapDeleted {
						bad(&v.misplaced, "%s: \\Deleted in INBOX without a DELE", id)
					}
				}
			case "Trash":
				v.inTrash++
				if !popDel {
					bad(&v.misplaced, "%s: in Trash without a POP3 DELE", id)
				}
			case "Archive":
				v.inArchive++
				if !e.imapMoved {
					bad(&v.misplaced, "%s: in Archive, never moved there", id)
				}
			}
		}
	}
	return v
}
