package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testpki"
)

// The process tests talk to the binary over the wire; these helpers are
// the small part of the daemon package's test helpers they need.

type pop3Client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialPOP3(t *testing.T, addr string) *pop3Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &pop3Client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expectOK("greeting")
	return c
}

func (c *pop3Client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

func (c *pop3Client) expectOK(what string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("%s: %q", what, l)
	}
	return l
}

func (c *pop3Client) cmd(line string) string {
	c.t.Helper()
	fmt.Fprintf(c.conn, "%s\r\n", line)
	return c.line()
}

// logBuffer collects log output written from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
func dialPOP3S(t *testing.T, addr string, ca *testpki.CA) (c *pop3Client, serial int64) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ca.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c = &pop3Client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expectOK("greeting")
	return c, conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
