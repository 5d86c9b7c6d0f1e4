package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/metrics"
	"github.com/popbridge/popbridge/pop3front"
)

// Gateway is one running instance: listeners, the POP3 server and IMAP
// backend built from the current configuration, and, in demo mode, the
// in-memory upstream.
//
// A reload (SIGHUP) builds a new generation (server, backend, TLS
// certificates, PROXY protocol settings) from the new file and makes it
// serve new sessions; sessions already running finish on the generation
// they started with.
type Gateway struct {
	logger   *slog.Logger
	level    *slog.LevelVar // nil when the caller manages log levels
	metrics  *metrics.Metrics
	httpSrv  *http.Server
	pprofSrv *http.Server // [pprof] listen (pprof.go)
	web      *webServer   // [web], started by startWeb (webconfig.go), or nil
	demo     *memupstream.Server
	vault    *vaultAuth       // [auth] mode = "vault", or nil (vaultauth.go)
	demoOP   *oidctest.Server // the vault demo's provider, or nil (demovault.go)
	done     chan error

	wrap        func(pop3front.Backend) pop3front.Backend // Options.WrapBackend, or nil
	metricsAddr string                                    // bound [metrics] listen, "" without

	current atomic.Pointer[generation]

	mu       sync.Mutex // serialises Reload, Shutdown and Close
	cfg      *Config
	gens     []*generation // every generation that may still hold sessions
	plain    *acceptor
	implicit *acceptor // [pop3] listen_tls, or nil
}

// generation is what one configuration builds.
type generation struct {
	server  *pop3front.Server
	backend *imapback.Backend
	certs   *certHolder    // [tls], or nil
	proxy   *proxySettings // PROXY protocol, or nil
}

// Start builds everything cfg describes and starts serving. It returns
// once the listeners are bound, so a caller can connect at once. cfg
// should come from LoadConfig or have passed Validate: Start does not
// check it again (tests use timeouts Validate refuses). The caller must
// end the Gateway with Shutdown or Close.
func Start(ctx context.Context, cfg *Config, opts Options) (*Gateway, error) {
	logger := opts.Logger
	gw := &Gateway{logger: logger, level: opts.LogLevel, wrap: opts.WrapBackend,
		metrics: metrics.New(), done: make(chan error, 4), cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			gw.Close()
		}
	}()

	if cfg.Upstream.Address == demoAddress {
		var checkBearer func(user, token string) bool
		if cfg.Auth.Vault() && cfg.Auth.OAuth2.Issuer == demoIssuer {
			op, err := startDemoProvider(cfg, logger) // demovault.go
			if err != nil {
				return nil, err
			}
			gw.demoOP = op
			checkBearer = demoCheckBearer(op)
		}
		demo, err := startDemo(cfg.Demo, checkBearer, logger)
		if err != nil {
			return nil, err
		}
		gw.demo = demo
	}
	if cfg.Auth.Vault() {
		va, err := openVault(ctx, &cfg.Auth, gw.metrics, logger)
		if err != nil {
			return nil, err
		}
		gw.vault = va
	}
	gen, err := gw.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	gw.warn(cfg)
	gw.current.Store(gen)
	gw.gens = append(gw.gens, gen)
	gw.observeGeneration(cfg, gen)

	if err := gw.bindListeners(ctx, cfg); err != nil {
		return nil, err
	}
	if cfg.Metrics.Listen != "" {
		if err := gw.startMetrics(ctx, cfg.Metrics.Listen); err != nil {
			return nil, err
		}
	}
	if cfg.Pprof.Listen != "" {
		if err := gw.startPprof(ctx, cfg.Pprof.Listen); err != nil {
			return nil, err
		}
	}
	if cfg.Web.Listen != "" {
		h, err := gw.newWebHandler(cfg) // webconfig.go
		if err != nil {
			return nil, err
		}
		if err := gw.startWeb(ctx, cfg.Web, h); err != nil {
			return nil, err
		}
	}
	up := gw.upstreamOf(cfg)
	logger.Info("POP3 gateway listening",
		"pop3", gw.POP3Addr(), "pop3s", gw.POP3SAddr(),
		"upstream", up.Address, "security", up.Security,
		"mailbox", up.Mailbox, "folders", up.Folders, "delete", cfg.Policy.Delete, "seen", cfg.Policy.Seen,
		"auth", cfg.Auth.Mode)
	ok = true
	return gw, nil
}

// upstreamOf is cfg's upstream, with the demo's address in demo mode and
// the effective security.
func (gw *Gateway) upstreamOf(cfg *Config) UpstreamConfig {
	up := cfg.Upstream
	up.Security = up.security()
	if up.Address == demoAddress && gw.demo != nil {
		up.Address = gw.demo.Addr()
		up.Security = "none"
	}
	return up
}

// build makes a generation from cfg. prev, when set, is the generation it
// replaces: connection counts and login penalties carry over, so a reload
// neither frees caps nor forgives recent failures.
func (gw *Gateway) build(cfg *Config, prev *generation) (*generation, error) {
	backend, err := newBackend(cfg, gw.upstreamOf(cfg), gw.metrics, gw.logger)
	if err != nil {
		return nil, err
	}
	gen := &generation{backend: backend}
	var up upstreamLogin = backend
	if gw.vault != nil {
		up = &vaultBackend{va: gw.vault, up: backend}
	}
	trace := wireTrace(cfg, gw.logger)
	if gen.proxy, err = proxySettingsFor(cfg, gw.logger); err != nil {
		return nil, err
	}
	gen.server = &pop3front.Server{
		Backend:        gw.wrapped(withModifiers(cfg, up)), // usermodifiers.go
		Logger:         gw.logger,
		Observer:       gw.metrics,
		Greeting:       cfg.POP3.Greeting,
		Implementation: cfg.POP3.Implementation,
		Expire:         expireFor(cfg),
		Limits:         cfg.Limits.pop3(),

		Plaintext:       plaintextPolicy(cfg.POP3.AllowPlaintext),
		AllowMasterUser: cfg.POP3.AllowMasterUser,
		Trace:           trace,
	}
	if cfg.TLS.Cert != "" {
		if gen.certs, err = newCertHolder(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return nil, err
		}
		gen.server.TLSConfig = gen.certs.serverTLS()
	}
	if prev != nil {
		gen.server.Inherit(prev.server)
	}
	return gen, nil
}

// observeGeneration exports what alert rules compare live values with:
// the connection caps and the certificate's expiry of the generation
// that serves new sessions.
func (gw *Gateway) observeGeneration(cfg *Config, gen *generation) {
	gw.metrics.SetConnectionCaps(cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP, cfg.Limits.MaxSessionsPerUser)
	var notAfter time.Time
	if gen.certs != nil {
		if leaf := gen.certs.cert.Load().Leaf; leaf != nil {
			notAfter = leaf.NotAfter
		}
	}
	gw.metrics.SetCertificate(cfg.TLS.Cert, notAfter)
}

// bindListeners binds the listeners cfg names that are not bound yet at
// that address, and closes those cfg no longer names or moved.
func (gw *Gateway) bindListeners(ctx context.Context, cfg *Config) error {
	rebind := func(cur **acceptor, key, addr string, implicit bool) error {
		if *cur != nil && (*cur).addr == addr {
			return nil
		}
		var next *acceptor
		if addr != "" {
			var err error
			if next, err = listenAcceptor(ctx, key, addr, implicit); err != nil {
				return err
			}
			go next.serve(gw.current.Load, gw.done, gw.logger)
		}
		if *cur != nil {
			gw.logger.Info("listener moved", "listener", key, "from", (*cur).ln.Addr().String(), "to", addr)
			(*cur).close()
		}
		*cur = next
		return nil
	}
	if err := rebind(&gw.plain, "pop3.listen", cfg.POP3.Listen, false); err != nil {
		return err
	}
	return rebind(&gw.implicit, "pop3.listen_tls", cfg.POP3.ListenTLS, true)
}

// Reload applies cfg to new sessions: policies, limits, TLS certificates
// (re-read from disk even if the paths did not change), PROXY protocol
// settings, the upstream, and listener addresses (re-bound if changed).
// Running sessions keep the configuration they started with. On error
// nothing changes. Keys that need a restart are reported and ignored.
func (gw *Gateway) Reload(ctx context.Context, cfg *Config) error {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	old := gw.cfg
	if (old.Upstream.Address == demoAddress) != (cfg.Upstream.Address == demoAddress) {
		return errors.New("switching upstream.address to or from \"demo\" needs a restart")
	}
	for key, changed := range map[string]bool{
		"demo":           old.Demo != cfg.Demo,
		"metrics.listen": old.Metrics.Listen != cfg.Metrics.Listen,
		"pprof.listen":   old.Pprof.Listen != cfg.Pprof.Listen,
		"web":            !reflect.DeepEqual(old.Web, cfg.Web),
		"log.format":     old.Log.Format != cfg.Log.Format,
	} {
		if changed {
			gw.logger.Warn("config key changed but needs a restart; keeping the running value", "key", key)
		}
	}
	if cfg.POP3.ListenTLS != "" && cfg.TLS.Cert == "" {
		return errors.New("pop3.listen_tls needs [tls] cert and key")
	}
	cfg.DebugWire = old.DebugWire // a flag, not in the file
	if !reflect.DeepEqual(old.Auth, cfg.Auth) {
		// The store and token caches are opened once, at start.
		gw.logger.Warn("config key changed but needs a restart; keeping the running value", "key", "auth")
		cfg.Auth = old.Auth
	}
	gen, err := gw.build(cfg, gw.current.Load())
	if err != nil {
		return err
	}
	gw.warn(cfg)
	// Publish the generation before binding, so a new listener never
	// serves with the old settings.
	prev := gw.current.Swap(gen)
	if err := gw.bindListeners(ctx, cfg); err != nil {
		gw.current.Store(prev)
		return err
	}
	gw.gens = append(gw.gens, gen)
	if gw.level != nil {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(cfg.Log.Level)) // validated
		gw.level.Set(lv)
	}
	gw.cfg = cfg
	gw.observeGeneration(cfg, gen)
	up := gw.upstreamOf(cfg)
	attrs := []any{"pop3", gw.POP3Addr(), "pop3s", gw.POP3SAddr(), "upstream", up.Address,
		"delete", cfg.Policy.Delete, "seen", cfg.Policy.Seen, "log_level", cfg.Log.Level}
	if gen.certs != nil {
		if leaf := gen.certs.cert.Load().Leaf; leaf != nil {
			attrs = append(attrs, "tls_subject", leaf.Subject.String(), "tls_not_after", leaf.NotAfter)
		}
	}
	gw.logger.Info("configuration reloaded; new sessions use it, running sessions keep theirs", attrs...)
	return nil
}

// warn logs cfg's warnings (Config.Warnings), at start and every reload.
func (gw *Gateway) warn(cfg *Config) {
	for _, w := range cfg.Warnings() {
		gw.logger.Warn("configuration warning", "warning", w)
	}
}

// POP3Addr is the bound POP3 listener address.
func (gw *Gateway) POP3Addr() string {
	if gw.plain == nil {
		return ""
	}
	return gw.plain.ln.Addr().String()
}

// POP3SAddr is the bound implicit-TLS listener address, "" without one.
func (gw *Gateway) POP3SAddr() string {
	if gw.implicit == nil {
		return ""
	}
	return gw.implicit.ln.Addr().String()
}

// shutdownGrace is [limits] shutdown_grace of the running configuration.
func (gw *Gateway) shutdownGrace() time.Duration {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	return gw.cfg.Limits.ShutdownGrace.Duration
}

// Done reports a listener that stopped on its own.
func (gw *Gateway) Done() <-chan error { return gw.done }

// Shutdown stops accepting and waits for sessions until ctx ends; those
// still running then are closed without applying their changes.
func (gw *Gateway) Shutdown(ctx context.Context) error {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.plain.close()
	gw.implicit.close()
	errs := make(chan error, len(gw.gens))
	for _, gen := range gw.gens {
		go func() { errs <- gen.server.Shutdown(ctx) }()
	}
	var err error
	for range gw.gens {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	gw.closeAux()
	return err
}

// Close stops everything at once, applying nothing.
func (gw *Gateway) Close() {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.plain.close()
	gw.implicit.close()
	for _, gen := range gw.gens {
		gen.server.Close()
	}
	gw.closeAux()
}

func (gw *Gateway) closeAux() {
	if gw.pprofSrv != nil {
		gw.pprofSrv.Close()
	}
	if gw.httpSrv != nil {
		gw.httpSrv.Close()
	}
	if gw.web != nil {
		gw.web.srv.Close()
	}
	if gw.demo != nil {
		gw.demo.Close()
	}
	if gw.vault != nil {
		gw.vault.close()
		gw.vault = nil
	}
	if gw.demoOP != nil {
		gw.demoOP.Close()
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
	probe := func(ctx context.Context) error {
		if gw.vault != nil {
			if err := gw.vault.ping(ctx); err != nil {
				return err
			}
		}
		return gw.current.Load().backend.Probe(ctx)
	}
	mux.Handle("/readyz", &readiness{probe: probe, timeout: 5 * time.Second, ttl: 2 * time.Second})
	gw.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	gw.metricsAddr = l.Addr().String()
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
		Trace:              wireTrace(cfg, logger),
		Address:            up.Address,
		InsecureSkipVerify: up.InsecureSkipVerify,
		Security:           imapback.Security(up.Security),
		TLSConfig:          tlsConfig,
		Mailbox:            up.Mailbox,
		Folders:            up.Folders,
		DialTimeout:        up.DialTimeout.Duration,
		CommandTimeout:     up.CommandTimeout.Duration,
		Logger:             logger,
		Observer:           obs,
		Policy:             basePolicy(cfg.Policy),      // overrides.go
		Overrides:          policyOverrides(cfg.Policy), // [[policy.override]]

		ForwardClientAddress: up.ForwardClientAddress,
		// A vault master-user login acts for the device's user.
		AllowMasterUser: cfg.POP3.AllowMasterUser || cfg.Auth.Vault() && cfg.Auth.UpstreamAuth == UpstreamMaster,
		OAuthMechanism:  imapback.OAuthMechanism(cfg.Auth.Mechanism),
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

// expireFor derives the CAPA EXPIRE value announced before login (RFC
// 2449 section 6.7) from each policy's own (imapback.Policy.Expire).
// When [[policy.override]] or the recent modifier can give a user
// another value than [policy]'s, it is the smallest any user may get
// followed by USER; after login the maildrop announces the user's own
// (pop3front.Expirer).
func expireFor(cfg *Config) string {
	p := basePolicy(cfg.Policy)
	base := p.Expire()
	all := []string{base}
	for _, o := range policyOverrides(cfg.Policy) {
		all = append(all, o.Policy.Expire())
	}
	if slices.Contains(cfg.POP3.UserModifiers, "recent") {
		p.HideRetrieved = false // what the recent modifier does (usermodifiers.go)
		all = append(all, p.Expire())
	}
	smallest, varies := base, false
	for _, v := range all {
		if v != base {
			varies = true
		}
		if expireDays(v) < expireDays(smallest) {
			smallest = v
		}
	}
	if varies {
		return smallest + " USER"
	}
	return base
}

// expireDays orders EXPIRE values: days, with NEVER above them all.
func expireDays(v string) int {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return math.MaxInt // NEVER
}

// wireTrace is the -debug-wire tracer, nil when off. Traced lines are
// logged at Info so they show whatever the log level.
func wireTrace(cfg *Config, logger *slog.Logger) *pop3front.WireTrace {
	if cfg.DebugWire == "" {
		return nil
	}
	return &pop3front.WireTrace{User: cfg.DebugWire, Logger: logger.With("trace", "wire")}
}
