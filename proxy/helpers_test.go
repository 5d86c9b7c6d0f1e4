package main

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/syncbuf"
	"github.com/popbridge/popbridge/internal/testpki"
)

// The process tests talk to the binary over the wire; these helpers are
// the small part of the daemon package's test helpers they need.

func dialPOP3(t *testing.T, addr string) *pop3test.Client { return pop3test.DialClient(t, addr) }

// logBuffer collects log output written from many goroutines.
type logBuffer = syncbuf.Buffer

func waitLog(t *testing.T, logs *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
	c = pop3test.NewClient(t, conn)
	c.ExpectOK("greeting")
	return c, conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
