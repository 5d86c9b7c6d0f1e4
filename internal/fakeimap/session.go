package fakeimap

import (
	"fmt"
	"strings"
)

// Msg is a message of a scripted mailbox; RFC822.SIZE is len(Body).
type Msg struct {
	UID   uint32
	Body  []byte
	Flags string // FETCH FLAGS contents, e.g. `\Seen`
}

// Greeting sends an OK greeting advertising caps.
func Greeting(caps string) Step {
	return Send("* OK [CAPABILITY " + caps + "] fakeimap ready")
}

// Login expects LOGIN and accepts it, advertising caps in the reply (as
// Dovecot does).
func Login(caps string) Script {
	return S(Expect(`LOGIN .*`), SendTagged("OK [CAPABILITY "+caps+"] Logged in"))
}

// Examine expects EXAMINE and answers with the mailbox's size and
// UIDVALIDITY, read-only.
func Examine(exists int, uidValidity uint32) Script {
	return S(Expect(`EXAMINE .*`), mailboxData(exists, uidValidity), SendTagged("OK [READ-ONLY] Examine completed"))
}

// Select expects SELECT and answers read-write, with PERMANENTFLAGS
// allowing \Deleted, \Seen and new keywords.
func Select(exists int, uidValidity uint32) Script {
	return S(Expect(`SELECT .*`), mailboxData(exists, uidValidity), SendTagged("OK [READ-WRITE] Select completed"))
}

func mailboxData(exists int, uidValidity uint32) Script {
	return S(
		Send(`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`),
		Send(`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted.`),
		Send(fmt.Sprintf("* %d EXISTS", exists)),
		Send("* 0 RECENT"),
		Send(fmt.Sprintf("* OK [UIDVALIDITY %d] UIDs valid", uidValidity)),
	)
}

// Snapshot expects the gateway's `UID FETCH 1:* (UID RFC822.SIZE FLAGS)`
// and lists msgs (message i has sequence number i+1).
func Snapshot(msgs ...Msg) Script {
	s := S(Expect(`UID FETCH 1:\* \(.*\)`))
	for i, m := range msgs {
		s = append(s, Send(fmt.Sprintf("* %d FETCH (UID %d RFC822.SIZE %d FLAGS (%s))", i+1, m.UID, len(m.Body), m.Flags)))
	}
	return append(s, SendTagged("OK Fetch completed"))
}

// Prelude is a whole session start: greeting, LOGIN, EXAMINE and, when
// there are messages, the snapshot.
func Prelude(caps string, uidValidity uint32, msgs ...Msg) Script {
	s := S(Greeting(caps), Login(caps), Examine(len(msgs), uidValidity))
	if len(msgs) > 0 {
		s = append(s, Snapshot(msgs...)...)
	}
	return s
}

// FetchBody expects a UID FETCH of m (sequence number seq) and serves
// its whole body.
func FetchBody(seq int, m Msg) Script {
	return S(
		Expect(fmt.Sprintf(`UID FETCH %d .*`, m.UID)),
		Literal(fmt.Sprintf("* %d FETCH (UID %d RFC822.SIZE %d BODY[] ", seq, m.UID, len(m.Body)), m.Body, ")"),
		SendTagged("OK Fetch completed"),
	)
}

// Logout expects LOGOUT and answers BYE and OK; the script then ends.
func Logout() Script {
	return S(Expect(`LOGOUT`), Send("* BYE Logging out"), SendTagged("OK Logout completed"), Close())
}

// UIDSet formats UIDs the way go-imap sends a set of them (ascending,
// adjacent ones as ranges), as a regular expression.
func UIDSet(uids ...uint32) string {
	var parts []string
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d:%d", uids[i], uids[j]))
		} else {
			parts = append(parts, fmt.Sprint(uids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
