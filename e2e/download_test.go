package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestClientsDownloadByteExact has every real client download the tricky
// mailbox, first from Dovecot's own POP3 (which checks the client drivers and
// their normalisations) and then through the gateway, and checks that each
// message arrives exactly as the upstream serves it. curl and poplib also
// download the 5 MB message through the gateway.
func TestClientsDownloadByteExact(t *testing.T) {
	d := dovecottest.Start(t,
		dovecottest.User{Name: "small", Password: "small-pw"},
		dovecottest.User{Name: "big", Password: "big-pw"})
	small := testmail.Small()
	big := append(testmail.Small(), testmail.Big())
	for _, m := range small {
		d.Deliver("small", "INBOX", m.Raw)
	}
	for _, m := range big {
		d.Deliver("big", "INBOX", m.Raw)
	}
	before := map[string][]dovecottest.MsgState{
		"small": d.Snapshot(t, "small", "INBOX"),
		"big":   d.Snapshot(t, "big", "INBOX"),
	}

	t.Run("dovecot-pop3", func(t *testing.T) {
		expect := func(m testmail.Message) []byte {
			return testmail.POP3Octets(testmail.DovecotPOP3Serves(m.Raw))
		}
		for _, c := range popClients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				dovecottest.RequireTool(t, c.tool)
				got := c.download(t, d.POP3Addr(), "small", "small-pw", len(small))
				checkDownload(t, c, got, small, expect)
			})
		}
	})

	t.Run("gateway", func(t *testing.T) {
		g := startGateway(t, d, defaultPolicy)
		expect := func(m testmail.Message) []byte { return testmail.POP3Octets(m.Served) }
		for _, c := range popClients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				dovecottest.RequireTool(t, c.tool)
				user, msgs := "small", small
				if c.name == "curl" || c.name == "poplib" {
					user, msgs = "big", big
				}
				got := c.download(t, g.addr, user, d.Password(user), len(msgs))
				checkDownload(t, c, got, msgs, expect)
			})
		}
	})

	// The clients only downloaded: at most \Seen was added (by the QUITs).
	for user, want := range before {
		got := d.Snapshot(t, user, "INBOX")
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages after the downloads, want %d", user, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			g.Flags = without(g.Flags, `\Seen`)
			if fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("%s: message changed beyond \\Seen:\n got %v\nwant %v", user, got[i], w)
			}
		}
	}
}

// checkDownload compares what a client stored with the expected octets of
// each message.
func checkDownload(t *testing.T, c popClient, got [][]byte, msgs []testmail.Message, expect func(testmail.Message) []byte) {
	t.Helper()
	if len(got) != len(msgs) {
		t.Errorf("%s stored %d messages, want %d", c.name, len(got), len(msgs))
	}
	want := make([][]byte, len(msgs))
	for i, m := range msgs {
		want[i] = expect(m)
		if c.lf {
			want[i] = testmail.LF(want[i])
		}
	}
	if !c.ordered {
		got = matchOrder(got, want)
	}
	for i, m := range msgs {
		if i >= len(got) || got[i] == nil {
			t.Errorf("%s: message %d (%s) missing", c.name, i+1, m.Name)
			continue
		}
		if reason, ok := c.mangles[m.Name]; ok {
			h := headerBlock(want[i])
			if !bytes.HasPrefix(got[i], h) {
				t.Errorf("%s: message %d (%s): header block differs", c.name, i+1, m.Name)
			}
			t.Logf("%s: message %d (%s): only the header block compared: %s", c.name, i+1, m.Name, reason)
			continue
		}
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: message %d (%s) differs: %s", c.name, i+1, m.Name, firstDiff(got[i], want[i]))
		}
	}
}

// matchOrder puts got into the order of want by content; messages with no
// exact match fill the remaining slots in their own order, so that they
// are reported against some message.
func matchOrder(got, want [][]byte) [][]byte {
	byHash := map[[32]byte][]int{}
	for i, g := range got {
		h := sha256.Sum256(g)
		byHash[h] = append(byHash[h], i)
	}
	out := make([][]byte, max(len(got), len(want)))
	used := make([]bool, len(got))
	for i, w := range want {
		h := sha256.Sum256(w)
		if idx := byHash[h]; len(idx) > 0 {
			out[i], used[idx[0]] = got[idx[0]], true
			byHash[h] = idx[1:]
		}
	}
	j := 0
	for i := range got {
		if used[i] {
			continue
		}
		for j < len(out) && out[j] != nil {
			j++
		}
		if j < len(out) {
			out[j] = got[i]
		}
	}
	return out
}

// headerBlock returns the header block of a message, through the blank line.
func headerBlock(m []byte) []byte {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(m, []byte(sep)); i >= 0 {
			return m[:i+len(sep)]
		}
	}
	return m
}

// firstDiff describes where two byte strings first differ.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	return fmt.Sprintf("%d vs %d octets, first difference at offset %d:\n got …%q\nwant …%q",
		len(got), len(want), i, got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}

// without returns flags without f.
func without(flags []string, f string) []string {
	var out []string
	for _, x := range flags {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}
