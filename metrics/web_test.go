package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWebMetricsExportFromStart(t *testing.T) {
	m := New()
	want := `
# HELP popbridge_web_signins_total Web sign-ins, by result (ok, enrolled, denied, invalid, error).
# TYPE popbridge_web_signins_total counter
popbridge_web_signins_total{result="denied"} 0
popbridge_web_signins_total{result="enrolled"} 0
popbridge_web_signins_total{result="error"} 0
popbridge_web_signins_total{result="invalid"} 0
popbridge_web_signins_total{result="ok"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "popbridge_web_signins_total"); err != nil {
		t.Error(err)
	}
	if got, want := testutil.CollectAndCount(m.web.deviceOps), len(webDeviceOps)*len(webDeviceResults); got != want {
		t.Errorf("device operation series: got %d, want %d", got, want)
	}
}

func TestWebMetricsCount(t *testing.T) {
	m := New()
	m.WebSignIn("enrolled")
	m.WebSignIn("invalid")
	m.WebSignIn("invalid")
	m.WebDeviceOp("create", "ok")
	m.WebDeviceOp("revoke", "forbidden")
	m.WebCSRFRejected()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"signins enrolled", testutil.ToFloat64(m.web.signIns.WithLabelValues("enrolled")), 1},
		{"signins invalid", testutil.ToFloat64(m.web.signIns.WithLabelValues("invalid")), 2},
		{"signins ok", testutil.ToFloat64(m.web.signIns.WithLabelValues("ok")), 0},
		{"create ok", testutil.ToFloat64(m.web.deviceOps.WithLabelValues("create", "ok")), 1},
		{"revoke forbidden", testutil.ToFloat64(m.web.deviceOps.WithLabelValues("revoke", "forbidden")), 1},
		{"csrf", testutil.ToFloat64(m.web.csrfDenied), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
