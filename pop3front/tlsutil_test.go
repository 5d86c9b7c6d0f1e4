package pop3front

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA and a leaf for "pop3.test" and 127.0.0.1, made once per
// test binary: no key is committed to the repository.
type testPKI struct {
	roots *x509.CertPool
	leaf  tls.Certificate
}

var (
	pkiOnce sync.Once
	pki     testPKI
)

func getPKI(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ca := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "popbridge test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "pop3.test"},
			DNSNames:     []string{"pop3.test"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		pki.roots = x509.NewCertPool()
		pki.roots.AddCert(caCert)
		pki.leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return pki
}

// serverTLS is what the proxy configures: TLS 1.2+, ALPN "pop3".
func serverTLS(t testing.TB) *tls.Config {
	p := getPKI(t)
	return &tls.Config{
		Certificates: []tls.Certificate{p.leaf},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"pop3"},
	}
}

func clientTLS(t testing.TB) *tls.Config {
	return &tls.Config{RootCAs: getPKI(t).roots, ServerName: "pop3.test", NextProtos: []string{"pop3"}}
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
		t.Fatalf("greeting %q", g)
	}
	return cl
}

// stls sends STLS, expects the go-ahead and upgrades the client.
func (cl *client) stls() {
	cl.t.Helper()
	if r := cl.cmd("STLS"); r != "+OK Begin TLS negotiation.\r\n" {
		cl.t.Fatalf("STLS: %q", r)
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
		t.Fatalf("greeting %q", g)
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
