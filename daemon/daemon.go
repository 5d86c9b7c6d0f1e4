// Package daemon is the POP3-to-IMAP gateway daemon without its process:
// it turns a Config into listeners, a pop3front.Server over an
// imapback.Backend, metrics and health endpoints, and applies reloads
// and graceful shutdown. Command proxy wraps it with flags, signals and
// exit codes; tests and the benchmark start the same wiring in-process.
//
//	cfg, err := daemon.LoadConfig("proxy.toml")
//	gw, err := daemon.Start(ctx, cfg, daemon.Options{Logger: logger})
//	...
//	err = gw.Reload(ctx, newCfg) // new sessions only
//	err = gw.Shutdown(graceCtx)  // or gw.Close()
package daemon

import (
	"io"
	"log/slog"
	"time"

	"github.com/popbridge/popbridge/pop3front"
)

// Options are what a Gateway takes from its caller rather than from the
// configuration file.
type Options struct {
	// Logger receives every log line; required.
	Logger *slog.Logger
	// LogLevel, when set, is the level Logger's handler obeys: Reload
	// sets it from [log] level. nil when the caller manages levels.
	LogLevel *slog.LevelVar
	// WrapBackend, when set, wraps the backend of every generation
	// (after username modifiers), for tests that inject failures or
	// count calls. It must return a Backend that honours pop3front's
	// contract; the daemon itself never sets it.
	WrapBackend func(pop3front.Backend) pop3front.Backend
}

// DefaultConfig returns a configuration holding every default, what an
// empty file gives. Callers that build a Config in code start from it.
func DefaultConfig() *Config {
	c := defaultConfig()
	return &c
}

// NewLogger returns the logger [log] describes, writing to w, with its
// level held in level so that Reload can change it (Options.LogLevel).
// c must have passed Validate.
func NewLogger(c LogConfig, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Level)) // validated already
	level.Set(lv)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ShutdownGrace is [limits] shutdown_grace of the running configuration:
// how long a caller should let Shutdown wait before sessions are cut.
func (gw *Gateway) ShutdownGrace() time.Duration { return gw.shutdownGrace() }

// MetricsAddr is the bound [metrics] listen address (/metrics, /healthz,
// /readyz), "" when metrics are off.
func (gw *Gateway) MetricsAddr() string { return gw.metricsAddr }

func (gw *Gateway) wrapped(b pop3front.Backend) pop3front.Backend {
	if gw.wrap == nil {
		return b
	}
	return gw.wrap(b)
}
