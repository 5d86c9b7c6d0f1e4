package pop3front

import "time"

// Observer receives session events, for metrics. Implementations must be
// safe for concurrent use and must not block. A nil Observer is allowed.
type Observer interface {
	SessionStarted()
	// SessionEnded reports how a session ended: "quit", "quit_failed",
	// "timeout", "client_gone", "upstream_error", "too_many_errors",
	// "shutdown" or "error".
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
}
