package pop3front

import (
	"bytes"
	"encoding/base64"
)

// Mechanisms offered by AUTH and CAPA SASL, in order.
const saslMechanisms = "PLAIN LOGIN"

// LOGIN's challenges, base64 of "Username:" and "Password:" (the
// draft-murchison-sasl-login convention every client expects).
const (
	loginUserChallenge = "VXNlcm5hbWU6"
	loginPassChallenge = "UGFzc3dvcmQ6"
)

// cmdAUTH: RFC 5034. Without an argument it lists the mechanisms usable
// now as a multi-line reply (none where the cleartext policy refuses
// passwords): Thunderbird sends a bare AUTH and takes "+OK" plus a list,
// or "-ERR". SASL payloads are never logged or echoed.
func (s *session) cmdAUTH(args []byte) error {
	a, n := splitArgs(args)
	switch {
	case n == 0:
		if s.tracing {
			s.trace("S", "+OK (mechanism list)")
		}
		if s.plaintextOK() {
			s.bw.WriteString("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")
		} else {
			s.bw.WriteString("+OK\r\n.\r\n")
		}
		return nil
	case n > 2:
		return s.badCommand(textNoArgs)
	}
	mech := a[0]
	initial, hasInitial := a[1], n == 2
	var run func(s *session, initial []byte, hasInitial bool) error
	switch {
	case bytes.EqualFold(mech, []byte("PLAIN")):
		run = (*session).authPlain
	case bytes.EqualFold(mech, []byte("LOGIN")):
		run = (*session).authLogin
	default:
		return s.badCommand(textUnsupportedMec)
	}
	// Refused before any challenge, and an initial response is not even
	// decoded: the password is already on the wire, but goes no further.
	if !s.plaintextOK() {
		return s.plaintextRefused(string(bytes.ToUpper(mech)))
	}
	return run(s, initial, hasInitial)
}

// authPlain runs SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd,
// exactly two NULs, authcid not empty. An authzid other than the authcid
// is refused unless Server.AllowMasterUser (login decides).
func (s *session) authPlain(initial []byte, hasInitial bool) error {
	var msg []byte
	if hasInitial {
		var ok bool
		if msg, ok = decodeSASL(initial); !ok {
			return s.badCommand(textBadBase64)
		}
	} else {
		var end error
		var ok bool
		msg, ok, end = s.saslStep("")
		if !ok {
			return end
		}
	}
	authz, authc, pass, ok := parsePlain(msg)
	if !ok {
		clear(msg)
		return s.badCommand(textBadSASL)
	}
	z, c, p := string(authz), string(authc), string(pass)
	clear(msg) // leave no decoded password in the buffer
	return s.login("PLAIN", z, c, p)
}

// authLogin runs SASL LOGIN: an optional initial response holding the
// user name, then a challenge for what is missing.
func (s *session) authLogin(initial []byte, hasInitial bool) error {
	var user []byte
	if hasInitial {
		var ok bool
		if user, ok = decodeSASL(initial); !ok {
			return s.badCommand(textBadBase64)
		}
	} else {
		var end error
		var ok bool
		if user, ok, end = s.saslStep(loginUserChallenge); !ok {
			return end
		}
	}
	pass, ok, end := s.saslStep(loginPassChallenge)
	if !ok {
		return end
	}
	p := string(pass)
	clear(pass)
	return s.login("LOGIN", "", string(user), p)
}

// saslStep sends a continuation ("+ " challenge) and reads the client's
// response line, bounded like a command line. It returns the decoded
// response, or ok=false after it has already answered (cancel with "*",
// bad base64) or when the session must end (err non-nil).
func (s *session) saslStep(challenge string) (resp []byte, ok bool, err error) {
	s.bw.WriteString("+ ")
	s.bw.WriteString(challenge)
	s.bw.Write(crlf)
	s.traceStep("S", "+ "+challenge)
	if !s.lr.hasLine() {
		if err := s.flush(); err != nil {
			return nil, false, s.ioEnd(err)
		}
	}
	line, err := s.lr.readLine()
	if err != nil {
		return nil, false, s.readFailed(err)
	}
	s.traceStep("C", "<redacted SASL response>")
	if len(line) == 1 && line[0] == '*' {
		// RFC 5034 section 4: the client cancelled.
		s.err(textCancelled)
		return nil, false, nil
	}
	resp, ok = decodeSASL(line)
	if !ok {
		return nil, false, s.badCommand(textBadBase64)
	}
	return resp, true, nil
}

// parsePlain splits a PLAIN message (RFC 4616 section 2): exactly two
// NULs, a non-empty authcid. The results alias msg.
func parsePlain(msg []byte) (authz, authc, pass []byte, ok bool) {
	if bytes.Count(msg, []byte{0}) != 2 {
		return nil, nil, nil, false
	}
	authz, rest, _ := bytes.Cut(msg, []byte{0})
	authc, pass, _ = bytes.Cut(rest, []byte{0})
	return authz, authc, pass, len(authc) > 0
}

// decodeSASL decodes a base64 SASL response; "=" is the empty response
// (RFC 5034 section 4). Unpadded input is tolerated.
func decodeSASL(b []byte) ([]byte, bool) {
	if len(b) == 1 && b[0] == '=' {
		return []byte{}, true
	}
	if len(b) == 0 || bytes.ContainsAny(b, "\r\n\x00 ") {
		// The decoder would skip CR and LF; we want them refused.
		return nil, false
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(b))) // >= StdEncoding's
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		if bytes.IndexByte(b, '=') >= 0 {
			return nil, false
		}
		if n, err = base64.RawStdEncoding.Decode(out, b); err != nil {
			return nil, false
		}
	}
	return out[:n], true
}
