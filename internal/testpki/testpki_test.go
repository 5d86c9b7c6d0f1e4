package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestLeafVerifies(t *testing.T) {
	ca := New()
	leaf := ca.Leaf(42)
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ServerName, "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: got %v, want nil", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: New().Pool, DNSName: ServerName}); err == nil {
		t.Error("verify against another CA: got nil, want an error")
	}
	if got := cert.SerialNumber.Int64(); got != 42 {
		t.Errorf("serial: got %d, want 42", got)
	}
}

func TestWriteLeafHandshake(t *testing.T) {
	ca := New()
	certFile, keyFile := ca.WriteLeaf(t, t.TempDir(), 7)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"pop3"}})
	go srv.Handshake()
	cl := tls.Client(c2, ca.ClientConfig())
	if err := cl.Handshake(); err != nil {
		t.Fatalf("handshake: got %v, want nil", err)
	}
	if got := cl.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 7 {
		t.Errorf("serial: got %d, want 7", got)
	}
}
