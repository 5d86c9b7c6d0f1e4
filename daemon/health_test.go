package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealthAndReadiness: /healthz answers while the process serves;
// /readyz follows the upstream (connect and greeting), with the reason
// when it is not ready; /metrics lints clean and counts a scripted session.
func TestHealthAndReadiness(t *testing.T) {
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Demo.IMAPListen = "127.0.0.1:0"
	cfg.Metrics.Listen = freePort(t)
	logs := &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: NewLogger(cfg.Log, new(slog.LevelVar), logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + cfg.Metrics.Listen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz with the upstream up = %d %q, want %d", code, body, 200)
	}

	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	c.Cmd("PASS demo")
	c.Cmd("RETR 1")
	c.Multi()
	c.Cmd("DELE 2")
	c.Cmd("QUIT")
	waitLog(t, logs, "pop3 session ended")
	if problems, err := testutil.GatherAndLint(gw.metrics.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
	want := `
# HELP popbridge_pop3_logins_total Login attempts, by mechanism and result.
# TYPE popbridge_pop3_logins_total counter
popbridge_pop3_logins_total{mechanism="USER",result="ok"} 1
# HELP popbridge_pop3_messages_deleted_total Messages DELE'd and applied upstream by a confirmed QUIT update, by delete policy.
# TYPE popbridge_pop3_messages_deleted_total counter
popbridge_pop3_messages_deleted_total{policy="flag"} 1
# HELP popbridge_pop3_sessions_total POP3 sessions ended, by how they ended.
# TYPE popbridge_pop3_sessions_total counter
popbridge_pop3_sessions_total{end="quit"} 1
`
	if err := testutil.GatherAndCompare(gw.metrics.Registry, strings.NewReader(want),
		"popbridge_pop3_logins_total", "popbridge_pop3_messages_deleted_total", "popbridge_pop3_sessions_total"); err != nil {
		t.Error(err)
	}
	for series, want := range map[string]int{
		"popbridge_pop3_max_connections":        cfg.Limits.MaxConnections,
		"popbridge_pop3_max_connections_per_ip": cfg.Limits.MaxConnectionsPerIP,
		"popbridge_pop3_max_sessions_per_user":  cfg.Limits.MaxSessionsPerUser,
	} {
		if got := metricValue(t, gw, series); got != float64(want) {
			t.Errorf("%s: got %v, want %d", series, got, want)
		}
	}

	// The upstream goes away: not ready, and why.
	gw.demo.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/readyz")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body, "upstream not ready") {
				t.Errorf("/readyz body %q gives no reason, want it to contain %q", body, "upstream not ready")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after the upstream stopped", code)
		}
		time.Sleep(100 * time.Millisecond) // results are cached for 2 s
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d while the process serves, want %d", code, 200)
	}
}

// metricValue reads one sample, named with its labels as in the text
// format, from the gateway's /metrics.
func metricValue(t *testing.T, gw *Gateway, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	gw.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return v
		}
	}
	t.Fatalf("metrics lack %s:\n%s", series, rec.Body)
	return 0
}
