package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testpki"
)

// dialPOP3S connects with implicit TLS and reads the greeting; serial is
// the certificate's serial number the server presented.
func dialPOP3S(t *testing.T, addr string, ca *testpki.CA) (c *pop3test.Client, serial int64) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ca.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	cs := conn.ConnectionState()
	if cs.NegotiatedProtocol != "pop3" {
		t.Errorf("ALPN %q, want %q", cs.NegotiatedProtocol, "pop3")
	}
	c = pop3test.NewClient(t, conn)
	c.ExpectOK("greeting")
	return c, cs.PeerCertificates[0].SerialNumber.Int64()
}

// notAfter is the expiry of the first certificate in a PEM file.
func notAfter(t *testing.T, certFile string) time.Time {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}
