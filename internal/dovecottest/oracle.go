package dovecottest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/testtb"
)

// MsgState is what the oracle records of one message.
type MsgState struct {
	UID    uint32
	Flags  []string // sorted; \Recent is left out (it depends on the session)
	Size   int64    // RFC822.SIZE
	SHA256 string   // hex SHA-256 of BODY[]
}

// String formats the state for test failure messages.
func (m MsgState) String() string {
	return fmt.Sprintf("uid=%d size=%d flags=[%s] sha256=%.12s", m.UID, m.Size, strings.Join(m.Flags, " "), m.SHA256)
}

// Message is a message as the IMAP server serves it.
type Message struct {
	UID   uint32
	Flags []string // as in MsgState
	Size  int64    // RFC822.SIZE
	Body  []byte   // BODY[]
}

// Login opens an IMAP connection to the instance logged in as user; it is
// closed when the test ends.
func (d *Dovecot) Login(t testtb.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.imapAddr, nil)
	if err != nil {
		t.Fatalf("dovecottest: dial IMAP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, d.Password(user)).Wait(); err != nil {
		t.Fatalf("dovecottest: IMAP login as %s: %v", user, err)
	}
	return c
}

// Snapshot reads the state of every message of a mailbox over a fresh IMAP
// connection (EXAMINE and BODY.PEEK: it changes nothing), ordered by UID.
// A mailbox that does not exist fails the test.
func (d *Dovecot) Snapshot(t testtb.TB, user, mailbox string) []MsgState {
	t.Helper()
	msgs := d.Messages(t, user, mailbox)
	states := make([]MsgState, len(msgs))
	for i, m := range msgs {
		sum := sha256.Sum256(m.Body)
		states[i] = MsgState{UID: m.UID, Flags: m.Flags, Size: m.Size, SHA256: hex.EncodeToString(sum[:])}
	}
	return states
}

// Messages returns every message of a mailbox with its bytes, ordered by UID
// (EXAMINE and BODY.PEEK over a fresh connection: it changes nothing).
func (d *Dovecot) Messages(t testtb.TB, user, mailbox string) []Message {
	t.Helper()
	c := d.Login(t, user)
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("dovecottest: EXAMINE %s/%s: %v", user, mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	fetch := c.Fetch(all, &imap.FetchOptions{
		UID:         true,
		Flags:       true,
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	bufs, err := fetch.Collect()
	if err != nil {
		t.Fatalf("dovecottest: UID FETCH 1:* in %s/%s: %v", user, mailbox, err)
	}
	msgs := make([]Message, 0, len(bufs))
	for _, b := range bufs {
		m := Message{UID: uint32(b.UID), Flags: flagStrings(b.Flags), Size: b.RFC822Size}
		for _, s := range b.BodySection {
			m.Body = s.Bytes
		}
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b Message) int { return int(int64(a.UID) - int64(b.UID)) })
	return msgs
}

// UIDValidity returns the UIDVALIDITY of a mailbox.
func (d *Dovecot) UIDValidity(t testtb.TB, user, mailbox string) uint32 {
	t.Helper()
	c := d.Login(t, user)
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("dovecottest: EXAMINE %s/%s: %v", user, mailbox, err)
	}
	return sel.UIDValidity
}

// flagStrings returns the flags sorted, without \Recent.
func flagStrings(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}
