package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// PprofConfig enables Go's profiling endpoint (net/http/pprof) for an
// admin chasing CPU or memory: off unless listen is set, and only ever on
// a loopback address, because profiles reveal memory contents and a CPU
// profile costs CPU while it runs.
type PprofConfig struct {
	Listen string `toml:"listen"`
}

// validPprofAddr accepts host:port whose host is a loopback IP literal or
// "localhost"; an empty host (every address) is refused.
func validPprofAddr(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return invalid(key, "%q is not host:port", v)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return invalid(key, "%q is not a loopback address (127.0.0.0/8, ::1 or localhost)", v)
	}
	return nil
}

// startPprof serves /debug/pprof/ on addr, on its own listener and mux
// (never on the metrics listener, which may face a network).
func (gw *Gateway) startPprof(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof.listen: %w", err)
	}
	if ta, ok := l.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		l.Close() // "localhost" resolved elsewhere
		return fmt.Errorf("pprof.listen: %s is not a loopback address", l.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	gw.pprofSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := gw.pprofSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			gw.done <- fmt.Errorf("pprof: %w", err)
		}
	}()
	gw.logger.Warn("pprof profiling endpoint listening (loopback only)", "addr", l.Addr().String())
	return nil
}
