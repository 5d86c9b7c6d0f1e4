package memupstream

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"testing"
)

// authenticate runs one AUTHENTICATE over a raw connection: the initial
// response ir, then answer to any challenge; it returns the challenge
// (decoded) and the tagged line.
func authenticate(t *testing.T, addr, mech, ir, answer string) (challenge, tagged string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	br.ReadString('\n')
	c.Write([]byte("a AUTHENTICATE " + mech + " " + base64.StdEncoding.EncodeToString([]byte(ir)) + "\r\n"))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(l, "+ "):
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(l[2:]))
			challenge = string(b)
			c.Write([]byte(answer + "\r\n"))
		case strings.HasPrefix(l, "a "):
			return challenge, strings.TrimSpace(l[2:])
		}
	}
}

func TestBearerSASL(t *testing.T) {
	s, err := Start("127.0.0.1:0", Options{CheckBearer: func(user, token string) bool { return user == "u" && token == "good" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddUser("u", "p")
	ob := func(tok string) string { return "n,a=u,\x01host=h\x01port=1\x01auth=Bearer " + tok + "\x01\x01" }
	xo := func(tok string) string { return "user=u\x01auth=Bearer " + tok + "\x01\x01" }
	for _, tc := range []struct {
		name, mech, ir, answer string
		challenge, tagged      string
	}{
		{"oauthbearer ok", "OAUTHBEARER", ob("good"), "", "", "OK"},
		{"xoauth2 ok", "XOAUTH2", xo("good"), "", "", "OK"},
		{"oauthbearer bad token", "OAUTHBEARER", ob("bad"), "AQ==", `"status":"invalid_token"`, "NO [AUTHENTICATIONFAILED]"},
		{"xoauth2 bad token", "XOAUTH2", xo("bad"), "", `"status":"invalid_token"`, "NO [AUTHENTICATIONFAILED]"},
		{"xoauth2 bad token, %x01", "XOAUTH2", xo("bad"), "AQ==", `"status":"invalid_token"`, "NO [AUTHENTICATIONFAILED]"},
		{"xoauth2 wrong answer", "XOAUTH2", xo("bad"), "eA==", `"status":"invalid_token"`, "BAD"},
		{"oauthbearer wrong answer", "OAUTHBEARER", ob("bad"), "=", `"status":"invalid_token"`, "BAD"},
		{"malformed", "OAUTHBEARER", "user=u\x01auth=Bearer good\x01\x01", "", "", "BAD"},
	} {
		ch, tagged := authenticate(t, s.Addr(), tc.mech, tc.ir, tc.answer)
		if !strings.Contains(ch, tc.challenge) || (tc.challenge == "" && ch != "") || !strings.HasPrefix(tagged, tc.tagged) {
			t.Errorf("%s: challenge %q, tagged %q; want challenge with %q, tagged %q", tc.name, ch, tagged, tc.challenge, tc.tagged)
		}
	}
	// Without CheckBearer only PLAIN is offered.
	s2, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, tagged := authenticate(t, s2.Addr(), "XOAUTH2", xo("good"), ""); !strings.HasPrefix(tagged, "NO") {
		t.Errorf("XOAUTH2 without CheckBearer: %q, want NO", tagged)
	}
}
