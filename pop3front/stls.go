package pop3front

const (
	textSTLSBegin     = "Begin TLS negotiation."
	textSTLSActive    = "TLS already active."
	textSTLSPipelined = "STLS must be the last command sent before TLS."
)

// cmdSTLS: RFC 2595 section 4. Only in AUTHORIZATION (the command
// table), only when TLS is configured, only once, never on an implicit
// TLS connection.
//
// docs/design.md, invariant 6: bytes the client sent after STLS in the clear must never
// be read as commands (a man in the middle could have appended them). If
// any are already buffered, the client is told so and the connection
// closed; if they arrive later the TLS handshake reads them as a bad
// record and fails. And nothing learnt in the clear survives: a USER
// given before STLS is forgotten, so PASS after it is refused.
func (s *session) cmdSTLS(args []byte) error {
	switch {
	case s.srv.TLSConfig == nil:
		return s.badCommand(textUnknown)
	case s.isTLS():
		return s.badCommand(textSTLSActive)
	}
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	if s.br.Buffered() > 0 {
		s.log.Info("pop3 STLS with pipelined data refused", "ip", s.ipString(), "client", s.clientAddr())
		s.err(textSTLSPipelined)
		return s.final("too_many_errors", nil)
	}
	s.ok(textSTLSBegin)
	if err := s.flush(); err != nil {
		return s.ioEnd(err)
	}
	s.user, s.hasUser = "", false
	if err := s.startTLS(); err != nil {
		return s.tlsFailed(err)
	}
	return nil
}
