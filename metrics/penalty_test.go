package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/pop3front"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The server finds the method by type assertion: keep it implemented.
var _ pop3front.Observer = (*Metrics)(nil)

func TestAuthPenalty(t *testing.T) {
	m := New()
	m.AuthPenalty(2 * time.Second)
	m.AuthPenalty(4 * time.Second)
	want := `
# HELP popbridge_pop3_auth_penalties_total Login attempts delayed by the failed-login penalty of their client address.
# TYPE popbridge_pop3_auth_penalties_total counter
popbridge_pop3_auth_penalties_total 2
# HELP popbridge_pop3_auth_penalty_seconds_total Total delay imposed by failed-login penalties.
# TYPE popbridge_pop3_auth_penalty_seconds_total counter
popbridge_pop3_auth_penalty_seconds_total 6
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"popbridge_pop3_auth_penalties_total", "popbridge_pop3_auth_penalty_seconds_total"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(m.Registry, "popbridge_pop3_auth_penalties_total", "popbridge_pop3_auth_penalty_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
