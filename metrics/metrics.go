// Package metrics declares every Prometheus metric of the gateway, on its
// own registry, and serves them over HTTP. It is the only package that
// imports the Prometheus client; the protocol packages report through the
// small Observer interfaces they define.
//
// No metric carries a user name or any other unbounded label.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "popbridge"

// Metrics holds the gateway's collectors and the registry they live on.
type Metrics struct {
	Registry *prometheus.Registry

	sessionsActive   prometheus.Gauge
	sessionsTotal    *prometheus.CounterVec
	sessionDuration  prometheus.Histogram
	loginsTotal      *prometheus.CounterVec
	commandsTotal    *prometheus.CounterVec
	retrievedTotal   *prometheus.CounterVec
	retrievedBytes   *prometheus.CounterVec
	deletedTotal     *prometheus.CounterVec
	updatesTotal     *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	tlsHandshakes    *prometheus.CounterVec
	upstreamAnomaly  *prometheus.CounterVec
	penaltiesTotal   prometheus.Counter
	penaltySeconds   prometheus.Counter

	gateway gatewayMetrics // gateway.go
	vault   vaultMetrics   // vault.go
	web     webMetrics     // web.go
}

// upstreamOps are the operations imapback reports (imapback.Observer).
var upstreamOps = []string{"connect", "login", "examine", "snapshot", "fetch", "prefetch", "top", "noop", "commit", "logout", "probe"}

// New declares and registers every metric on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		sessionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "sessions_active",
			Help: "POP3 sessions currently connected.",
		}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "sessions_total",
			Help: "POP3 sessions ended, by how they ended.",
		}, []string{"end"}),
		sessionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "session_duration_seconds",
			Help:    "Duration of POP3 sessions.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		loginsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "logins_total",
			Help: "Login attempts, by mechanism and result.",
		}, []string{"mechanism", "result"}),
		commandsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "commands_total",
			Help: "POP3 commands received, by command.",
		}, []string{"command"}),
		retrievedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "messages_retrieved_total",
			Help: "Messages (RETR) and headers (TOP) sent completely.",
		}, []string{"kind"}),
		retrievedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "retrieved_bytes_total",
			Help: "Octets of message data sent completely, before dot-stuffing.",
		}, []string{"kind"}),
		deletedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "messages_deleted_total",
			Help: "Messages DELE'd and applied upstream by a confirmed QUIT update, by delete policy.",
		}, []string{"policy"}),
		updatesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "updates_total",
			Help: "QUIT updates, by result (ok, failed, none).",
		}, []string{"result"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "operation_duration_seconds",
			Help:    "Latency of upstream IMAP operations, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"op"}),
		tlsHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "tls_handshakes_total",
			Help: "TLS handshakes with clients, by mode (implicit, stls), version and result.",
		}, []string{"mode", "version", "result"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "errors_total",
			Help: "Failed upstream IMAP operations, by operation.",
		}, []string{"op"}),
		upstreamAnomaly: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "anomalies_total",
			Help: "Messages the upstream did not serve as snapshotted, by kind (expunged; size_mismatch: other bytes under the UID, never delivered).",
		}, []string{"kind"}),
		penaltiesTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "auth_penalties_total",
			Help: "Login attempts delayed by the failed-login penalty of their client address.",
		}),
		penaltySeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "auth_penalty_seconds_total",
			Help: "Total delay imposed by failed-login penalties.",
		}),
		gateway: newGatewayMetrics(),
		vault:   newVaultMetrics(),
		web:     newWebMetrics(),
	}
	m.Registry.MustRegister(
		m.sessionsActive, m.sessionsTotal, m.sessionDuration, m.loginsTotal,
		m.commandsTotal, m.retrievedTotal, m.retrievedBytes, m.deletedTotal,
		m.updatesTotal, m.upstreamDuration, m.upstreamErrors, m.tlsHandshakes, m.upstreamAnomaly,
		m.penaltiesTotal, m.penaltySeconds,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Label values from fixed sets start at zero, so an alert's rate()
	// sees the first failure rather than a series appearing from nothing.
	for _, op := range upstreamOps {
		m.upstreamErrors.WithLabelValues(op)
	}
	for _, r := range []string{"ok", "failed", "none"} {
		m.updatesTotal.WithLabelValues(r)
	}
	for _, k := range []string{"expunged", "size_mismatch"} { // imapback.Anomaly*
		m.upstreamAnomaly.WithLabelValues(k)
	}
	m.Registry.MustRegister(m.gateway.collectors()...)
	m.Registry.MustRegister(m.vault.collectors()...)
	m.Registry.MustRegister(m.web.collectors()...)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// SessionStarted implements pop3front.Observer.
func (m *Metrics) SessionStarted() { m.sessionsActive.Inc() }

// SessionEnded implements pop3front.Observer.
func (m *Metrics) SessionEnded(end string, d time.Duration) {
	m.sessionsActive.Dec()
	m.sessionsTotal.WithLabelValues(end).Inc()
	m.sessionDuration.Observe(d.Seconds())
}

// Login implements pop3front.Observer.
func (m *Metrics) Login(mechanism, result string) {
	m.loginsTotal.WithLabelValues(mechanism, result).Inc()
}

// Command implements pop3front.Observer. The caller guarantees a fixed
// set of names, so the label cannot grow without bound.
func (m *Metrics) Command(name string) { m.commandsTotal.WithLabelValues(name).Inc() }

// Retrieved implements pop3front.Observer.
func (m *Metrics) Retrieved(top bool, octets int64) {
	kind := "retr"
	if top {
		kind = "top"
	}
	m.retrievedTotal.WithLabelValues(kind).Inc()
	m.retrievedBytes.WithLabelValues(kind).Add(float64(octets))
}

// Update implements pop3front.Observer.
func (m *Metrics) Update(deleted int, result string) {
	m.updatesTotal.WithLabelValues(result).Inc()
}

// Committed implements imapback.Observer.
func (m *Metrics) Committed(policy string, deleted int) {
	m.deletedTotal.WithLabelValues(policy).Add(float64(deleted))
}

// TLSHandshake implements pop3front.Observer.
func (m *Metrics) TLSHandshake(mode, version string, err error) {
	result := "ok"
	if err != nil {
		result, version = "failed", "none"
	}
	m.tlsHandshakes.WithLabelValues(mode, version, result).Inc()
}

// UpstreamOp implements imapback.Observer: one upstream IMAP operation.
func (m *Metrics) UpstreamOp(op string, d time.Duration, err error) {
	m.upstreamDuration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.upstreamErrors.WithLabelValues(op).Inc()
	}
}

// Anomaly implements imapback.Observer. imapback passes a fixed
// set of kinds, so the label cannot grow without bound.
func (m *Metrics) Anomaly(kind string) { m.upstreamAnomaly.WithLabelValues(kind).Inc() }

// AuthPenalty implements pop3front.Observer.
func (m *Metrics) AuthPenalty(d time.Duration) {
	m.penaltiesTotal.Inc()
	m.penaltySeconds.Add(d.Seconds())
}
