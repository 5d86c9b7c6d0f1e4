package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/popbridge/popbridge/imapback"
)

// The gateway passes *Metrics as imapback's Observer; anomalies reach it
// through the optional interface.
var _ imapback.Observer = (*Metrics)(nil)

func TestAnomalyCounter(t *testing.T) {
	m := New()
	m.Anomaly(imapback.AnomalyExpunged)
	m.Anomaly(imapback.AnomalyExpunged)
	m.Anomaly(imapback.AnomalySizeMismatch)
	if got := testutil.ToFloat64(m.upstreamAnomaly.WithLabelValues("expunged")); got != 2 {
		t.Errorf("expunged = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.upstreamAnomaly.WithLabelValues("size_mismatch")); got != 1 {
		t.Errorf("size_mismatch = %v, want 1", got)
	}
	problems, err := testutil.GatherAndLint(m.Registry, "popbridge_upstream_anomalies_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
