package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
	"github.com/popbridge/popbridge/internal/testtb"
	"github.com/popbridge/popbridge/internal/upstreams"
)

// The gateway in front of IMAP servers other than Dovecot,
// each started by the test on loopback with its own configuration
// (internal/upstreams). Expected bytes are what the server itself serves
// (BODY[] read by the oracle), not what was delivered: every server
// changes some messages (mailutils adds X-IMAPbase, X-UID and Status
// headers and truncates at a NUL).

// realServer is one kind of server the suite runs.
type realServer struct {
	name  string
	start func(t testtb.TB, users ...upstreams.User) *upstreams.Server
	// uidplus: the server offers UID EXPUNGE (the expunge, trash and
	// archive policies work); without it they are refused at login.
	uidplus bool
	// keywords: the mailbox stores new keywords (PERMANENTFLAGS \*);
	// without, the keyword policy fails at QUIT with -ERR [SYS/TEMP] and
	// the log names PERMANENTFLAGS (EXAMINE cannot tell at login).
	keywords bool
	// substitute: a fetch of a message another session expunged is
	// answered OK with a 129-byte "message unavailable" stand-in (Courier);
	// only the size check against the snapshot tells it from the message.
	substitute bool
}

var realServers = []realServer{
	{name: "mailutils", start: upstreams.StartMailutils, uidplus: false, keywords: false},
	{name: "cyrus", start: upstreams.StartCyrus, uidplus: true, keywords: true},
	{name: "courier", start: upstreams.StartCourier, uidplus: true, keywords: true, substitute: true},
}

// startGatewayFor starts the gateway in front of srv, with the trash and
// archive folders srv names (Courier's live under INBOX).
func startGatewayFor(t testing.TB, srv *upstreams.Server, pol policy, fallback bool) *gateway {
	t.Helper()
	bin := gatewayBinary(t)
	addr := srv.Addr()
	trash, archive := folders(srv)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		popAddr := l.Addr().String()
		l.Close()
		conf := filepath.Join(dir, "popbridge.toml")
		text := fmt.Sprintf(`# Written by the e2e tests (servers_test.go).
[pop3]
listen = %q

[upstream]
address = %q
security = "none"
mailbox = "INBOX"

[policy]
delete = %q
seen = %q
trash = %q
archive = %q
fallback_to_flag = %v

[log]
level = "debug"
format = "text"
`, popAddr, addr, pol.Delete, pol.Seen, trash, archive, fallback)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "popbridge.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-config", conf)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		err = cmd.Start()
		logFile.Close()
		if err != nil {
			t.Fatal(err)
		}
		g := &gateway{addr: popAddr, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
		go func() { g.waitErr = cmd.Wait(); close(g.exited) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err = greets(popAddr)
			if err == nil {
				t.Cleanup(func() { g.stop(t) })
				return g
			}
			select {
			case <-g.exited:
			default:
				if time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				g.kill()
			}
			break
		}
		if attempt < 3 && strings.Contains(g.log(), "address already in use") {
			continue
		}
		t.Fatalf("starting the gateway: %v\n%s", err, g.log())
	}
}

// folders returns the trash and archive folders of srv.
func folders(srv *upstreams.Server) (trash, archive string) {
	trash, archive = "Trash", "Archive"
	if srv.Trash != "" {
		trash = srv.Trash
	}
	if srv.Archive != "" {
		archive = srv.Archive
	}
	return trash, archive
}

// served returns the corpus with Served replaced by what srv serves for
// each message (same order: UIDs ascending).
func served(t *testing.T, srv *upstreams.Server, user string, msgs []testmail.Message) []testmail.Message {
	t.Helper()
	got := srv.Messages(t, user, "INBOX")
	if len(got) != len(msgs) {
		t.Fatalf("%s holds %d messages, want %d", srv.Name, len(got), len(msgs))
	}
	out := slices.Clone(msgs)
	for i := range out {
		out[i].Served = got[i].Body
		if !bytes.Equal(got[i].Body, msgs[i].Served) {
			t.Logf("%s serves %s differently from Dovecot: %s", srv.Name, msgs[i].Name, firstDiff(got[i].Body, msgs[i].Served))
		}
	}
	return out
}

func stateOf(msgs []oracle.Message) map[uint32][]string {
	out := map[uint32][]string{}
	for _, m := range msgs {
		out[m.UID] = m.Flags
	}
	return out
}

// TestServersClientsDownload: every real POP3 client downloads the tricky
// corpus through the gateway from each server, byte-exact as the server
// serves it (seen=never, so nothing changes upstream). The time of curl's
// and poplib's downloads is logged per server (not asserted).
func TestServersClientsDownload(t *testing.T) {
	for _, rs := range realServers {
		t.Run(rs.name, func(t *testing.T) {
			srv := rs.start(t, upstreams.User{Name: "small", Password: "small-pw"})
			user := srv.Login("small")
			var corpus []testmail.Message
			for _, m := range testmail.Small() {
				// Cyrus refuses bare LF and NUL: those are left out
				// (Courier stores every message of the corpus; it adds a
				// missing final CRLF and keeps NUL).
				if err := srv.TryAppend(t, "small", "INBOX", m.Raw)[0]; err != nil {
					t.Logf("%s refuses %s: %v", rs.name, m.Name, err)
					continue
				}
				corpus = append(corpus, m)
			}
			msgs := served(t, srv, "small", corpus)
			before := srv.Messages(t, "small", "INBOX")
			g := startGatewayFor(t, srv, policy{Delete: "flag", Seen: "never"}, false)
			expect := func(m testmail.Message) []byte { return testmail.POP3Octets(m.Served) }
			var mu sync.Mutex
			times := map[string]time.Duration{}
			t.Run("clients", func(t *testing.T) {
				for _, c := range popClients {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						dovecottest.RequireTool(t, c.tool)
						start := time.Now()
						got := c.download(t, g.addr, user, "small-pw", len(msgs))
						mu.Lock()
						times[c.name] = time.Since(start)
						mu.Unlock()
						checkDownload(t, c, got, msgs, expect)
					})
				}
			})
			t.Logf("%s (%s): %d messages, download times %v", rs.name, srv.Version, len(msgs), times)
			after := srv.Messages(t, "small", "INBOX")
			if fmt.Sprint(stateOf(after)) != fmt.Sprint(stateOf(before)) {
				t.Errorf("downloads changed the mailbox:\n before %v\n after  %v", stateOf(before), stateOf(after))
			}
		})
	}
}

// TestServersDeletePolicies: each delete policy works on each server or
// is refused at login with -ERR [SYS/PERM] naming what the server lacks;
// with fallback_to_flag the refused ones act as flag.
func TestServersDeletePolicies(t *testing.T) {
	for _, rs := range realServers {
		t.Run(rs.name, func(t *testing.T) {
			users := []upstreams.User{}
			type run struct {
				pol      string
				fallback bool
			}
			var runs []run
			for _, pol := range []string{"flag", "keyword", "keep", "trash", "archive", "expunge"} {
				runs = append(runs, run{pol, false})
				if !rs.uidplus && (pol == "trash" || pol == "archive" || pol == "expunge") {
					runs = append(runs, run{pol, true})
				}
			}
			for i := range runs {
				users = append(users, upstreams.User{Name: fmt.Sprintf("u%d", i), Password: "pw"})
			}
			srv := rs.start(t, users...)
			for i, r := range runs {
				name := r.pol
				if r.fallback {
					name += "-fallback"
				}
				t.Run(name, func(t *testing.T) {
					u := users[i].Name
					srv.Append(t, u, "INBOX", testmail.Ordinary(3)[0].Raw, testmail.Ordinary(3)[1].Raw, testmail.Ordinary(3)[2].Raw)
					before := srv.Messages(t, u, "INBOX")
					g := startGatewayFor(t, srv, policy{Delete: r.pol, Seen: "never"}, r.fallback)
					p := dialPOP3(t, g.addr)
					p.ok("USER " + srv.Login(u))
					reply := p.cmd("PASS pw")
					refused := !rs.uidplus && !r.fallback && (r.pol == "trash" || r.pol == "archive" || r.pol == "expunge")
					if refused {
						if !strings.HasPrefix(reply, "-ERR [SYS/PERM]") || !strings.Contains(reply, "UIDPLUS") {
							t.Fatalf("PASS = %q, want -ERR [SYS/PERM] naming UIDPLUS", reply)
						}
						t.Logf("refused as documented: %q", strings.TrimSpace(reply))
						return
					}
					if !strings.HasPrefix(reply, "+OK") {
						t.Fatalf("PASS = %q, want prefix %q", reply, "+OK")
					}
					p.ok("DELE 2")
					if r.pol == "keyword" && !rs.keywords {
						if reply := p.cmd("QUIT"); !strings.HasPrefix(reply, "-ERR [SYS/TEMP]") {
							t.Fatalf("QUIT = %q, want -ERR [SYS/TEMP]", reply)
						}
						if !strings.Contains(g.log(), "PERMANENTFLAGS") {
							t.Errorf("the gateway's log does not say why the keyword policy failed")
						}
						if after := srv.Messages(t, u, "INBOX"); fmt.Sprint(stateOf(after)) != fmt.Sprint(stateOf(before)) {
							t.Errorf("failed QUIT changed the mailbox: %v", stateOf(after))
						}
						return
					}
					p.quit()
					after := stateOf(srv.Messages(t, u, "INBOX"))
					t.Logf("%s: before %v, after %v", u, stateOf(before), after)
					effective := r.pol
					if r.fallback {
						effective = "flag"
					}
					checkServerDelete(t, srv, u, before, after, effective)
				})
			}
		})
	}
}

// checkServerDelete checks TestServersDeletePolicies' QUIT (DELE 2): the
// second message of before is flagged, kept or moved as the effective
// policy says; every other message is unchanged in after.
func checkServerDelete(t *testing.T, srv *upstreams.Server, u string, before []oracle.Message, after map[uint32][]string, effective string) {
	t.Helper()
	two := before[1].UID
	for _, m := range before {
		fl, present := after[m.UID]
		if m.UID != two {
			if !present || fmt.Sprint(fl) != fmt.Sprint(m.Flags) {
				t.Errorf("UID %d changed: %v -> %v (present %v)", m.UID, m.Flags, fl, present)
			}
			continue
		}
		switch effective {
		case "flag":
			if !slices.Contains(fl, `\Deleted`) {
				t.Errorf("flag: UID %d flags %v", two, fl)
			}
		case "keyword":
			if !slices.Contains(fl, "$POP3Deleted") || slices.Contains(fl, `\Deleted`) {
				t.Errorf("keyword: UID %d flags %v", two, fl)
			}
		case "keep":
			if slices.Contains(fl, `\Deleted`) {
				t.Errorf("keep: UID %d flags %v", two, fl)
			}
		default:
			if present {
				t.Errorf("%s: UID %d still in INBOX", effective, two)
			}
			trash, archive := folders(srv)
			folder := map[string]string{"trash": trash, "archive": archive}[effective]
			if folder != "" {
				if n := len(srv.Messages(t, u, folder)); n != 1 {
					t.Errorf("%s: %s holds %d messages, want 1", effective, folder, n)
				}
			}
		}
	}
}

// phoneExpunge removes uids as another IMAP client would: SELECT, STORE
// \Deleted, then UID EXPUNGE where offered, else a plain EXPUNGE (the
// phone's choice, not the gateway's). It speaks IMAP by hand: go-imap
// itself cannot take mailutils' "* n EXPUNGED".
func phoneExpunge(t *testing.T, srv *upstreams.Server, user string, uidplus bool, uids ...uint32) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	set := uidSet(uids...).String()
	expunge := "EXPUNGE"
	if uidplus {
		expunge = "UID EXPUNGE " + set
	}
	for i, cmd := range []string{
		fmt.Sprintf("LOGIN %q %q", srv.Login(user), srv.Password(user)),
		"SELECT INBOX",
		"UID STORE " + set + ` +FLAGS.SILENT (\Deleted)`,
		expunge,
		"LOGOUT",
	} {
		tag := fmt.Sprintf("p%d", i)
		fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("phone: %s: %v", cmd, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("phone: %s: %q, want prefix %q", cmd, l, tag+" OK")
				}
				break
			}
		}
	}
}

// TestServersPhoneExpunge: a phone expunges messages 2 and 5 (the last)
// while a POP3 session is open. RETR answers each message either exactly
// as snapshotted or "expunged" (never other bytes), and QUIT with DELE
// 2, 3 and 5 flags message 3 only: on mailutils a UID above the last
// would otherwise name the last message. Courier answers the fetches of 2
// and 5 with its 129-byte stand-in: never delivered, and the gateway's log
// shows its size check refused it.
func TestServersPhoneExpunge(t *testing.T) {
	for _, rs := range realServers {
		t.Run(rs.name, func(t *testing.T) {
			srv := rs.start(t, upstreams.User{Name: "u", Password: "pw"})
			corpus := testmail.Ordinary(5)
			for _, m := range corpus {
				srv.Append(t, "u", "INBOX", m.Raw)
			}
			msgs := served(t, srv, "u", corpus)
			before := srv.Messages(t, "u", "INBOX")
			g := startGatewayFor(t, srv, policy{Delete: "flag", Seen: "never"}, false)
			p := dialPOP3(t, g.addr)
			p.login(srv.Login("u"), "pw")
			stat := p.ok("STAT")
			phoneExpunge(t, srv, "u", rs.uidplus, before[1].UID, before[4].UID)
			if s := p.ok("STAT"); s != stat {
				t.Errorf("STAT changed: %q then %q", stat, s)
			}
			for n := 1; n <= len(msgs); n++ {
				want := testmail.POP3Octets(msgs[n-1].Served)
				status, raw := p.multi(fmt.Sprintf("RETR %d", n))
				switch {
				case strings.HasPrefix(status, "+OK"):
					got := unstuff(raw)
					if bytes.Contains(got, []byte("Subject: message unavailable")) {
						t.Errorf("RETR %d delivered %s's %d-byte stand-in for an expunged message", n, rs.name, len(got))
					} else if !bytes.Equal(got, want) {
						t.Errorf("RETR %d delivered other bytes than the snapshotted message: %s", n, firstDiff(got, want))
					}
					if n == 2 || n == 5 {
						t.Logf("RETR %d: %s still serves the expunged message (its original bytes)", n, rs.name)
					}
				case strings.HasPrefix(status, fmt.Sprintf("-ERR Message %d expunged.", n)) && (n == 2 || n == 5):
				default:
					t.Errorf("RETR %d = %q", n, status)
				}
				if rs.substitute && (n == 2 || n == 5) && !strings.HasPrefix(status, "-ERR") {
					t.Errorf("RETR %d = %q, want -ERR: %s no longer has the message", n, status, rs.name)
				}
			}
			if rs.substitute {
				if l := g.log(); !strings.Contains(l, "upstream would deliver a different message") || !strings.Contains(l, "literal_size=129") {
					t.Errorf("the gateway's log does not show the size check refusing %s's 129-byte stand-in", rs.name)
				}
			}
			p.ok("DELE 2")
			p.ok("DELE 3")
			p.ok("DELE 5")
			p.quit()
			after := srv.Messages(t, "u", "INBOX")
			if len(after) != 3 {
				t.Fatalf("%d messages after QUIT, want 3", len(after))
			}
			for _, m := range after {
				if want := m.UID == before[2].UID; slices.Contains(m.Flags, `\Deleted`) != want {
					t.Errorf("UID %d flags %v (want \\Deleted: %v)", m.UID, m.Flags, want)
				}
			}
		})
	}
}

// TestServersTwoSessions: two POP3 sessions of one user at once; both
// download, their DELE sets are both applied, nothing else changes.
func TestServersTwoSessions(t *testing.T) {
	for _, rs := range realServers {
		t.Run(rs.name, func(t *testing.T) {
			srv := rs.start(t, upstreams.User{Name: "u", Password: "pw"})
			corpus := testmail.Ordinary(4)
			for _, m := range corpus {
				srv.Append(t, "u", "INBOX", m.Raw)
			}
			msgs := served(t, srv, "u", corpus)
			before := srv.Messages(t, "u", "INBOX")
			g := startGatewayFor(t, srv, policy{Delete: "flag", Seen: "never"}, false)
			a, b := dialPOP3(t, g.addr), dialPOP3(t, g.addr)
			a.login(srv.Login("u"), "pw")
			b.login(srv.Login("u"), "pw")
			for n := 1; n <= len(msgs); n++ {
				want := testmail.POP3Octets(msgs[n-1].Served)
				for _, p := range []*pop3Conn{a, b} {
					if got := p.retr(n); !bytes.Equal(got, want) {
						t.Errorf("RETR %d: %s", n, firstDiff(got, want))
					}
				}
			}
			a.ok("DELE 1")
			b.ok("DELE 1")
			b.ok("DELE 3")
			a.quit()
			b.quit()
			for _, m := range srv.Messages(t, "u", "INBOX") {
				want := m.UID == before[0].UID || m.UID == before[2].UID
				if slices.Contains(m.Flags, `\Deleted`) != want {
					t.Errorf("UID %d flags %v (want \\Deleted: %v)", m.UID, m.Flags, want)
				}
			}
		})
	}
}

func uidSet(uids ...uint32) imap.UIDSet {
	var s imap.UIDSet
	for _, u := range uids {
		s.AddNum(imap.UID(u))
	}
	return s
}
