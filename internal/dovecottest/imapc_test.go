package dovecottest_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestImapcGateway checks that Dovecot's imapc POP3 gateway in front of an
// instance serves the same UIDL, LIST and RETR replies as the instance's
// own POP3, and that a wrong password is refused.
func TestImapcGateway(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "dave", Password: "pw"})
	for _, m := range testmail.Ordinary(3) {
		d.Deliver("dave", "INBOX", m.Raw)
	}
	g := dovecottest.StartImapcGateway(t, d, dovecottest.ImapcOptions{})
	cmds := []string{"USER dave", "PASS pw", "UIDL", "LIST", "RETR 1", "RETR 3"}
	want := pop3(t, d.POP3Addr(), cmds...)
	got := pop3(t, g.POP3Addr(), cmds...)
	for i := 3; i < len(want); i++ {
		if got[i] != want[i] {
			t.Errorf("%s through imapc:\n got %.300q\nwant %.300q", cmds[i-1], got[i], want[i])
		}
	}
	if r := lastStatus(t, g.POP3Addr(), "USER dave", "PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("wrong password: %q, want prefix %q", r, "-ERR")
	}
}

// lastStatus sends single-line commands and returns the last status line.
func lastStatus(t *testing.T, addr string, cmds ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	l, err := r.ReadString('\n')
	for _, cmd := range cmds {
		if err != nil {
			t.Fatalf("POP3 read: %v", err)
		}
		fmt.Fprintf(c, "%s\r\n", cmd)
		l, err = r.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("POP3 read: %v", err)
	}
	return l
}
