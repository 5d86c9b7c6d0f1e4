package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testpki"
)

// The Grafana dashboard and the alert rules shipped in deploy/.
const (
	dashboardFile = "../deploy/grafana/popbridge.json"
	rulesFile     = "../deploy/prometheus/popbridge.rules.yml"
)

// dashboardVars are what the test puts for the dashboard's variables:
// Grafana's built-in intervals, and "All" for job and instance.
var dashboardVars = map[string]string{
	"$__rate_interval": "1m",
	"$__interval":      "15s",
	"$__range":         "5m",
	"$job":             ".*",
	"$instance":        ".*",
}

// TestDashboardQueries: a real Prometheus scrapes a gateway that has just
// served scripted sessions (plain and POP3S, RETR, TOP, DELE, QUIT, a
// failed login, a failed TLS handshake) and loads the shipped alert rules;
// every panel's PromQL must parse and return data, and every popbridge
// metric the gateway exports must be on some panel.
func TestDashboardQueries(t *testing.T) {
	promBin := requirePrometheus(t)
	panels := loadDashboard(t)

	ca, dir := testpki.New(), t.TempDir()
	cert, key := ca.WriteLeaf(t, dir, 1)
	gw, _ := testGateway(t, func(c *Config) {
		c.POP3.ListenTLS = "127.0.0.1:0"
		c.TLS.Cert, c.TLS.Key = cert, key
		c.Metrics.Listen = freePort(t)
	})
	prom := startPrometheus(t, promBin, gw.cfg.Metrics.Listen)
	prom.waitFor(t, `up{job="popbridge"} == 1`)

	// The scripted sessions.
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login: %q", r)
	}
	c.Cmd("RETR 1")
	c.Multi()
	c.Cmd("TOP 2 0")
	c.Multi()
	if r := c.Cmd("DELE 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("DELE 2: %q", r)
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("QUIT: %q", r)
	}
	bad := dialPOP3(t, gw.POP3Addr())
	bad.Cmd("USER demo")
	if r := bad.Cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("wrong password accepted: %q", r)
	}
	bad.Cmd("QUIT")
	s, _ := dialPOP3S(t, gw.POP3SAddr(), ca)
	s.Cmd("USER demo")
	if r := s.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3S login: %q", r)
	}
	s.Cmd("RETR 1")
	s.Multi()
	s.Cmd("QUIT")
	notTLS, err := net.DialTimeout("tcp", gw.POP3SAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	notTLS.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(notTLS, "USER demo\r\n") // plaintext on the TLS port
	io.Copy(io.Discard, notTLS)             // until the gateway gives up
	notTLS.Close()
	prom.waitFor(t, `popbridge_pop3_tls_handshakes_total{result="failed"} >= 1`)

	// Every popbridge metric the gateway exports is on the dashboard.
	var all []string
	for _, p := range panels {
		all = append(all, p.exprs...)
	}
	exprs := strings.Join(all, "\n")
	for _, name := range exportedFamilies(t, "http://"+gw.cfg.Metrics.Listen+"/metrics") {
		if !strings.Contains(exprs, name) {
			t.Errorf("metric %s is on no dashboard panel", name)
		}
	}

	for _, p := range panels {
		if len(p.exprs) == 0 {
			t.Errorf("panel %q has no query", p.title)
		}
		for _, e := range p.exprs {
			q := substitute(e)
			if strings.Contains(q, "$") {
				t.Errorf("panel %q: unknown variable left in %q", p.title, q)
				continue
			}
			// A series made by the sessions needs a second scrape
			// before rate() has two samples: wait for it.
			if _, err := prom.pollNonEmpty(q); err != nil {
				t.Errorf("panel %q: %s: %v", p.title, q, err)
			}
		}
	}

	// The same Prometheus loaded the alert rules.
	if got, want := prom.ruleCount(t), 10; got != want {
		t.Errorf("alert rules loaded by Prometheus: got %d, want %d", got, want)
	}
}

// requirePrometheus finds the prometheus server, or skips (fails in CI).
func requirePrometheus(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if dovecottest.InCI() {
			t.Fatal("prometheus not found in PATH (CI=true: refusing to skip)")
		}
		t.Skip("prometheus not found in PATH; apt-get install prometheus, or run sudo bash .ci/run")
	}
	return p
}

type dashPanel struct {
	title string
	exprs []string
}

// loadDashboard reads every non-row panel, rows' nested panels included.
func loadDashboard(t *testing.T) []dashPanel {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []dashPanel
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", dashboardFile, err)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			dp := dashPanel{title: p.Title}
			for _, tg := range p.Targets {
				dp.exprs = append(dp.exprs, tg.Expr)
			}
			out = append(out, dp)
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatalf("%s: no panels", dashboardFile)
	}
	return out
}

// substitute replaces the dashboard's variables, longest names first so
// $__rate_interval is not read as $__range plus text.
func substitute(expr string) string {
	names := make([]string, 0, len(dashboardVars))
	for n := range dashboardVars {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, n, dashboardVars[n])
	}
	return expr
}

var familyLine = regexp.MustCompile(`^# TYPE (popbridge_\S+) `)

// exportedFamilies lists the popbridge_ metric families a /metrics
// endpoint serves.
func exportedFamilies(t *testing.T, u string) []string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(body)) {
		if m := familyLine.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s serves no popbridge metric", u)
	}
	return names
}

// promServer is a Prometheus started by a test.
type promServer struct {
	base string
	logs *logBuffer
}

// startPrometheus runs prometheus on loopback with a temporary data
// directory, scraping target every second and loading the shipped rules.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: popbridge
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	p := &promServer{base: "http://" + addr, logs: &logBuffer{}}
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.logs)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready on %s: %v\n%s", addr, err, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queryError is an answer of the query API with status "error": the
// expression did not parse or could not run. It is final.
type queryError struct{ kind, msg string }

func (e *queryError) Error() string { return e.kind + ": " + e.msg }

// query runs an instant query and returns the number of series or
// samples it returned.
func (p *promServer) query(expr string) (int, error) {
	resp, err := http.Get(p.base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("decoding the answer (HTTP %d): %v", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return 0, &queryError{r.ErrorType, r.Error}
	}
	switch r.Data.ResultType {
	case "vector", "matrix":
		var series []json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return 0, err
		}
		return len(series), nil
	default: // scalar or string: one value
		return 1, nil
	}
}

// pollNonEmpty queries expr until it returns data, for at most 30 s
// (a few scrapes); a query error ends it at once.
func (p *promServer) pollNonEmpty(expr string) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := p.query(expr)
		if _, final := err.(*queryError); final {
			return 0, err
		}
		if err == nil && n > 0 {
			return n, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("no data")
			}
			return 0, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitFor waits until expr returns data, or fails the test.
func (p *promServer) waitFor(t *testing.T, expr string) {
	t.Helper()
	if _, err := p.pollNonEmpty(expr); err != nil {
		t.Fatalf("waiting for %s: %v\n%s", expr, err, p.logs)
	}
}

// ruleCount is the number of rules Prometheus has loaded.
func (p *promServer) ruleCount(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []json.RawMessage `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range r.Data.Groups {
		n += len(g.Rules)
	}
	return n
}
