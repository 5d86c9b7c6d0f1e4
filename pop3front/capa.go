package pop3front

import "strings"

// Expirer is an optional interface of a Maildrop (tested with a type
// assertion, like io.WriterTo): a maildrop whose retention depends on
// its user implements it. Expire returns the CAPA EXPIRE value for this
// session's user (RFC 2449 section 6.7: "NEVER" or a number of days,
// without "USER"); "" announces none.
type Expirer interface {
	Expire() string
}

// cmdCAPA: RFC 2449 section 5. It lists exactly what this server
// implements in the current state and can be used now: USER and SASL
// only in AUTHORIZATION and only where the cleartext policy lets a
// password through (RFC 2595 section 4: they appear after STLS); STLS
// only in AUTHORIZATION before TLS.
func (s *session) cmdCAPA(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	auth := s.state() == stateAuth
	passwords := auth && s.plaintextOK()
	w := s.bw
	w.WriteString("+OK Capability list follows\r\nTOP\r\nUIDL\r\n")
	if passwords {
		w.WriteString("USER\r\n")
	}
	w.WriteString("RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n")
	if auth && s.srv.TLSConfig != nil && !s.isTLS() {
		w.WriteString("STLS\r\n")
	}
	if passwords {
		// Both mechanisms carry the password as it is; with more
		// mechanisms this would list the ones usable here (and the line
		// would be left out when none is).
		w.WriteString("SASL " + saslMechanisms + "\r\n")
	}
	if v := s.expire(); v != "" {
		// RFC 2449 section 6.7: "EXPIRE" SP (days / "NEVER") [SP "USER"].
		w.WriteString("EXPIRE " + safeText(v, 64) + "\r\n")
	}
	if v := s.srv.Implementation; v != "" {
		w.WriteString("IMPLEMENTATION " + safeText(v, 128) + "\r\n")
	}
	w.Write(terminator)
	return nil
}

// expire is the EXPIRE value for the current state (RFC 2449 section
// 6.7): Server.Expire before login; after it the user's own value, from
// the maildrop when it is an Expirer, else Server.Expire without its
// "USER" token, which belongs to the AUTHORIZATION state only.
func (s *session) expire() string {
	v := s.srv.Expire
	if s.state() != stateTrans {
		return v
	}
	if e, ok := s.drop.(Expirer); ok {
		return e.Expire()
	}
	return strings.TrimSuffix(v, " USER")
}
