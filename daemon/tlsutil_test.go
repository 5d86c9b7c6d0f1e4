package daemon

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
)

// dialPOP3S connects with implicit TLS and reads the greeting; serial is
// the certificate's serial number the server presented.
func dialPOP3S(t *testing.T, addr string, ca *testpki.CA) (c *pop3Client, serial int64) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ca.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	cs := conn.ConnectionState()
	if cs.NegotiatedProtocol != "pop3" {
		t.Errorf("ALPN %q", cs.NegotiatedProtocol)
	}
	c = &pop3Client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expectOK("greeting")
	return c, cs.PeerCertificates[0].SerialNumber.Int64()
}

// startTLS runs STLS on a plain client.
func (c *pop3Client) startTLS(ca *testpki.CA) {
	c.t.Helper()
	if r := c.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, ca.ClientConfig())
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// capa returns the CAPA listing as one string of lines.
func (c *pop3Client) capa() string {
	c.t.Helper()
	if r := c.cmd("CAPA"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("CAPA: %q", r)
	}
	return c.multi()
}
