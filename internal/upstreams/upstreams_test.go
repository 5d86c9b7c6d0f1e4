package upstreams

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestMailutilsStartsAndServes(t *testing.T) {
	s := StartMailutils(t, User{Name: "alice", Password: "pw a"}, User{Name: "bob", Password: "pw-b"})
	raw := []byte("From: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	s.Append(t, "alice", "INBOX", raw, raw)
	got := s.Messages(t, "alice", "INBOX")
	if len(got) != 2 {
		t.Fatalf("%d messages, want %d", len(got), 2)
	}
	// mailutils adds X-IMAPbase (first message), X-UID and Status headers.
	if !bytes.HasPrefix(got[1].Body, []byte("From: x@example.org\r\nSubject: hi\r\n")) || !bytes.HasSuffix(got[1].Body, []byte("\r\n\r\nhello\r\n")) {
		t.Errorf("served %q", got[1].Body)
	}
	if n := len(s.Messages(t, "bob", "INBOX")); n != 0 {
		t.Errorf("bob has %d messages, want %d", n, 0)
	}
	t.Logf("%s: %q", s.Version, got[0].Body)
}

func TestCyrusStartsAndServes(t *testing.T) {
	s := StartCyrus(t, User{Name: "alice", Password: "pw"})
	raw := []byte("From: x@example.org\r\nSubject: caf\xe9\r\n\r\nhello\r\n")
	errs := s.TryAppend(t, "alice", "INBOX", raw, []byte("Subject: bare\n\nLF\n"))
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("APPEND results %v (want the bare-LF message refused)", errs)
	}
	got := s.Messages(t, "alice", "INBOX")
	if len(got) != 1 || string(got[0].Body) != "From: x@example.org\r\nSubject: cafX\r\n\r\nhello\r\n" {
		t.Fatalf("served %+v", got)
	}
	if n := len(s.Messages(t, "alice", "Trash")); n != 0 {
		t.Errorf("Trash holds %d, want %d", n, 0)
	}
	t.Log(s.Version)
}

func TestCourierStartsAndServes(t *testing.T) {
	s := StartCourier(t, User{Name: "alice", Password: "pw a"}, User{Name: "bob", Password: "pw-b"})
	raw := []byte("From: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	s.Append(t, "alice", "INBOX", raw, raw)
	got := s.Messages(t, "alice", "INBOX")
	if len(got) != 2 || !bytes.Equal(got[1].Body, raw) {
		t.Fatalf("served %+v", got)
	}
	if n := len(s.Messages(t, "bob", "INBOX")); n != 0 {
		t.Errorf("bob has %d messages, want %d", n, 0)
	}
	for _, f := range []string{s.Trash, s.Archive} {
		if n := len(s.Messages(t, "alice", f)); n != 0 {
			t.Errorf("%s holds %d, want %d", f, n, 0)
		}
	}
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Errorf("a wrong password logged in")
	}
	t.Logf("wrong password refused after %v", time.Since(start))
	t.Log(s.Version)
}

// TestCourierSubstitute: the behaviour the gateway's size check exists for
// (docs/servers.md). A session that has INBOX open fetches a message another
// session expunged and gets OK with a 129-byte stand-in.
func TestCourierSubstitute(t *testing.T) {
	s := StartCourier(t, User{Name: "alice", Password: "pw"})
	raw := []byte("From: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	s.Append(t, "alice", "INBOX", raw, raw)
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// cmd sends one command (Courier drops commands pipelined behind
	// LOGIN) and returns everything up to its tagged OK.
	cmd := func(tag, line string) string {
		t.Helper()
		fmt.Fprintf(c, "%s %s\r\n", tag, line)
		var out strings.Builder
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v (read %q)", line, err, out.String())
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %q, want prefix %q", line, l, tag+" OK")
				}
				return out.String()
			}
			out.WriteString(l)
			if i := strings.LastIndex(l, "{"); i >= 0 && strings.HasSuffix(l, "}\r\n") {
				n, err := strconv.Atoi(l[i+1 : len(l)-3])
				if err != nil {
					t.Fatalf("literal in %q", l)
				}
				lit := make([]byte, n)
				if _, err := io.ReadFull(r, lit); err != nil {
					t.Fatal(err)
				}
				out.Write(lit)
			}
		}
	}
	cmd("a", `LOGIN alice pw`)
	cmd("b", "EXAMINE INBOX")
	phone := s.Dial(t, "alice")
	if _, err := phone.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var uids imap.UIDSet
	uids.AddNum(2)
	if err := phone.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := phone.UIDExpunge(uids).Close(); err != nil {
		t.Fatal(err)
	}
	got := cmd("c", "UID FETCH 2 (RFC822.SIZE BODY.PEEK[] UID)")
	if !strings.Contains(got, "RFC822.SIZE 129 BODY[] {129}\r\n"+courierSubstitute+" UID 2)") {
		t.Errorf("UID FETCH of the expunged message answered %q, want the 129-byte stand-in", got)
	}
}

// courierSubstitute is what Courier-IMAP 5.0.13 serves for a message
// another session expunged (129 octets).
const courierSubstitute = "From: System Administrator <root@localhost>\r\nSubject: message unavailable\r\n\r\nThis message is no longer available on the server.\r\n"
