package memupstream

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type wire struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func start(t *testing.T, p Profile, w *wire) *Server {
	t.Helper()
	opts := Options{Profile: p}
	if w != nil {
		opts.Wire = w
	}
	s, err := Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddUser("u", "p"); err != nil {
		t.Fatal(err)
	}
	return s
}

// raw runs commands over a plain connection and returns each tagged
// response line, so refusals can be checked without go-imap's fallbacks.
func raw(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	br.ReadString('\n') // greeting
	var out []string
	for i, cmd := range cmds {
		tag := fmt.Sprintf("t%d", i)
		fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				out = append(out, strings.TrimSpace(strings.TrimPrefix(l, tag+" ")))
				break
			}
		}
	}
	return out
}

func TestProfiles(t *testing.T) {
	for _, tc := range []struct {
		p                         Profile
		uidplus, move, specialUse bool
	}{
		{ProfileIMAP4rev2, true, true, false},
		{ProfileUIDPlus, true, false, false},
		{ProfileBare, false, false, false},
		{ProfileFull, true, true, true},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			s := start(t, tc.p, nil)
			for range 2 {
				if err := s.Append("u", "INBOX", []byte("Subject: x\r\n\r\nx\r\n"), imap.FlagDeleted); err != nil {
					t.Fatal(err)
				}
			}
			s.CreateMailbox("u", "Trash")
			c, err := imapclient.DialInsecure(s.Addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Login("u", "p").Wait(); err != nil {
				t.Fatal(err)
			}
			caps, err := c.Capability().Wait()
			if err != nil {
				t.Fatal(err)
			}
			if caps.Has(imap.CapUIDPlus) != tc.uidplus || caps.Has(imap.CapMove) != tc.move || caps.Has(imap.CapSpecialUse) != tc.specialUse || caps.Has(imap.CapID) {
				t.Errorf("caps %v", caps)
			}
			c.Logout().Wait()

			got := raw(t, s.Addr(), "LOGIN u p", "SELECT INBOX", "UID MOVE 1 Trash", "UID EXPUNGE 2")
			if ok := strings.HasPrefix(got[2], "OK"); ok != tc.move {
				t.Errorf("UID MOVE: %s", got[2])
			}
			if ok := strings.HasPrefix(got[3], "OK"); ok != tc.uidplus {
				t.Errorf("UID EXPUNGE: %s", got[3])
			}
		})
	}
	if _, err := Start("127.0.0.1:0", Options{Profile: "nonsense"}); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestAppendAndWire(t *testing.T) {
	w := &wire{}
	s := start(t, ProfileFull, w)
	if err := s.Append("nobody", "INBOX", []byte("x\r\n")); err == nil {
		t.Error("append for a missing user")
	}
	if err := s.Append("u", "Nope", []byte("x\r\n")); err == nil {
		t.Error("append to a missing mailbox")
	}
	if err := s.AddUser("u", "p"); err == nil {
		t.Error("duplicate user")
	}
	if err := s.CreateMailbox("u", "Archive"); err != nil {
		t.Fatal(err)
	}
	demo := DemoMessages()
	for _, m := range demo {
		if err := s.Append("u", "Archive", m, imap.FlagSeen, "$Label1"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Archive", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	bufs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1}}, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(bufs) != len(demo) {
		t.Fatalf("%d messages, want %d", len(bufs), len(demo))
	}
	for i, b := range bufs {
		if b.RFC822Size != int64(len(demo[i])) || !bytes.Equal(b.BodySection[0].Bytes, demo[i]) || len(b.Flags) != 2 {
			t.Errorf("message %d: size %d flags %v", i+1, b.RFC822Size, b.Flags)
		}
	}
	c.Logout().Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.Contains(w.b.String(), " LOGIN \"u\" \"p\"\r\n") {
		t.Errorf("wire: %q, want it to contain %q", w.b.String(), " LOGIN \"u\" \"p\"\r\n")
	}
}

func TestDemoMessages(t *testing.T) {
	msgs := DemoMessages()
	if len(msgs) < 5 || len(msgs) > 6 {
		t.Errorf("%d demo messages", len(msgs))
	}
	all := string(bytes.Join(msgs, nil))
	for _, want := range []string{"\r\n.\r\n", "\r\n..", "multipart/alternative", "Content-Disposition: attachment", "In-Reply-To:"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the demo messages", want)
		}
	}
	for i, m := range msgs {
		if bytes.Count(m, []byte("\n")) != bytes.Count(m, []byte("\r\n")) || !bytes.HasSuffix(m, []byte("\r\n")) {
			t.Errorf("message %d is not CRLF throughout", i+1)
		}
	}
}
