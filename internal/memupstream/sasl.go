package memupstream

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
)

// AuthenticateMechanisms implements imapserver.SessionSASL: PLAIN, plus
// OAUTHBEARER (RFC 7628) and XOAUTH2 when Options.CheckBearer is set.
func (s *session) AuthenticateMechanisms() []string {
	if s.checkBearer == nil {
		return []string{"PLAIN"}
	}
	return []string{"PLAIN", "OAUTHBEARER", "XOAUTH2"}
}

// Authenticate implements imapserver.SessionSASL.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch {
	case mech == "PLAIN":
		// As imapserver does without SessionSASL.
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "SASL identity not supported"}
			}
			return s.Login(username, password)
		}), nil
	case s.checkBearer != nil && (mech == "OAUTHBEARER" || mech == "XOAUTH2"):
		return &bearerServer{sess: s, mech: mech}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// bearerServer is the server side of OAUTHBEARER and XOAUTH2. A refused
// token gets the JSON error challenge (RFC 7628 section 3.2.2); the client
// must answer it with a single %x01 (OAUTHBEARER, section 3.2.3; XOAUTH2
// also takes an empty response), and then gets the tagged NO. Any other
// answer gets BAD, so tests see a client that gets the dance wrong.
type bearerServer struct {
	sess   *session
	mech   string
	failed bool
}

func (b *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed {
		ok := bytes.Equal(resp, []byte{0x01}) || (b.mech == "XOAUTH2" && len(resp) == 0)
		if !ok {
			return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "unexpected response to the error challenge"}
		}
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid token"}
	}
	if resp == nil {
		return nil, false, nil // "+ ": send the initial response
	}
	user, token, ok := parseBearer(b.mech, resp)
	if !ok {
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "malformed " + b.mech + " message"}
	}
	if !b.sess.checkBearer(user, token) {
		b.failed = true
		ch, _ := json.Marshal(map[string]string{"status": "invalid_token", "schemes": "bearer", "scope": "mail"})
		return ch, false, nil
	}
	if err := b.sess.Session.Login(user, b.sess.password(user)); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}

// parseBearer returns the user and token of an OAUTHBEARER initial
// response ("n,a=USER,\x01host=...\x01auth=Bearer T\x01\x01", RFC 7628
// section 3.1) or an XOAUTH2 one ("user=U\x01auth=Bearer T\x01\x01").
func parseBearer(mech string, resp []byte) (user, token string, ok bool) {
	msg := string(resp)
	if !strings.HasSuffix(msg, "\x01\x01") {
		return "", "", false
	}
	var kvs string
	if mech == "OAUTHBEARER" {
		gs2, rest, found := strings.Cut(msg, ",")
		if !found || gs2 != "n" {
			return "", "", false
		}
		authz, rest, found := strings.Cut(rest, ",")
		if !found || !strings.HasPrefix(authz, "a=") {
			return "", "", false
		}
		user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(authz[2:])
		kvs = rest
	} else {
		kvs = "\x01" + msg
	}
	for _, kv := range strings.Split(strings.TrimSuffix(kvs, "\x01\x01"), "\x01") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				token = v[7:]
			}
		}
	}
	return user, token, user != "" && token != ""
}
