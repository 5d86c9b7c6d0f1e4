package pop3front

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
)

// testCA and testLeaf are made once per test binary (internal/testpki).
var (
	pkiOnce  sync.Once
	testCA   *testpki.CA
	testLeaf tls.Certificate
)

func getPKI(t testing.TB) (*testpki.CA, tls.Certificate) {
	t.Helper()
	pkiOnce.Do(func() {
		testCA = testpki.New()
		testLeaf = testCA.Leaf(2)
	})
	return testCA, testLeaf
}

// serverTLS is what the proxy configures: TLS 1.2+, ALPN "pop3".
func serverTLS(t testing.TB) *tls.Config {
	_, leaf := getPKI(t)
	return &tls.Config{
		Certificates: []tls.Certificate{leaf},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"pop3"},
	}
}

func clientTLS(t testing.TB) *tls.Config {
	ca, _ := getPKI(t)
	return ca.ClientConfig()
}

// testTLSServer runs srv.ServeTLS on a loopback listener until the test
// ends.
func testTLSServer(t testing.TB, srv *Server) string {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = discardLogger()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().String()
}

// dialTLS connects with implicit TLS and reads the greeting.
func dialTLS(t testing.TB, addr string) *client {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, clientTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q, want prefix %q", g, "+OK ")
	}
	return cl
}

// stls sends STLS, expects the go-ahead and upgrades the client.
func (cl *client) stls() {
	cl.t.Helper()
	if r := cl.cmd("STLS"); r != "+OK Begin TLS negotiation.\r\n" {
		cl.t.Fatalf("STLS: %q, want %q", r, "+OK Begin TLS negotiation.\r\n")
	}
	if cl.r.Buffered() != 0 {
		cl.t.Fatalf("server sent more after STLS's reply")
	}
	tc := tls.Client(cl.c, clientTLS(cl.t))
	if err := tc.Handshake(); err != nil {
		cl.t.Fatalf("handshake: %v", err)
	}
	cl.c = tc
	cl.r = bufio.NewReader(tc)
}

// addrListener reports a chosen remote address for every accepted
// connection, as a PROXY protocol listener does for a relayed client.
type addrListener struct {
	net.Listener
	remote func(c net.Conn) net.Addr
}

func (l addrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return addrConn{c.(*net.TCPConn), l.remote(c)}, nil
}

type addrConn struct {
	*net.TCPConn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// serveFrom runs srv with every client appearing to come from ip.
func serveFrom(t testing.TB, srv *Server, ip string, implicitTLS bool) string {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = discardLogger()
	}
	if srv.Limits.AuthPenaltyInitial == 0 {
		srv.Limits.AuthPenaltyInitial = time.Millisecond
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := addrListener{inner, func(c net.Conn) net.Addr {
		return &net.TCPAddr{IP: net.ParseIP(ip), Port: c.RemoteAddr().(*net.TCPAddr).Port}
	}}
	done := make(chan error, 1)
	go func() {
		if implicitTLS {
			done <- srv.ServeTLS(l)
		} else {
			done <- srv.Serve(l)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return inner.Addr().String()
}

// dialFrom connects from a chosen loopback address (all of 127.0.0.0/8
// is local on Linux), so tests can play several client addresses; ""
// lets the system choose.
func dialFrom(t testing.TB, addr, local string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q, want prefix %q", g, "+OK ")
	}
	return cl
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func tlsDial(t testing.TB, addr string) (*tls.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, clientTLS(t))
	if err == nil {
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	return c, err
}
