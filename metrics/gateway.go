package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gatewayMetrics expose the running configuration's limits and the
// serving certificate, so alert rules can compare live values with them.
type gatewayMetrics struct {
	maxConnections      prometheus.Gauge
	maxConnectionsPerIP prometheus.Gauge
	maxSessionsPerUser  prometheus.Gauge
	certExpiry          *prometheus.GaugeVec
}

func newGatewayMetrics() gatewayMetrics {
	return gatewayMetrics{
		maxConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "max_connections",
			Help: "Configured cap on POP3 connections in total (limits.max_connections).",
		}),
		maxConnectionsPerIP: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "max_connections_per_ip",
			Help: "Configured cap on POP3 connections per client address (limits.max_connections_per_ip).",
		}),
		maxSessionsPerUser: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pop3", Name: "max_sessions_per_user",
			Help: "Configured cap on logged-in POP3 sessions per user (limits.max_sessions_per_user).",
		}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "tls", Name: "certificate_expiry_timestamp_seconds",
			Help: "Expiry (NotAfter, Unix time) of the certificate served to POP3 clients, by certificate file.",
		}, []string{"file"}),
	}
}

func (g gatewayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.maxConnections, g.maxConnectionsPerIP, g.maxSessionsPerUser, g.certExpiry}
}

// SetConnectionCaps records the connection caps in force for new
// sessions; the gateway calls it at start and on every reload.
func (m *Metrics) SetConnectionCaps(total, perIP, perUser int) {
	m.gateway.maxConnections.Set(float64(total))
	m.gateway.maxConnectionsPerIP.Set(float64(perIP))
	m.gateway.maxSessionsPerUser.Set(float64(perUser))
}

// SetCertificate records the expiry of the certificate loaded from file,
// replacing any certificate recorded before (a reload may rename the
// file). A zero notAfter, as for a configuration without TLS, removes it.
func (m *Metrics) SetCertificate(file string, notAfter time.Time) {
	m.gateway.certExpiry.Reset()
	if !notAfter.IsZero() {
		m.gateway.certExpiry.WithLabelValues(file).Set(float64(notAfter.Unix()))
	}
}
