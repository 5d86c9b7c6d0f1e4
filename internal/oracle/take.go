package oracle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

// Msg is the state of one message.
type Msg = dovecottest.MsgState

// Message is a message with its bytes.
type Message struct {
	Msg
	Body []byte
}

// Account says how to reach a mailbox.
type Account struct {
	Addr     string // IMAP host:port, plaintext (loopback test servers)
	User     string
	Password string
}

// Take reads the state of every message of mailbox, ordered by UID, and
// the mailbox's UIDVALIDITY.
func Take(ctx context.Context, a Account, mailbox string) ([]Msg, uint32, error) {
	msgs, uv, err := Messages(ctx, a, mailbox)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Msg, len(msgs))
	for i, m := range msgs {
		out[i] = m.Msg
	}
	return out, uv, nil
}

// Messages is Take with the bodies.
func Messages(ctx context.Context, a Account, mailbox string) ([]Message, uint32, error) {
	c, err := imapclient.DialInsecure(a.Addr, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("oracle: dial %s: %w", a.Addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(a.User, a.Password).Wait(); err != nil {
		return nil, 0, fmt.Errorf("oracle: login %s: %w", a.User, err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, 0, fmt.Errorf("oracle: EXAMINE %s: %w", mailbox, err)
	}
	var out []Message
	if sel.NumMessages > 0 {
		fetch := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID:         true,
			Flags:       true,
			RFC822Size:  true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		bufs, err := fetch.Collect()
		if err != nil {
			return nil, 0, fmt.Errorf("oracle: UID FETCH 1:* in %s: %w", mailbox, err)
		}
		for _, b := range bufs {
			m := Message{Msg: Msg{UID: uint32(b.UID), Flags: flagStrings(b.Flags), Size: b.RFC822Size}}
			for _, s := range b.BodySection {
				m.Body = s.Bytes
			}
			sum := sha256.Sum256(m.Body)
			m.SHA256 = hex.EncodeToString(sum[:])
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Message) int { return int(int64(a.UID) - int64(b.UID)) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	logout := context.AfterFunc(ctx, func() { c.Close() })
	_ = c.Logout().Wait()
	logout()
	return out, sel.UIDValidity, nil
}

// flagStrings sorts flags and leaves \Recent out, as dovecottest does.
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

// SHA256 is the hex SHA-256 of b, as Msg.SHA256 holds it.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
