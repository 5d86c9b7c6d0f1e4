// Package daemon is the POP3-to-IMAP gateway daemon without its process:
// it turns a Config into listeners, a pop3front.Server over an
// imapback.Backend, metrics and health endpoints, and applies reloads and
// graceful shutdown. Command proxy wraps it with flags, signals and exit
// codes; tests and benchmarks start it in-process.
package daemon

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Options are what a Gateway takes from its caller rather than from the
// configuration file.
type Options struct {
	// Logger receives every log line; required.
	Logger *slog.Logger
	// LogLevel, when set, is the level Logger's handler obeys: Reload
	// sets it from [log] level. nil when the caller manages levels.
	LogLevel *slog.LevelVar
}

// Start builds everything cfg describes and starts serving. It returns
// once the listeners are bound, so a caller can connect at once. cfg must
// have passed Validate (LoadConfig does it) and is not modified; the
// caller must end the Gateway with Shutdown or Close.
func Start(ctx context.Context, cfg *Config, opts Options) (*Gateway, error) {
	gw, err := StartGateway(ctx, cfg, opts.Logger)
	if err != nil {
		return nil, err
	}
	gw.level = opts.LogLevel
	return gw, nil
}

// ShutdownGrace is [limits] shutdown_grace of the running configuration:
// how long Shutdown should be given before sessions are cut.
func (gw *Gateway) ShutdownGrace() time.Duration { return gw.shutdownGrace() }

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
