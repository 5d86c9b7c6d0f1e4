package pop3front

import (
	"encoding/base64"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSASL(t *testing.T) {
	plain := b64("\x00alice\x00secret")
	cases := []struct {
		name   string
		steps  []step
		user   string // the LoginRequest expected, "" for none
		authz  string
		mech   string
		authed bool
		master bool // Server.AllowMasterUser
		closed bool // the server closes after the steps
	}{
		{name: "bare AUTH lists mechanisms", steps: []step{{"AUTH", "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"}}},
		{name: "PLAIN initial response", steps: []step{{"AUTH PLAIN " + plain, "+OK Logged in.\r\n"}},
			user: "alice", mech: "PLAIN", authed: true},
		{name: "plain lower case", steps: []step{{"auth plain " + plain, "+OK Logged in.\r\n"}},
			user: "alice", mech: "PLAIN", authed: true},
		{name: "PLAIN continuation", steps: []step{{"AUTH PLAIN", "+ \r\n"}, {plain, "+OK Logged in.\r\n"}},
			user: "alice", mech: "PLAIN", authed: true},
		{name: "PLAIN unpadded", steps: []step{{"AUTH PLAIN " + strings.TrimRight(plain, "="), "+OK Logged in.\r\n"}},
			user: "alice", mech: "PLAIN", authed: true},
		{name: "PLAIN authzid refused without master-user mode", steps: []step{{"AUTH PLAIN " + b64("admin\x00alice\x00secret"), "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "PLAIN authzid passed on in master-user mode", master: true, steps: []step{{"AUTH PLAIN " + b64("admin\x00alice\x00secret"), "+OK Logged in.\r\n"}},
			user: "alice", authz: "admin", mech: "PLAIN", authed: true},
		{name: "PLAIN authzid equal to authcid is no authzid", steps: []step{{"AUTH PLAIN " + b64("alice\x00alice\x00secret"), "+OK Logged in.\r\n"}},
			user: "alice", mech: "PLAIN", authed: true},
		{name: "PLAIN continuation empty response", steps: []step{{"AUTH PLAIN", "+ \r\n"}, {"=", "-ERR Malformed SASL response.\r\n"}}},
		{name: "LOGIN empty user name", steps: []step{{"AUTH LOGIN =", "+ UGFzc3dvcmQ6\r\n"}, {b64("secret"), "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "PLAIN initial response over the line limit", steps: []step{{"AUTH PLAIN " + strings.Repeat("QUFB", 300), "-ERR Line too long\r\n"}}, closed: true},
		{name: "PLAIN wrong password", steps: []step{{"AUTH PLAIN " + b64("\x00alice\x00nope"), "-ERR [AUTH] Authentication failed.\r\n"}},
			user: "alice", mech: "PLAIN"},
		{name: "PLAIN cancel", steps: []step{{"AUTH PLAIN", "+ \r\n"}, {"*", "-ERR Authentication cancelled.\r\n"}}},
		{name: "PLAIN empty initial response", steps: []step{{"AUTH PLAIN =", "-ERR Malformed SASL response.\r\n"}}},
		{name: "PLAIN bad base64", steps: []step{{"AUTH PLAIN !!!!", "-ERR Invalid base64 data.\r\n"}}},
		{name: "PLAIN bad base64 continuation", steps: []step{{"AUTH PLAIN", "+ \r\n"}, {"a=b=", "-ERR Invalid base64 data.\r\n"}}},
		{name: "PLAIN one NUL", steps: []step{{"AUTH PLAIN " + b64("alice\x00secret"), "-ERR Malformed SASL response.\r\n"}}},
		{name: "PLAIN three NULs", steps: []step{{"AUTH PLAIN " + b64("\x00alice\x00sec\x00ret"), "-ERR Malformed SASL response.\r\n"}}},
		{name: "PLAIN empty authcid", steps: []step{{"AUTH PLAIN " + b64("alice\x00\x00secret"), "-ERR Malformed SASL response.\r\n"}}},
		{name: "PLAIN empty password", steps: []step{{"AUTH PLAIN " + b64("\x00alice\x00"), "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "PLAIN CR in password never reaches backend", steps: []step{{"AUTH PLAIN " + b64("\x00alice\x00sec\r\nret"), "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "PLAIN invalid UTF-8 never reaches backend", steps: []step{{"AUTH PLAIN " + b64("\x00al\xffice\x00secret"), "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "LOGIN", steps: []step{{"AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"}, {b64("alice"), "+ UGFzc3dvcmQ6\r\n"}, {b64("secret"), "+OK Logged in.\r\n"}},
			user: "alice", mech: "LOGIN", authed: true},
		{name: "LOGIN initial response", steps: []step{{"AUTH LOGIN " + b64("alice"), "+ UGFzc3dvcmQ6\r\n"}, {b64("secret"), "+OK Logged in.\r\n"}},
			user: "alice", mech: "LOGIN", authed: true},
		{name: "LOGIN cancel at user", steps: []step{{"AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"}, {"*", "-ERR Authentication cancelled.\r\n"}}},
		{name: "LOGIN cancel at password", steps: []step{{"AUTH LOGIN " + b64("alice"), "+ UGFzc3dvcmQ6\r\n"}, {"*", "-ERR Authentication cancelled.\r\n"}}},
		{name: "LOGIN empty password", steps: []step{{"AUTH LOGIN " + b64("alice"), "+ UGFzc3dvcmQ6\r\n"}, {"=", "-ERR [AUTH] Authentication failed.\r\n"}}},
		{name: "LOGIN bad base64", steps: []step{{"AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"}, {"@@@", "-ERR Invalid base64 data.\r\n"}}},
		{name: "unknown mechanism", steps: []step{{"AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism.\r\n"}}},
		{name: "too many arguments", steps: []step{{"AUTH PLAIN a b", "-ERR Too many arguments.\r\n"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be, addr := startFake(t, func(s *Server) { s.AllowMasterUser = c.master })
			cl := dial(t, addr)
			runSteps(t, cl, c.steps)
			if c.closed {
				cl.expectClosed()
				if n := len(be.Calls()); n != 0 {
					t.Errorf("backend saw %q", be.Calls())
				}
				return
			}
			// The session goes on in the right state.
			want := "-ERR Not logged in.\r\n"
			if c.authed {
				want = "+OK 3 88\r\n"
			}
			if got := cl.cmd("STAT"); got != want {
				t.Errorf("STAT after: %q, want %q", got, want)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if c.user == "" {
				if len(be.logins) != 0 {
					t.Errorf("backend saw %+v", be.logins)
				}
				return
			}
			if len(be.logins) != 1 {
				t.Fatalf("logins %+v", be.logins)
			}
			r := be.logins[0]
			if r.Username != c.user || r.AuthzID != c.authz || r.Mechanism != c.mech || r.TLS || r.Client == nil {
				t.Errorf("login request %+v", r)
			}
		})
	}
}

// TestSASLLineBound: SASL continuation lines are bounded like commands.
func TestSASLLineBound(t *testing.T) {
	_, addr := startFake(t, nil)
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"AUTH PLAIN", "+ \r\n"}, {strings.Repeat("A", 2000), "-ERR Line too long\r\n"}})
	cl.expectClosed()
}

func TestUserPassVerbatim(t *testing.T) {
	be, addr := startFake(t, nil)
	be.User, be.Pass = "al ice", " p a\"ss{5}\\ "
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"USER al ice", "+OK Send PASS.\r\n"}, {"PASS  p a\"ss{5}\\ ", "+OK Logged in.\r\n"}})
}
