// Command proxy is the POP3-to-IMAP gateway daemon: it serves POP3 sessions
// from an upstream IMAP server, so what an old POP3 device downloads and
// deletes shows up as server-side flags on every other device.
//
//	go run ./proxy                      # reads ./proxy.toml
//	go run ./proxy -config /etc/popbridge/proxy.toml
//	go run ./proxy -check-config -config FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the process exit, so tests can drive it.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "proxy.toml", "configuration file (TOML)")
	checkOnly := fs.Bool("check-config", false, "validate the configuration file and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		return 2
	}

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "config error: %v\n", err)
		return 2
	}
	if *checkOnly {
		fmt.Fprintf(stderr, "%s: configuration OK\n", *configPath)
		return 0
	}

	logger := newLogger(cfg.Log, stderr)
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// SIGHUP re-reads the TLS certificate; running sessions go on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	gw, err := StartGateway(ctx, cfg, logger)
	if err != nil {
		logger.Error("gateway failed to start", "err", err)
		return 1
	}
wait:
	for {
		select {
		case <-hup:
			reloadTLS(gw, logger)
		case <-ctx.Done():
			logger.Info("signal received, shutting down", "grace", cfg.Limits.ShutdownGrace.Duration)
			break wait
		case err := <-gw.Done():
			if err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("listener failed", "err", err)
				gw.Close()
				return 1
			}
			break wait
		}
	}
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownGrace.Duration)
	defer cancel()
	if err := gw.Shutdown(graceCtx); err != nil {
		logger.Warn("grace period over, remaining sessions closed without applying changes", "err", err)
	}
	logger.Info("stopped")
	return 0
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
