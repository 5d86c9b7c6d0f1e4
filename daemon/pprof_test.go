package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestPprofAddressMustBeLoopback: [pprof] listen accepts loopback
// addresses only; an empty host or a routable one is refused.
func TestPprofAddressMustBeLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true,
		"127.0.0.2:6060": true,
		"[::1]:6060":     true,
		"localhost:6060": true,
		":6060":          false,
		"0.0.0.0:6060":   false,
		"[::]:6060":      false,
		"192.0.2.1:6060": false,
		"example.org:80": false,
		"127.0.0.1":      false,
	} {
		err := validPprofAddr("pprof.listen", addr)
		if (err == nil) != ok {
			t.Errorf("validPprofAddr(%q) = %v, want accepted %v", addr, err, ok)
		}
	}
	cfg := defaultConfig()
	cfg.Pprof.Listen = "0.0.0.0:6060"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "pprof.listen") {
		t.Errorf("validate with pprof.listen 0.0.0.0:6060 = %v, want an error naming pprof.listen", err)
	}
}

// TestPprofEndpoint: with [pprof] listen set, the profile index and a
// heap profile are served there, and not on the metrics listener.
func TestPprofEndpoint(t *testing.T) {
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Metrics.Listen = freePort(t)
	cfg.Pprof.Listen = freePort(t)
	gw, err := Start(context.Background(), &cfg, Options{Logger: NewLogger(cfg.Log, new(slog.LevelVar), &logBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + cfg.Pprof.Listen + "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d, body without profile list: %.200q", code, body)
	}
	if code, body := get("http://" + cfg.Pprof.Listen + "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d %.200q, want 200 and a heap profile", code, body)
	}
	if code, _ := get("http://" + cfg.Metrics.Listen + "/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ on the metrics listener = %d, want 404", code)
	}
}
