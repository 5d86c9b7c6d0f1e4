package pop3front

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const refused = "-ERR [AUTH] Plaintext authentication disallowed\r\n"

// TestPlaintextPolicy: where the policy refuses cleartext passwords, CAPA
// hides USER and SASL, every way to send one is refused with the same
// text, and nothing reaches the backend; after STLS all is back.
func TestPlaintextPolicy(t *testing.T) {
	capaHidden := capaHead + capaMid + ".\r\n"
	capaHiddenSTLS := capaHead + capaMid + "STLS\r\n.\r\n"
	cases := []struct {
		name   string
		policy PlaintextPolicy
		ip     string
		allow  bool
	}{
		{"loopback policy, remote client", PlaintextLoopback, "192.0.2.7", false},
		{"loopback policy, 127.0.0.1", PlaintextLoopback, "127.0.0.1", true},
		{"loopback policy, 127.1.2.3", PlaintextLoopback, "127.1.2.3", true},
		{"loopback policy, ::1", PlaintextLoopback, "::1", true},
		{"loopback policy, mapped 127.0.0.1", PlaintextLoopback, "::ffff:127.0.0.1", true},
		{"loopback policy, remote IPv6", PlaintextLoopback, "2001:db8::7", false},
		{"never, even loopback", PlaintextNever, "127.0.0.1", false},
		{"always, remote", PlaintextAlways, "192.0.2.7", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, withTLS := range []bool{false, true} {
				be := newFake()
				srv := &Server{Backend: be, Plaintext: c.policy, Limits: Limits{MaxBadCommands: 100}}
				if withTLS {
					srv.TLSConfig = serverTLS(t)
				}
				addr := serveFrom(t, srv, c.ip, false)
				cl := dial(t, addr)
				if c.allow {
					want := capaFull
					if withTLS {
						want = capaHead + "USER\r\n" + capaMid + "STLS\r\nSASL PLAIN LOGIN\r\n.\r\n"
					}
					runSteps(t, cl, []step{{"CAPA", want}})
					cl.login()
					if got := addrIP(lastLogin(t, be).Client); got != netip.MustParseAddr(c.ip).Unmap() {
						t.Errorf("LoginRequest.Client %v, want %s", got, c.ip)
					}
					continue
				}
				want := capaHidden
				if withTLS {
					want = capaHiddenSTLS
				}
				runSteps(t, cl, []step{
					{"CAPA", want},
					{"AUTH", "+OK\r\n.\r\n"},
					{"USER alice", refused},
					{"PASS secret", refused},
					{"AUTH PLAIN " + b64("\x00alice\x00secret"), refused},
					{"AUTH PLAIN", refused},
					{"AUTH LOGIN", refused},
					{"auth login " + b64("alice"), refused},
					{"AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism.\r\n"},
				})
				if calls := be.Calls(); len(calls) != 0 {
					t.Fatalf("backend saw %q", calls)
				}
				if !withTLS {
					continue
				}
				cl.stls()
				runSteps(t, cl, []step{{"CAPA", capaFull}})
				runSteps(t, cl, []step{{"AUTH PLAIN " + b64("\x00alice\x00secret"), "+OK Logged in.\r\n"}})
				if r := lastLogin(t, be); !r.TLS || addrIP(r.Client) != netip.MustParseAddr(c.ip).Unmap() {
					t.Errorf("login request %+v", r)
				}
			}
		})
	}
}

// TestPlaintextRefusalsCount: refused attempts are bad commands, so a
// client cannot loop on them.
func TestPlaintextRefusalsCount(t *testing.T) {
	logs := &syncBuffer{}
	srv := &Server{Backend: newFake(), Logger: slog.New(slog.NewTextHandler(logs, nil))}
	addr := serveFrom(t, srv, "192.0.2.7", false)
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"USER a", refused}, {"AUTH PLAIN x", refused}})
	if got := cl.cmd("PASS b"); got != "-ERR Too many bad commands\r\n" {
		t.Fatalf("got %q, want %q", got, "-ERR Too many bad commands\r\n")
	}
	cl.expectClosed()
	if !strings.Contains(logs.String(), `msg="pop3 plaintext login refused" ip=192.0.2.7`) {
		t.Errorf("no refusal log line:\n%s", logs)
	}
}

func TestAddrIP(t *testing.T) {
	cases := []struct {
		addr net.Addr
		ip   string // "" for none
		key  string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7", "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7", "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "/run/pop3.sock", Net: "unix"}, "", ""},
		{nil, "", ""},
	}
	for _, c := range cases {
		ip := addrIP(c.addr)
		got, key := "", ""
		if ip.IsValid() {
			got, key = ip.String(), ipKey(ip).String()
		}
		if got != c.ip || key != c.key {
			t.Errorf("%v: ip %q key %q, want %q %q", c.addr, got, key, c.ip, c.key)
		}
	}
	if ipKey(netip.Addr{}).IsValid() {
		t.Error("key of no address is valid")
	}
}

// serveUnknown serves srv to connections whose RemoteAddr is an
// UnknownClient relayed by 127.0.0.1, as behind a PROXY header without a
// client address.
func serveUnknown(t *testing.T, srv *Server) string {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := addrListener{inner, func(c net.Conn) net.Addr { return UnknownClient{Relay: c.RemoteAddr()} }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return inner.Addr().String()
}

// TestUnknownClient: a client whose address its relay did not name is
// never loopback, and counts under the relay's address for penalties,
// caps and the failed-login line.
func TestUnknownClient(t *testing.T) {
	cl := dial(t, serveUnknown(t, &Server{Backend: newFake(), Logger: discardLogger()}))
	runSteps(t, cl, []step{{"USER alice", refused}, {"AUTH PLAIN " + b64("\x00alice\x00secret"), refused}})

	logs := &syncBuffer{}
	be := newFake()
	srv := &Server{Backend: be, Plaintext: PlaintextAlways, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Limits: Limits{MaxConnectionsPerIP: 1, AuthPenaltyInitial: time.Millisecond, AuthPenaltyMax: time.Millisecond}}
	addr := serveUnknown(t, srv)
	cl = dial(t, addr)
	cl.cmd("USER alice")
	if r := cl.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("wrong password: %q, want prefix %q", r, "-ERR")
	}
	if !strings.Contains(logs.String(), `msg="pop3 login failed" ip=127.0.0.1 client="unknown via 127.0.0.1:`) {
		t.Errorf("failed-login line lacks the relay's address:\n%s", logs)
	}
	if got := srv.penalties().delay(netip.MustParseAddr("127.0.0.1")); got != time.Millisecond {
		t.Errorf("penalty under the relay's address %v, want 1ms", got)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != "-ERR [SYS/TEMP] Too many connections from your address.\r\n" {
		t.Errorf("second connection got %q, want the per-address refusal", b)
	}
	cl.cmd("USER alice")
	cl.cmd("PASS secret")
	if _, ok := lastLogin(t, be).Client.(UnknownClient); !ok {
		t.Errorf("LoginRequest.Client %v, want an UnknownClient", lastLogin(t, be).Client)
	}
}
