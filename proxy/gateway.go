package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/metrics"
	"github.com/popbridge/popbridge/pop3front"
)

// Gateway is one running instance: listeners, the POP3 server, the IMAP
// backend and, in demo mode, the in-memory upstream.
type Gateway struct {
	logger   *slog.Logger
	server   *pop3front.Server
	backend  *imapback.Backend
	listener net.Listener
	tlsLn    net.Listener // [pop3] listen_tls, or nil
	certs    *certHolder  // [tls], or nil
	metrics  *metrics.Metrics
	httpSrv  *http.Server
	demo     *memupstream.Server
	done     chan error
}

// StartGateway builds everything cfg describes and starts serving.
// It returns once the listeners are bound, so a caller can connect at once.
func StartGateway(ctx context.Context, cfg *Config, logger *slog.Logger) (*Gateway, error) {
	gw := &Gateway{logger: logger, metrics: metrics.New(), done: make(chan error, 3)}
	ok := false
	defer func() {
		if !ok {
			gw.Close()
		}
	}()

	upstream := cfg.Upstream
	if upstream.Address == demoAddress {
		demo, err := startDemo(cfg.Demo, logger)
		if err != nil {
			return nil, err
		}
		gw.demo = demo
		upstream.Address = demo.Addr()
		upstream.Security = "none"
	}

	backend, err := newBackend(cfg, upstream, gw.metrics, logger)
	if err != nil {
		return nil, err
	}
	gw.backend = backend
	gw.server = &pop3front.Server{
		Backend:        backend,
		Logger:         logger,
		Observer:       gw.metrics,
		Greeting:       cfg.POP3.Greeting,
		Implementation: cfg.POP3.Implementation,
		Expire:         expireFor(cfg.Policy),
		Limits: pop3front.Limits{
			MaxLineLength:        cfg.Limits.MaxLineLength,
			MaxBadCommands:       cfg.Limits.MaxBadCommands,
			MaxBadCommandsAuthed: cfg.Limits.MaxBadCommandsAuthed,
			AuthTimeout:          cfg.Limits.AuthTimeout.Duration,
			IdleTimeout:          cfg.Limits.IdleTimeout.Duration,
			WriteTimeout:         cfg.Limits.WriteTimeout.Duration,
			LoginTimeout:         cfg.Limits.LoginTimeout.Duration,
			CommitTimeout:        cfg.Limits.CommitTimeout.Duration,
			TLSHandshakeTimeout:  cfg.Limits.TLSHandshakeTimeout.Duration,
			MaxAuthAttempts:      cfg.Limits.MaxAuthAttempts,
			AuthPenaltyInitial:   cfg.Limits.AuthPenaltyInitial.Duration,
			AuthPenaltyMax:       cfg.Limits.AuthPenaltyMax.Duration,
			MaxConnections:       cfg.Limits.MaxConnections,
			MaxConnectionsPerIP:  cfg.Limits.MaxConnectionsPerIP,
			MaxSessionsPerUser:   cfg.Limits.MaxSessionsPerUser,
		},
		Plaintext:       plaintextPolicy(cfg.POP3.AllowPlaintext),
		AllowMasterUser: cfg.POP3.AllowMasterUser,
	}
	if cfg.TLS.Cert != "" {
		if gw.certs, err = newCertHolder(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return nil, err
		}
		gw.server.TLSConfig = gw.certs.serverTLS()
	}

	gw.listener, err = listenPOP3(ctx, cfg, "pop3.listen", cfg.POP3.Listen, logger)
	if err != nil {
		return nil, err
	}
	if cfg.POP3.ListenTLS != "" {
		if gw.tlsLn, err = listenPOP3(ctx, cfg, "pop3.listen_tls", cfg.POP3.ListenTLS, logger); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics.Listen != "" {
		if err := gw.startMetrics(ctx, cfg.Metrics.Listen); err != nil {
			return nil, err
		}
	}

	logger.Info("POP3 gateway listening",
		"pop3", gw.listener.Addr().String(),
		"upstream", upstream.Address, "security", upstream.Security,
		"mailbox", upstream.Mailbox, "delete", cfg.Policy.Delete, "seen", cfg.Policy.Seen)
	go func() {
		err := gw.server.Serve(gw.listener)
		if errors.Is(err, pop3front.ErrServerClosed) {
			err = nil
		}
		gw.done <- err
	}()
	if gw.tlsLn != nil {
		logger.Info("POP3S (implicit TLS) listening", "pop3s", gw.tlsLn.Addr().String())
		go func() {
			err := gw.server.ServeTLS(gw.tlsLn)
			if errors.Is(err, pop3front.ErrServerClosed) {
				err = nil
			}
			gw.done <- err
		}()
	}
	ok = true
	return gw, nil
}

// POP3Addr is the bound POP3 listener address.
func (gw *Gateway) POP3Addr() string { return gw.listener.Addr().String() }

// POP3SAddr is the bound implicit-TLS listener address, "" without one.
func (gw *Gateway) POP3SAddr() string {
	if gw.tlsLn == nil {
		return ""
	}
	return gw.tlsLn.Addr().String()
}

// Done reports a listener that stopped on its own.
func (gw *Gateway) Done() <-chan error { return gw.done }

// Shutdown stops accepting and waits for sessions until ctx ends; those
// still running then are closed without applying their changes.
func (gw *Gateway) Shutdown(ctx context.Context) error {
	var err error
	if gw.server != nil {
		err = gw.server.Shutdown(ctx)
	}
	gw.closeAux()
	return err
}

// Close stops everything at once, applying nothing.
func (gw *Gateway) Close() {
	if gw.server != nil && gw.listener != nil {
		gw.server.Close()
	} else if gw.listener != nil {
		gw.listener.Close()
	}
	if gw.tlsLn != nil {
		gw.tlsLn.Close() // in case ServeTLS never started
	}
	gw.closeAux()
}

func (gw *Gateway) closeAux() {
	if gw.httpSrv != nil {
		gw.httpSrv.Close()
	}
	if gw.demo != nil {
		gw.demo.Close()
	}
}

func (gw *Gateway) startMetrics(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", gw.metrics.Handler())
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", &readiness{probe: gw.backend.Probe, timeout: 5 * time.Second, ttl: 2 * time.Second})
	gw.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := gw.httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			gw.done <- fmt.Errorf("metrics: %w", err)
		}
	}()
	gw.logger.Info("metrics listening", "addr", l.Addr().String())
	return nil
}

func newBackend(cfg *Config, up UpstreamConfig, obs imapback.Observer, logger *slog.Logger) (*imapback.Backend, error) {
	tlsConfig, err := upstreamTLS(up, logger)
	if err != nil {
		return nil, err
	}
	return imapback.New(imapback.Config{
		Address:            up.Address,
		InsecureSkipVerify: up.InsecureSkipVerify,
		Security:           imapback.Security(up.Security),
		TLSConfig:          tlsConfig,
		Mailbox:            up.Mailbox,
		DialTimeout:        up.DialTimeout.Duration,
		CommandTimeout:     up.CommandTimeout.Duration,
		Logger:             logger,
		Observer:           obs,
		Policy: imapback.Policy{
			Delete:         imapback.DeletePolicy(cfg.Policy.Delete),
			Seen:           imapback.SeenPolicy(cfg.Policy.Seen),
			Trash:          cfg.Policy.Trash,
			Archive:        cfg.Policy.Archive,
			Keyword:        cfg.Policy.Keyword,
			FallbackToFlag: cfg.Policy.FallbackToFlag,
		},
	})
}

// upstreamTLS builds the client TLS configuration: system roots or the
// configured CA, host name verified unless the admin disabled it for a lab.
func upstreamTLS(up UpstreamConfig, logger *slog.Logger) (*tls.Config, error) {
	if up.Security == "none" {
		return nil, nil
	}
	serverName := up.ServerName
	if serverName == "" {
		host, _, err := net.SplitHostPort(up.Address)
		if err != nil {
			return nil, fmt.Errorf("upstream.address: %w", err)
		}
		serverName = host
	}
	c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if up.CAFile != "" {
		pem, err := os.ReadFile(up.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_file: %s holds no PEM certificate", up.CAFile)
		}
		c.RootCAs = pool
	}
	if up.InsecureSkipVerify {
		logger.Warn("upstream.insecure_skip_verify is set: the upstream certificate is NOT verified; use this in a lab only")
		c.InsecureSkipVerify = true
	}
	return c, nil
}

// expireFor derives the CAPA EXPIRE value (RFC 2449 section 6.7). The
// gateway itself never removes mail the client did not delete, whatever
// the delete policy, so retrieved messages are kept: NEVER.
func expireFor(PolicyConfig) string { return "NEVER" }
