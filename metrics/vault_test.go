package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestVaultMetricsExportFromStart(t *testing.T) {
	m := New()
	want := `
# HELP popbridge_vault_logins_total POP3 logins served from the token vault, by result (ok, failed, temporary_error, permanent_error).
# TYPE popbridge_vault_logins_total counter
popbridge_vault_logins_total{result="failed"} 0
popbridge_vault_logins_total{result="ok"} 0
popbridge_vault_logins_total{result="permanent_error"} 0
popbridge_vault_logins_total{result="temporary_error"} 0
# HELP popbridge_vault_token_refreshes_total OAuth2 token refreshes, by result (ok, temporary_error, invalid_grant).
# TYPE popbridge_vault_token_refreshes_total counter
popbridge_vault_token_refreshes_total{result="invalid_grant"} 0
popbridge_vault_token_refreshes_total{result="ok"} 0
popbridge_vault_token_refreshes_total{result="temporary_error"} 0
# HELP popbridge_vault_users_needing_reenrollment Users whose refresh token was refused and who must enrol again.
# TYPE popbridge_vault_users_needing_reenrollment gauge
popbridge_vault_users_needing_reenrollment 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"popbridge_vault_logins_total", "popbridge_vault_token_refreshes_total",
		"popbridge_vault_users_needing_reenrollment"); err != nil {
		t.Error(err)
	}
}

func TestVaultMetricsCount(t *testing.T) {
	m := New()
	m.TokenRefresh("ok")
	m.TokenRefresh("ok")
	m.TokenRefresh("invalid_grant")
	m.SetUsersNeedingReenrollment(3)
	m.VaultLogin("temporary_error")
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"refreshes ok", testutil.ToFloat64(m.vault.refreshes.WithLabelValues("ok")), 2},
		{"refreshes invalid_grant", testutil.ToFloat64(m.vault.refreshes.WithLabelValues("invalid_grant")), 1},
		{"refreshes temporary_error", testutil.ToFloat64(m.vault.refreshes.WithLabelValues("temporary_error")), 0},
		{"users needing re-enrolment", testutil.ToFloat64(m.vault.reenrollment), 3},
		{"logins temporary_error", testutil.ToFloat64(m.vault.vaultLogins.WithLabelValues("temporary_error")), 1},
		{"logins ok", testutil.ToFloat64(m.vault.vaultLogins.WithLabelValues("ok")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCapsAndCertificateGauges(t *testing.T) {
	m := New()
	m.SetConnectionCaps(1000, 20, 10)
	exp := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	m.SetCertificate("/etc/popbridge/old.pem", exp.Add(-time.Hour))
	m.SetCertificate("/etc/popbridge/fullchain.pem", exp) // a reload replaces the old one
	want := `
# HELP popbridge_pop3_max_connections Configured cap on POP3 connections in total (limits.max_connections).
# TYPE popbridge_pop3_max_connections gauge
popbridge_pop3_max_connections 1000
# HELP popbridge_pop3_max_connections_per_ip Configured cap on POP3 connections per client address (limits.max_connections_per_ip).
# TYPE popbridge_pop3_max_connections_per_ip gauge
popbridge_pop3_max_connections_per_ip 20
# HELP popbridge_pop3_max_sessions_per_user Configured cap on logged-in POP3 sessions per user (limits.max_sessions_per_user).
# TYPE popbridge_pop3_max_sessions_per_user gauge
popbridge_pop3_max_sessions_per_user 10
# HELP popbridge_tls_certificate_expiry_timestamp_seconds Expiry (NotAfter, Unix time) of the certificate served to POP3 clients, by certificate file.
# TYPE popbridge_tls_certificate_expiry_timestamp_seconds gauge
popbridge_tls_certificate_expiry_timestamp_seconds{file="/etc/popbridge/fullchain.pem"} 1.8039024e+09
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"popbridge_pop3_max_connections", "popbridge_pop3_max_connections_per_ip",
		"popbridge_pop3_max_sessions_per_user", "popbridge_tls_certificate_expiry_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	m.SetCertificate("", time.Time{})
	if n := testutil.CollectAndCount(m.gateway.certExpiry); n != 0 {
		t.Errorf("certificate series after TLS was turned off: got %d, want 0", n)
	}
}
