package daemon

import (
	"net"
	"testing"
)

// freePort returns a loopback address that was free a moment ago, for a
// listener a test configures by address.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
