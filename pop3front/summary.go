package pop3front

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
)

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
