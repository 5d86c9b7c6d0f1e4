package metrics

import "github.com/prometheus/client_golang/prometheus"

// Results of a web sign-in (OpenID Connect authorization code flow):
// ok; enrolled (signed in and a refresh token stored); denied (the user
// refused consent or the provider answered with an error); invalid (bad
// state, expired attempt, or an ID token that failed validation); error
// (the provider or the store could not be reached).
var webSignInResults = []string{"ok", "enrolled", "denied", "invalid", "error"}

// Web device operations and their results.
var (
	webDeviceOps     = []string{"create", "revoke", "admin_revoke", "admin_remove_user"}
	webDeviceResults = []string{"ok", "failed", "forbidden"}
)

// webMetrics are the metrics of the web page.
type webMetrics struct {
	signIns    *prometheus.CounterVec
	deviceOps  *prometheus.CounterVec
	csrfDenied prometheus.Counter
}

func newWebMetrics() webMetrics {
	w := webMetrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "web", Name: "signins_total",
			Help: "Web sign-ins, by result (ok, enrolled, denied, invalid, error).",
		}, []string{"result"}),
		deviceOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "web", Name: "device_operations_total",
			Help: "Device and user operations on the web page, by operation and result (ok, failed, forbidden).",
		}, []string{"op", "result"}),
		csrfDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "web", Name: "csrf_rejections_total",
			Help: "Form posts refused for a missing or wrong CSRF token or a cross-origin request.",
		}),
	}
	for _, r := range webSignInResults {
		w.signIns.WithLabelValues(r)
	}
	for _, op := range webDeviceOps {
		for _, r := range webDeviceResults {
			w.deviceOps.WithLabelValues(op, r)
		}
	}
	return w
}

func (w webMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{w.signIns, w.deviceOps, w.csrfDenied}
}

// WebSignIn records one web sign-in. result must be one of ok, enrolled,
// denied, invalid or error (the web package passes only these).
func (m *Metrics) WebSignIn(result string) {
	m.web.signIns.WithLabelValues(result).Inc()
}

// WebDeviceOp records one device or user operation on the web page. op
// must be one of create, revoke, admin_revoke or admin_remove_user;
// result one of ok, failed or forbidden.
func (m *Metrics) WebDeviceOp(op, result string) {
	m.web.deviceOps.WithLabelValues(op, result).Inc()
}

// WebCSRFRejected records a form post refused by the CSRF checks.
func (m *Metrics) WebCSRFRejected() {
	m.web.csrfDenied.Inc()
}
