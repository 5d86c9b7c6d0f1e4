package daemon

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/syncbuf"
)

// startDemoGateway runs the gateway exactly as the shipped proxy.toml
// does, but on free ports and with the given delete policy.
func startDemoGateway(t *testing.T, policy imapback.DeletePolicy) (*Gateway, *Config, *logBuffer) {
	t.Helper()
	gw, logs := testGateway(t, func(c *Config) { c.Policy.Delete = policy })
	return gw, gw.cfg, logs
}

func dialPOP3(t *testing.T, addr string) *pop3test.Client { return pop3test.DialClient(t, addr) }

func TestDemoDownloadAndDeleteShowAsFlags(t *testing.T) {
	gw, _, logs := startDemoGateway(t, "flag")
	c := dialPOP3(t, gw.POP3Addr())
	if r := c.Cmd("USER demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := c.Cmd("PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	stat := c.Cmd("STAT")
	var n, size int
	if _, err := fmt.Sscanf(stat, "+OK %d %d", &n, &size); err != nil || n < 5 {
		t.Fatalf("STAT = %q", stat)
	}
	if r := c.Cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	body := c.Multi()
	if !strings.Contains(body, "Subject: ") {
		t.Fatalf("RETR 1 body has no header: %q", body[:min(len(body), 200)])
	}
	if r := c.Cmd("DELE 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}

	// Every IMAP client sees what the POP3 device did.
	flags := imapFlags(t, gw.demo.Addr(), "demo", "demo")
	if len(flags) != n {
		t.Fatalf("upstream has %d messages, POP3 listed %d", len(flags), n)
	}
	if !slices.Contains(flags[0], imap.FlagSeen) || slices.Contains(flags[0], imap.FlagDeleted) {
		t.Errorf("message 1 flags = %v, want \\Seen only", flags[0])
	}
	if !slices.Contains(flags[1], imap.FlagDeleted) || slices.Contains(flags[1], imap.FlagSeen) {
		t.Errorf("message 2 flags = %v, want \\Deleted only", flags[1])
	}
	for i := 2; i < n; i++ {
		if len(flags[i]) != 0 {
			t.Errorf("message %d flags = %v, want none", i+1, flags[i])
		}
	}

	// The next session no longer lists the deleted message.
	c = dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	c.Cmd("PASS demo")
	if r := c.Cmd("STAT"); !strings.HasPrefix(r, fmt.Sprintf("+OK %d ", n-1)) {
		t.Errorf("second STAT = %q, want %d messages", r, n-1)
	}
	c.Cmd("QUIT")

	if strings.Contains(logs.String(), "PASS demo") {
		t.Error("log holds the password command")
	}
	if !strings.Contains(logs.String(), "DEMO UPSTREAM") {
		t.Error("demo mode is not announced in the log")
	}
	rec := httptest.NewRecorder()
	gw.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`popbridge_pop3_messages_deleted_total{policy="flag"} 1`,
		`popbridge_pop3_updates_total{result="ok"} 1`,
		`popbridge_pop3_messages_retrieved_total{kind="retr"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestDemoDroppedConnectionChangesNothing(t *testing.T) {
	gw, _, _ := startDemoGateway(t, "expunge")
	before := imapFlags(t, gw.demo.Addr(), "demo", "demo")
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	c.Cmd("PASS demo")
	c.Cmd("RETR 1")
	c.Multi()
	c.Cmd("DELE 1")
	c.Cmd("DELE 2")
	c.C.Close() // no QUIT

	// The session ends on the gateway side asynchronously; poll briefly.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after := imapFlags(t, gw.demo.Addr(), "demo", "demo")
		if len(after) != len(before) {
			t.Fatalf("messages %d -> %d after a dropped connection", len(before), len(after))
		}
		for i := range after {
			if !slices.Equal(after[i], before[i]) {
				t.Fatalf("message %d flags %v -> %v after a dropped connection", i+1, before[i], after[i])
			}
		}
	}
}

func TestDemoBadPasswordIsAuthError(t *testing.T) {
	gw, _, _ := startDemoGateway(t, "flag")
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER demo")
	if r := c.Cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("PASS wrong = %q, want prefix %q", r, "-ERR [AUTH]")
	}
}

// imapFlags returns the flags of every INBOX message, by ascending UID,
// read over a separate IMAP connection.
func imapFlags(t *testing.T, addr, user, pass string) [][]imap.Flag {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	out := make([][]imap.Flag, len(msgs))
	for i, m := range msgs {
		out[i] = slices.DeleteFunc(slices.Clone(m.Flags), func(f imap.Flag) bool { return f == imap.Flag(`\Recent`) })
		slices.Sort(out[i])
	}
	c.Logout().Wait()
	return out
}

// logBuffer collects log output written from many goroutines.
type logBuffer = syncbuf.Buffer
