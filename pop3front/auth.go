package pop3front

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// cmdUSER: RFC 1939 section 7. The name is the rest of the line, as
// given. The reply never tells whether the user exists (invariant 7).
func (s *session) cmdUSER(args []byte) error {
	if len(args) == 0 {
		return s.badCommand(textMissingUser)
	}
	s.user, s.hasUser = string(args), true
	s.ok("Send PASS.")
	return nil
}

// cmdPASS: RFC 1939 section 7. The password is the rest of the line:
// it may contain spaces. A failed PASS forgets the USER (RFC 1939: the
// client starts over).
func (s *session) cmdPASS(args []byte) error {
	if !s.hasUser {
		return s.badCommand(textUserFirst)
	}
	user := s.user
	s.user, s.hasUser = "", false
	return s.login("USER", "", user, string(args))
}

// validCredential reports whether s may be passed to the backend: not
// empty, valid UTF-8, no control characters (NUL, CR, LF never reach the
// upstream, invariant 8).
func validCredential(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// login authenticates with the backend and enters TRANSACTION. Every
// kind of bad credential gets the same reply (invariant 7); failed logins
// count as bad commands, so one connection gets MaxBadCommands tries.
func (s *session) login(mech, authz, user, pass string) error {
	s.hasUser = false
	if !validCredential(user) || !validCredential(pass) || authz != "" && !validCredential(authz) {
		return s.authFailed(mech, user, "")
	}
	req := &LoginRequest{
		Username:  user,
		Password:  pass,
		AuthzID:   authz,
		Mechanism: mech,
		Client:    s.conn.RemoteAddr(),
		TLS:       s.isTLS(),
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.lim.LoginTimeout)
	drop, err := s.srv.Backend.Login(ctx, req)
	cancel()
	if err == nil && drop == nil {
		err = errors.New("backend returned no maildrop")
	}
	if err == nil {
		err = checkSnapshot(drop.Messages())
	}
	if err != nil {
		if drop != nil {
			s.safeClose("maildrop", drop)
		}
		var pe *Error
		switch {
		case errors.Is(err, ErrAuthFailed), errors.As(err, &pe) && pe.Code == CodeAuth:
			return s.authFailed(mech, user, redact(err, pass))
		}
		s.obs.Login(mech, "error")
		s.log.Warn("pop3 login error", "client", s.clientAddr(), "user", user,
			"mechanism", mech, "error", redact(err, pass))
		s.errReply(err)
		return nil
	}
	if !s.enterTransaction() {
		s.safeClose("maildrop", drop)
		s.obs.Login(mech, "error")
		s.err(textShuttingDown)
		return s.final("shutdown", nil)
	}
	s.obs.Login(mech, "ok")
	s.drop, s.authUser, s.mech = drop, user, mech
	s.msgs = drop.Messages()
	s.deleted = make([]bool, len(s.msgs))
	s.retrieved = make([]bool, len(s.msgs))
	s.bad = 0
	s.upgrade = true
	s.log.Debug("pop3 login", "client", s.clientAddr(), "user", user, "mechanism", mech, "messages", len(s.msgs))
	s.ok("Logged in.")
	return nil
}

// authFailed answers a failed login with the one text every failure
// gets, and counts it as a bad command.
func (s *session) authFailed(mech, user string, logErr string) error {
	s.authFails++
	s.obs.Login(mech, "failed")
	attrs := []any{"client", s.clientAddr(), "user", safeText(user, 128), "mechanism", mech}
	if logErr != "" {
		attrs = append(attrs, "error", logErr)
	}
	s.log.Info("pop3 login failed", attrs...)
	if s.countBad() {
		s.err(textAuthFailed)
		return s.final("too_many_errors", nil)
	}
	s.err(textAuthFailed)
	return nil
}

// redact returns err's text with the password cut out, in case a backend
// quoted it.
func redact(err error, pass string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if len(pass) >= 3 {
		msg = strings.ReplaceAll(msg, pass, "<redacted>")
	}
	return msg
}

// checkSnapshot enforces what the Maildrop contract promises and the
// clients rely on (invariant 5, RFC 1939 section 7): sizes not negative,
// UIDLs of 1-70 octets in 0x21-0x7E, all distinct. A UIDL that broke
// these could break POP3 framing or make a client skip or delete the
// wrong message.
func checkSnapshot(msgs []MessageInfo) error {
	seen := make(map[string]struct{}, len(msgs))
	for i, m := range msgs {
		if m.Size < 0 {
			return snapshotError(i, "negative size")
		}
		if len(m.UIDL) < 1 || len(m.UIDL) > 70 {
			return snapshotError(i, "UIDL length out of range")
		}
		for j := 0; j < len(m.UIDL); j++ {
			if c := m.UIDL[j]; c < 0x21 || c > 0x7e {
				return snapshotError(i, "UIDL has invalid characters")
			}
		}
		if _, dup := seen[m.UIDL]; dup {
			return snapshotError(i, "duplicate UIDL")
		}
		seen[m.UIDL] = struct{}{}
	}
	return nil
}

type snapshotErr struct {
	num    int
	reason string
}

func (e *snapshotErr) Error() string {
	return "pop3: invalid maildrop snapshot: message " + strconv.Itoa(e.num) + ": " + e.reason
}

func snapshotError(idx int, reason string) error { return &snapshotErr{idx + 1, reason} }

// logBackendError logs a failed maildrop call. Backend errors may carry
// upstream text; they go to the log, never to the client.
func (s *session) logBackendError(op string, err error) {
	s.log.Warn("pop3 backend error", "op", op, "client", s.clientAddr(), "user", s.authUser, "error", err)
}
