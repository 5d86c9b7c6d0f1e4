package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLintClean(t *testing.T) {
	m := New()
	m.SessionStarted()
	m.Login("USER", "ok")
	m.Command("RETR")
	m.Retrieved(false, 1234)
	m.Update(2, "ok")
	m.SessionEnded("quit", time.Second)
	m.UpstreamOp("fetch", 3*time.Millisecond, nil)
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestScriptedSessionCounts(t *testing.T) {
	m := New()
	m.SessionStarted()
	m.Login("PLAIN", "failed")
	m.Login("USER", "ok")
	for _, c := range []string{"STAT", "RETR", "RETR", "DELE", "QUIT"} {
		m.Command(c)
	}
	m.Retrieved(false, 100)
	m.Retrieved(false, 50)
	m.Retrieved(true, 10)
	m.Update(1, "ok")
	m.Committed("trash", 1)
	m.SessionEnded("quit", 2*time.Second)
	m.UpstreamOp("commit", time.Millisecond, errors.New("boom"))

	want := `
# HELP popbridge_pop3_commands_total POP3 commands received, by command.
# TYPE popbridge_pop3_commands_total counter
popbridge_pop3_commands_total{command="DELE"} 1
popbridge_pop3_commands_total{command="QUIT"} 1
popbridge_pop3_commands_total{command="RETR"} 2
popbridge_pop3_commands_total{command="STAT"} 1
# HELP popbridge_pop3_logins_total Login attempts, by mechanism and result.
# TYPE popbridge_pop3_logins_total counter
popbridge_pop3_logins_total{mechanism="PLAIN",result="failed"} 1
popbridge_pop3_logins_total{mechanism="USER",result="ok"} 1
# HELP popbridge_pop3_messages_deleted_total Messages DELE'd and applied upstream by a confirmed QUIT update, by delete policy.
# TYPE popbridge_pop3_messages_deleted_total counter
popbridge_pop3_messages_deleted_total{policy="trash"} 1
# HELP popbridge_pop3_retrieved_bytes_total Octets of message data sent completely, before dot-stuffing.
# TYPE popbridge_pop3_retrieved_bytes_total counter
popbridge_pop3_retrieved_bytes_total{kind="retr"} 150
popbridge_pop3_retrieved_bytes_total{kind="top"} 10
# HELP popbridge_pop3_sessions_active POP3 sessions currently connected.
# TYPE popbridge_pop3_sessions_active gauge
popbridge_pop3_sessions_active 0
# HELP popbridge_pop3_sessions_total POP3 sessions ended, by how they ended.
# TYPE popbridge_pop3_sessions_total counter
popbridge_pop3_sessions_total{end="quit"} 1
# HELP popbridge_upstream_errors_total Failed upstream IMAP operations, by operation.
# TYPE popbridge_upstream_errors_total counter
popbridge_upstream_errors_total{op="commit"} 1
popbridge_upstream_errors_total{op="connect"} 0
popbridge_upstream_errors_total{op="examine"} 0
popbridge_upstream_errors_total{op="fetch"} 0
popbridge_upstream_errors_total{op="login"} 0
popbridge_upstream_errors_total{op="logout"} 0
popbridge_upstream_errors_total{op="noop"} 0
popbridge_upstream_errors_total{op="prefetch"} 0
popbridge_upstream_errors_total{op="probe"} 0
popbridge_upstream_errors_total{op="snapshot"} 0
popbridge_upstream_errors_total{op="top"} 0
`
	err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"popbridge_pop3_commands_total", "popbridge_pop3_logins_total",
		"popbridge_pop3_messages_deleted_total", "popbridge_pop3_retrieved_bytes_total",
		"popbridge_pop3_sessions_active", "popbridge_pop3_sessions_total",
		"popbridge_upstream_errors_total")
	if err != nil {
		t.Error(err)
	}
}

func TestHandlerServesText(t *testing.T) {
	m := New()
	m.Command("NOOP")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `popbridge_pop3_commands_total{command="NOOP"} 1`) {
		t.Errorf("exposition lacks the command counter:\n%s", body)
	}
}
