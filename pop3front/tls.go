package pop3front

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// startTLS runs the server side of a TLS handshake on the session's
// connection (implicit TLS, RFC 8314, or after STLS, RFC 2595 section
// 4) within Limits.TLSHandshakeTimeout and never past the AUTHORIZATION
// deadline, then makes the session speak over TLS with fresh buffers:
// nothing read before the handshake is ever read after it.
func (s *session) startTLS() error {
	deadline := time.Now().Add(s.lim.TLSHandshakeTimeout)
	if ad := s.authDeadline(); ad.Before(deadline) {
		deadline = ad
	}
	tc := tls.Server(s.conn, s.srv.TLSConfig)
	s.conn.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	mode, version := "stls", ""
	if s.implicitTLS {
		mode = "implicit"
	}
	if err == nil {
		version = tls.VersionName(tc.ConnectionState().Version)
	}
	s.obs.TLSHandshake(mode, version, err)
	if err != nil {
		return err
	}
	s.conn.SetDeadline(time.Time{})
	s.conn.SetReadDeadline(s.authDeadline()) // still absolute
	s.conn = tc
	s.cw.conn = tc
	s.br = bufio.NewReaderSize(tc, readBufferSize(s.lim.MaxLineLength))
	s.lr = newLineReader(s.br, s.lim.MaxLineLength)
	s.bw.Reset(s.cw) // empty: flushed before the handshake
	return nil
}

// tlsFailed ends a session whose handshake failed: no reply (there is no
// channel for one), just the close and a log line.
func (s *session) tlsFailed(err error) *sessionEnd {
	reason := "tls_failed"
	if s.srv.inShutdown.Load() {
		reason = "shutdown"
	}
	s.log.Debug("pop3 TLS handshake failed", "client", s.clientAddr(), "err", err)
	return &sessionEnd{reason: reason, err: fmt.Errorf("tls handshake: %w", err), noFlush: true}
}
