package pop3test

import (
	"bufio"
	"net"
	"testing"
)

// TestClientCapaUnstuffs: Cmd returns the status line with its CRLF and
// Multi undoes dot-stuffing up to the terminator.
func TestClientCapaUnstuffs(t *testing.T) {
	cl, srv := net.Pipe()
	defer cl.Close()
	defer srv.Close()
	go func() {
		srv.Write([]byte("+OK ready\r\n"))
		r := bufio.NewReader(srv)
		if l, _ := r.ReadString('\n'); l == "CAPA\r\n" {
			srv.Write([]byte("+OK\r\nUIDL\r\n..dotted\r\n.\r\n"))
		}
	}()
	c := NewClient(t, cl)
	if got := c.ExpectOK("greeting"); got != "+OK ready\r\n" {
		t.Errorf("greeting: got %q, want %q", got, "+OK ready\r\n")
	}
	if got, want := c.Capa(), "UIDL\r\n.dotted\r\n"; got != want {
		t.Errorf("CAPA: got %q, want %q", got, want)
	}
}
