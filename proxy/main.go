// Command proxy is the POP3-to-IMAP gateway daemon: it serves POP3 sessions
// from an upstream IMAP server, so what an old POP3 device downloads and
// deletes shows up as server-side flags on every other device.
//
//	go run ./proxy                      # reads ./proxy.toml
//	go run ./proxy -config /etc/popbridge/proxy.toml
//	go run ./proxy -check-config -config FILE
//	go run ./proxy -config FILE device add alice@example.org phone
//	go run ./proxy keygen /etc/popbridge/vault.key
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
	"slices"
	"strings"
	"syscall"

	"github.com/popbridge/popbridge/daemon"
	"github.com/popbridge/popbridge/vault"
)

func main() {
	os.Exit(runIO(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process exit, so tests can drive it.
func run(args []string, stderr io.Writer) int {
	return runIO(args, os.Stdin, os.Stdout, stderr)
}

// runIO is run with the admin commands' input and output.
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, configPath, checkOnly, debugWire := newFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 && fs.Arg(0) == "keygen" {
		return keygen(fs.Args()[1:], stdout, stderr)
	}
	if fs.NArg() > 0 && !slices.Contains(daemon.AdminCommands, fs.Arg(0)) {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		return 2
	}

	cfg, err := daemon.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "config error: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return daemon.RunAdmin(ctx, cfg, fs.Args(), stdin, stdout, stderr)
	}
	if *checkOnly {
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(stderr, w)
		}
		fmt.Fprintf(stderr, "%s: configuration OK\n", *configPath)
		return 0
	}

	cfg.DebugWire = *debugWire
	level := new(slog.LevelVar)
	logger := daemon.NewLogger(cfg.Log, level, stderr)
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// SIGHUP reloads the configuration for new sessions; running
	// sessions go on with theirs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	gw, err := daemon.Start(ctx, cfg, daemon.Options{Logger: logger, LogLevel: level})
	if err != nil {
		logger.Error("gateway failed to start", "err", err)
		return 1
	}
	if cfg.DebugWire != "" {
		logger.Warn("wire tracing on: POP3 and IMAP lines are logged (credentials redacted, message contents summarised)", "user", cfg.DebugWire)
	}
wait:
	for {
		select {
		case <-hup:
			reload(ctx, gw, *configPath, logger)
		case <-ctx.Done():
			logger.Info("signal received, shutting down", "grace", gw.ShutdownGrace())
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
	graceCtx, cancel := context.WithTimeout(context.Background(), gw.ShutdownGrace())
	defer cancel()
	if err := gw.Shutdown(graceCtx); err != nil {
		logger.Warn("grace period over, remaining sessions closed without applying changes", "err", err)
	}
	logger.Info("stopped")
	return 0
}

// newFlagSet declares the command line, as popbridge(8) and the README
// document it (a test holds them to it).
func newFlagSet(stderr io.Writer) (fs *flag.FlagSet, configPath *string, checkOnly *bool, debugWire *string) {
	fs = flag.NewFlagSet("popbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath = fs.String("config", "proxy.toml", "configuration `file` (TOML)")
	checkOnly = fs.Bool("check-config", false, "validate the configuration file and exit: 0 valid, 2 invalid")
	debugWire = fs.String("debug-wire", "", "trace POP3 and IMAP lines (credentials redacted) of this `user`, or \"*\" for every session")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: popbridge [-config FILE] [-check-config] [-debug-wire USER]
       popbridge [-config FILE] COMMAND ...    (with [auth] mode = "vault")
       popbridge keygen PATH

popbridge serves POP3 sessions from an IMAP server. It reads FILE,
serves until SIGTERM or SIGINT, and re-reads FILE on SIGHUP.

Commands, on the vault store while the gateway runs:
`+adminUsage()+`
`)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nSee popbridge(8) and the README for the configuration keys.\n")
	}
	return fs, configPath, checkOnly, debugWire
}

// reload re-reads the configuration file and applies it to new sessions.
// A file that does not validate is refused and the running configuration
// stays.
func reload(ctx context.Context, gw *daemon.Gateway, path string, logger *slog.Logger) {
	logger.Info("SIGHUP: reloading configuration", "file", path)
	cfg, err := daemon.LoadConfig(path)
	if err == nil {
		err = gw.Reload(ctx, cfg)
	}
	if err != nil {
		logger.Error("configuration reload refused; the running configuration stays", "file", path, "err", err)
	}
}

// keygen writes a new vault key file; it never overwrites one.
func keygen(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: popbridge keygen PATH")
		return 2
	}
	if err := vault.GenerateKeyFile(args[0]); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote a new vault key to %s (mode 0600). Keep a copy: without it the stored grants cannot be read.\n", args[0])
	return 0
}

// adminUsage is the vault's command list with keygen added.
func adminUsage() string {
	var b strings.Builder
	added := false
	for _, l := range strings.Split(vault.AdminUsage, "\n") {
		if l == "usage:" {
			continue
		}
		if l == "" && !added {
			b.WriteString("  keygen PATH                              write a new vault key file (mode 0600)\n")
			added = true
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
