package pop3front

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// cmdUSER: RFC 1939 section 7. The name is the rest of the line, as
// given. The reply never tells whether the user exists (docs/design.md, invariant 7).
func (s *session) cmdUSER(args []byte) error {
	if !s.plaintextOK() {
		return s.plaintextRefused("USER")
	}
	if len(args) == 0 {
		return s.badCommand(textMissingUser)
	}
	s.user, s.hasUser = string(args), true
	s.traceUser(s.user)
	s.ok("Send PASS.")
	return nil
}

// cmdPASS: RFC 1939 section 7. The password is the rest of the line:
// it may contain spaces. A failed PASS forgets the USER (RFC 1939: the
// client starts over).
func (s *session) cmdPASS(args []byte) error {
	if !s.plaintextOK() {
		return s.plaintextRefused("USER")
	}
	if !s.hasUser {
		return s.badCommand(textUserFirst)
	}
	user := s.user
	s.user, s.hasUser = "", false
	return s.login("USER", "", user, string(args))
}

// validCredential reports whether s may be passed to the backend: not
// empty, valid UTF-8, no control characters (NUL, CR, LF never reach the
// upstream: docs/design.md, invariant 8).
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

// plaintextRefused answers a password command the cleartext policy
// refuses (plaintext.go). It counts as a bad command; nothing reaches the
// Backend.
func (s *session) plaintextRefused(mech string) error {
	s.log.Info("pop3 plaintext login refused", "ip", s.ipString(), "client", s.clientAddr(), "mechanism", mech)
	return s.badCommand(textPlaintextRefused)
}

// Reasons in the "pop3 login failed" log line.
const (
	reasonBadCredentials = "bad_credentials"    // the Backend said so
	reasonInvalidChars   = "invalid_characters" // never sent to the Backend
	reasonAuthzRefused   = "authzid_refused"    // master-user login not enabled
)

// login authenticates with the backend and enters TRANSACTION. Every
// kind of bad credential gets the same reply after the same penalty
// delay (docs/design.md, invariant 7; penalty.go); one connection gets MaxAuthAttempts
// failures.
func (s *session) login(mech, authz, user, pass string) error {
	s.hasUser = false
	s.traceUser(user)
	if end := s.waitPenalty(); end != nil {
		return end
	}
	if !validCredential(user) || !validCredential(pass) || authz != "" && !validCredential(authz) {
		return s.authFailed(mech, user, pass, reasonInvalidChars, "")
	}
	if authz == user {
		authz = "" // acting as oneself is no master-user login
	}
	if authz != "" && !s.srv.AllowMasterUser {
		return s.authFailed(mech, user, pass, reasonAuthzRefused, "")
	}
	req := &LoginRequest{
		Username:  user,
		Password:  pass,
		AuthzID:   authz,
		Mechanism: mech,
		Client:    s.clientNetAddr(),
		Local:     s.raw.LocalAddr(),
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
			return s.authFailed(mech, user, pass, reasonBadCredentials, redact(err, pass))
		}
		s.obs.Login(mech, "error")
		s.log.Warn("pop3 login error", "client", s.clientAddr(), "user", user,
			"mechanism", mech, "err", redact(err, pass))
		s.errReply(err)
		return nil
	}
	// The per-user cap counts logged-in sessions only, so nobody can lock
	// a user out by failing logins in their name.
	who := authz
	if who == "" {
		who = user
	}
	if uk := userKey(who); s.srv.connCounts().acquireUser(uk, &s.lim) {
		s.userSlot = uk
	} else {
		s.safeClose("maildrop", drop)
		s.obs.Login(mech, "error")
		s.log.Info("pop3 login refused: too many sessions", "ip", s.ipString(), "client", s.clientAddr(),
			"user", safeText(who, 128), "limit", s.lim.MaxSessionsPerUser)
		s.err(textUserInUse)
		return s.final("refused", nil)
	}
	if !s.enterTransaction() {
		s.safeClose("maildrop", drop)
		s.obs.Login(mech, "error")
		s.err(textShuttingDown)
		return s.final("shutdown", nil)
	}
	s.obs.Login(mech, "ok")
	s.drop, s.authUser, s.mech = drop, who, mech
	s.msgs = drop.Messages()
	s.deleted = make([]bool, len(s.msgs))
	s.retrieved = make([]bool, len(s.msgs))
	s.bad = 0
	s.log.Debug("pop3 login", "client", s.clientAddr(), "user", user, "mechanism", mech, "messages", len(s.msgs))
	s.ok("Logged in.")
	return nil
}

// authFailed answers a failed login with the one text every failure
// gets, records it for the address's penalty, and ends the session at
// MaxAuthAttempts.
//
// Its log line is what fail2ban matches (deploy/fail2ban/popbridge.conf):
// the message, then ip= first, so no client-chosen value (the user name
// is sanitised and quoted by the handler) can come before it. Never the
// password.
func (s *session) authFailed(mech, user, pass, reason, logErr string) error {
	s.authFails++
	s.srv.penalties().fail(s.ip, user, pass)
	s.obs.Login(mech, "failed")
	attrs := []any{"ip", s.ipString(), "client", s.clientAddr(), "user", safeText(user, 128),
		"mechanism", mech, "reason", reason}
	if logErr != "" {
		attrs = append(attrs, "err", logErr)
	}
	s.log.Info("pop3 login failed", attrs...)
	s.err(textAuthFailed)
	if s.authFails >= s.lim.MaxAuthAttempts {
		return s.final("too_many_errors", nil)
	}
	return nil
}

// waitPenalty delays a login attempt by the client address's penalty
// (penalty.go), before anything is decided. A non-nil result ends the
// session (shutdown meanwhile).
func (s *session) waitPenalty() error {
	d := s.srv.penalties().delay(s.ip)
	if d <= 0 {
		return nil
	}
	s.obs.AuthPenalty(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
		return &sessionEnd{reason: "shutdown", err: s.ctx.Err(), noFlush: true}
	}
	if s.srv.inShutdown.Load() {
		s.err(textShuttingDown)
		return s.final("shutdown", nil)
	}
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
// clients rely on (docs/design.md, invariant 5; RFC 1939 section 7): sizes not negative,
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
	s.log.Warn("pop3 backend error", "op", op, "client", s.clientAddr(), "user", s.authUser, "err", err)
}
