package gwtest

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/popbridge/popbridge/daemon"
	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
)

// Options configure an in-process gateway. Zero fields keep the daemon's
// defaults (those of an empty configuration file).
type Options struct {
	Upstream string // IMAP host:port (plaintext)
	Mailbox  string // default INBOX
	Policy   imapback.Policy
	Limits   pop3front.Limits
	// DialTimeout and CommandTimeout configure imapback (defaults 5s).
	DialTimeout    time.Duration
	CommandTimeout time.Duration
	Logger         *slog.Logger // nil: discard
	// Wrap, if set, wraps the backend (to inject panics or count calls).
	Wrap func(pop3front.Backend) pop3front.Backend
	// Config, if set, adjusts the configuration last, for keys the fields
	// above do not cover.
	Config func(*daemon.Config)
}

// Gateway is a running in-process gateway: the daemon's own wiring.
type Gateway struct {
	*daemon.Gateway
}

// Start starts a gateway on a free loopback port. Unlike LoadConfig it
// does not validate the configuration, so tests may use timeouts below
// the operational minimums.
func Start(o Options) (*Gateway, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := daemon.DefaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = o.Upstream
	cfg.Upstream.Security = "none"
	// Fault plans count upstream bytes from the start of a connection;
	// an IMAP ID before LOGIN would move them.
	cfg.Upstream.ForwardClientAddress = false
	cfg.Upstream.DialTimeout = daemon.Duration{Duration: orDefault(o.DialTimeout, 5*time.Second)}
	cfg.Upstream.CommandTimeout = daemon.Duration{Duration: orDefault(o.CommandTimeout, 5*time.Second)}
	if o.Mailbox != "" {
		cfg.Upstream.Mailbox = o.Mailbox
	}
	setPolicy(&cfg.Policy, o.Policy)
	setLimits(&cfg.Limits, o.Limits)
	if o.Config != nil {
		o.Config(cfg)
	}
	gw, err := daemon.Start(context.Background(), cfg, daemon.Options{Logger: log, WrapBackend: o.Wrap})
	if err != nil {
		return nil, err
	}
	return &Gateway{gw}, nil
}

// Addr is the POP3 listener's host:port.
func (g *Gateway) Addr() string { return g.POP3Addr() }

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// setPolicy sets the [policy] keys that p gives (its non-zero fields).
func setPolicy(c *daemon.PolicyConfig, p imapback.Policy) {
	set(&c.Delete, p.Delete)
	set(&c.Seen, p.Seen)
	set(&c.Trash, p.Trash)
	set(&c.Archive, p.Archive)
	set(&c.Keyword, p.Keyword)
	set(&c.UIDL, p.UIDL)
	set(&c.RetrievedKeyword, p.RetrievedKeyword)
	set(&c.Window, p.Window)
	c.FallbackToFlag = p.FallbackToFlag
	// UIDLRequired is left at the daemon's default (true): a zero Policy
	// does not require, so it cannot say "given". Options.Config sets it.
	c.HideRetrieved = p.HideRetrieved
	c.MaxMessages = p.MaxMessages
	c.MaxAge = daemon.AgeDuration{Duration: p.MaxAge}
}

// set sets *dst to v unless v is zero.
func set[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// setLimits sets the [limits] keys that l gives (its non-zero fields; a
// negative AuthPenaltyInitial turns the penalty off, as in pop3front).
func setLimits(c *daemon.LimitsConfig, l pop3front.Limits) {
	num := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	dur := func(dst *daemon.Duration, v time.Duration) {
		if v != 0 {
			dst.Duration = v
		}
	}
	num(&c.MaxLineLength, l.MaxLineLength)
	num(&c.MaxBadCommands, l.MaxBadCommands)
	num(&c.MaxBadCommandsAuthed, l.MaxBadCommandsAuthed)
	num(&c.MaxAuthAttempts, l.MaxAuthAttempts)
	num(&c.MaxConnections, l.MaxConnections)
	num(&c.MaxConnectionsPerIP, l.MaxConnectionsPerIP)
	num(&c.MaxSessionsPerUser, l.MaxSessionsPerUser)
	dur(&c.AuthTimeout, l.AuthTimeout)
	dur(&c.IdleTimeout, l.IdleTimeout)
	dur(&c.WriteTimeout, l.WriteTimeout)
	dur(&c.LoginTimeout, l.LoginTimeout)
	dur(&c.CommitTimeout, l.CommitTimeout)
	dur(&c.TLSHandshakeTimeout, l.TLSHandshakeTimeout)
	dur(&c.AuthPenaltyInitial, l.AuthPenaltyInitial)
	dur(&c.AuthPenaltyMax, l.AuthPenaltyMax)
}
