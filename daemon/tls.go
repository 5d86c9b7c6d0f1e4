package daemon

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certHolder serves the [tls] certificate to every handshake through
// tls.Config.GetCertificate and swaps it on Reload, so a renewed
// certificate is used by the next handshake while sessions already
// running keep theirs (no listener is touched, nothing is dropped).
type certHolder struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertHolder(certFile, keyFile string) (*certHolder, error) {
	h := &certHolder{certFile: certFile, keyFile: keyFile}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the certificate and key files again. On any error the
// current certificate stays in use.
func (h *certHolder) Reload() error {
	c, err := tls.LoadX509KeyPair(h.certFile, h.keyFile)
	if err != nil {
		// The error names the files and the problem, never key material.
		return fmt.Errorf("tls: loading %s and %s: %w", h.certFile, h.keyFile, err)
	}
	h.cert.Store(&c)
	return nil
}

func (h *certHolder) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// serverTLS is the client-facing TLS configuration, for POP3S and STLS:
// TLS 1.2 at least (RFC 8314 section 4.1) and ALPN "pop3" (RFC 8314
// section 7; a client that offers ALPN without "pop3" is refused, as
// crypto/tls does for any mismatch).
func (h *certHolder) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"pop3"},
		GetCertificate: h.getCertificate,
	}
}

// validKeyPair checks [tls] cert and key: both or neither, and loadable,
// so a bad file is reported at start with its key and line.
func validKeyPair(table, cert, key string) error {
	switch {
	case cert == "" && key == "":
		return nil
	case cert == "":
		return invalid(table+".cert", "must be set together with key")
	case key == "":
		return invalid(table+".key", "must be set together with cert")
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return invalid(table+".cert", "%v", err)
	}
	return nil
}
