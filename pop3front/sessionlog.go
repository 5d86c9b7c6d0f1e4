package pop3front

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"time"
)

// logEnd writes the session's one summary line, "pop3 session ended":
// what the session did, how it ended, and the maildrop's own attributes
// (info, sessioninfo.go).
func (s *session) logEnd(end *sessionEnd, d time.Duration, info []slog.Attr) {
	level := slog.LevelInfo
	switch end.reason {
	case "error", "upstream_error", "quit_failed":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("client", s.clientAddr()),
		slog.String("user", s.authUser),
		slog.Duration("duration", d),
		slog.Int("listed", len(s.msgs)),
		slog.Int("retrieved", s.nRetrieved),
		slog.Int64("retrieved_bytes", s.retrBytes),
		slog.Int("top", s.nTop),
		slog.Int("deleted", s.nDeleted),
		slog.Int("auth_failures", s.authFails),
		slog.String("tls", tlsVersion(s.conn)),
		slog.String("update", cmp.Or(s.update, "not_reached")),
		slog.String("uidl_hash", uidlHash(s.msgs)),
		slog.String("end", end.reason),
	}
	if end.err != nil {
		attrs = append(attrs, slog.String("err", end.err.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "pop3 session ended", append(attrs, info...)...)
}

// tlsVersion names the TLS version protecting conn, or "none".
func tlsVersion(conn net.Conn) string {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return "none"
	}
	return tls.VersionName(tc.ConnectionState().Version)
}

// uidlHash is a short digest of the session's UIDL list, in message
// order, for the session summary: when it changes between two sessions
// of a device with no new mail, the UIDLs churned and the device will
// download everything again. "" for an empty or unknown list.
func uidlHash(msgs []MessageInfo) string {
	if len(msgs) == 0 {
		return ""
	}
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.UIDL))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
