package pop3front

import "time"

// Observer receives session events, for metrics. Implementations must be
// safe for concurrent use and must not block. A nil Observer is allowed.
type Observer interface {
	SessionStarted()
	// SessionEnded reports how a session ended: "quit", "quit_failed",
	// "timeout", "client_gone", "upstream_error", "too_many_errors",
	// "shutdown", "error", "refused" (a connection or user cap) or
	// "tls_failed" (the TLS handshake).
	SessionEnded(end string, d time.Duration)
	// Login reports a login attempt: result is "ok", "failed" or "error";
	// mechanism is "USER", "PLAIN" or "LOGIN".
	Login(mechanism, result string)
	// Command counts one command; name is upper case and one of the
	// commands the server knows, or "UNKNOWN".
	Command(name string)
	// Retrieved counts one message (RETR) or header (TOP) fully sent.
	Retrieved(top bool, octets int64)
	// Update reports the QUIT update: deleted messages and the result
	// ("ok", "failed" or "none" when there was nothing to apply).
	Update(deleted int, result string)
	// AuthPenalty reports a failed-login penalty applied (penalty.go),
	// with the delay imposed on that login attempt.
	AuthPenalty(d time.Duration)
	// TLSHandshake reports a TLS handshake with a client: mode is
	// "implicit" (POP3S) or "stls"; version is the negotiated version's
	// name (tls.VersionName), "" on failure.
	TLSHandshake(mode, version string, err error)
}
