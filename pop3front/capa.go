package pop3front

// cmdCAPA: RFC 2449 section 5. It lists exactly what this server
// implements in the current state: USER and SASL only in AUTHORIZATION,
// where they can be used.
func (s *session) cmdCAPA(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	auth := s.state() == stateAuth
	w := s.bw
	w.WriteString("+OK Capability list follows\r\nTOP\r\nUIDL\r\n")
	if auth {
		w.WriteString("USER\r\n")
	}
	w.WriteString("RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n")
	if auth {
		w.WriteString("SASL " + saslMechanisms + "\r\n")
	}
	if v := s.srv.Expire; v != "" {
		// RFC 2449 section 6.7: "EXPIRE" SP (days / "NEVER") [SP "USER"].
		w.WriteString("EXPIRE " + safeText(v, 64) + "\r\n")
	}
	if v := s.srv.Implementation; v != "" {
		w.WriteString("IMPLEMENTATION " + safeText(v, 128) + "\r\n")
	}
	w.Write(terminator)
	return nil
}
