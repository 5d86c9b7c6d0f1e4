package metrics

import "github.com/prometheus/client_golang/prometheus"

// Results of a vault token refresh (the OAuth2 refresh_token grant, RFC
// 6749 section 6): ok; temporary_error when the token endpoint could not
// be reached or answered 5xx; invalid_grant when the refresh token was
// refused (RFC 6749 section 5.2) and the user must enrol again.
var vaultRefreshResults = []string{"ok", "temporary_error", "invalid_grant"}

// Results of a POP3 login served from the vault: ok; failed (wrong
// gateway password); temporary_error (no fresh access token could be had
// for now); permanent_error (the user must enrol again).
var vaultLoginResults = []string{"ok", "failed", "temporary_error", "permanent_error"}

// vaultMetrics are the OAuth2 token store's metrics. Every label value
// is created at start, so a dashboard and the alert rules see zeros
// rather than nothing before the first event.
type vaultMetrics struct {
	refreshes    *prometheus.CounterVec
	reenrollment prometheus.Gauge
	vaultLogins  *prometheus.CounterVec
}

func newVaultMetrics() vaultMetrics {
	v := vaultMetrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vault", Name: "token_refreshes_total",
			Help: "OAuth2 token refreshes, by result (ok, temporary_error, invalid_grant).",
		}, []string{"result"}),
		reenrollment: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "vault", Name: "users_needing_reenrollment",
			Help: "Users whose refresh token was refused and who must enrol again.",
		}),
		vaultLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "vault", Name: "logins_total",
			Help: "POP3 logins served from the token vault, by result (ok, failed, temporary_error, permanent_error).",
		}, []string{"result"}),
	}
	for _, r := range vaultRefreshResults {
		v.refreshes.WithLabelValues(r)
	}
	for _, r := range vaultLoginResults {
		v.vaultLogins.WithLabelValues(r)
	}
	return v
}

func (v vaultMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.refreshes, v.reenrollment, v.vaultLogins}
}

// TokenRefresh records one OAuth2 token refresh. result must be one of
// ok, temporary_error or invalid_grant; the vault passes only these, so
// the label cannot grow without bound.
func (m *Metrics) TokenRefresh(result string) {
	m.vault.refreshes.WithLabelValues(result).Inc()
}

// SetUsersNeedingReenrollment sets how many users must enrol again
// because their refresh token was refused. The vault calls it whenever
// that number changes, including at start.
func (m *Metrics) SetUsersNeedingReenrollment(n int) {
	m.vault.reenrollment.Set(float64(n))
}

// VaultLogin records one POP3 login served from the vault. result must
// be one of ok, failed, temporary_error or permanent_error.
func (m *Metrics) VaultLogin(result string) {
	m.vault.vaultLogins.WithLabelValues(result).Inc()
}
