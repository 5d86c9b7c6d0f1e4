package imapback

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/popbridge/popbridge/pop3front"
)

// OAuthMechanism selects the SASL mechanism of a bearer-token login.
type OAuthMechanism string

const (
	// OAuthAuto uses OAUTHBEARER if the server advertises it, else
	// XOAUTH2 if advertised; with neither, the login fails.
	OAuthAuto        OAuthMechanism = "auto"
	OAuthOAuthBearer OAuthMechanism = "oauthbearer" // RFC 7628
	OAuthXOAuth2     OAuthMechanism = "xoauth2"     // Google's and Microsoft's
)

// ErrTokenRejected is returned (wrapped, so that it also matches
// pop3front.ErrAuthFailed) when the upstream refused a bearer token: the
// caller may drop a cached token and try once more with a fresh one.
var ErrTokenRejected = fmt.Errorf("%w: bearer token rejected", pop3front.ErrAuthFailed)

// maxBearerToken bounds an access token (Microsoft's JWTs are a few
// kilobytes).
const maxBearerToken = 16 << 10

// checkBearer refuses a token that is not an RFC 6750 section 2.1
// b64token, so that it cannot break the SASL message it is put in.
func checkBearer(token string) error {
	if token == "" || len(token) > maxBearerToken {
		return errors.New("bearer token empty or too long")
	}
	i := 0
	for ; i < len(token); i++ {
		c := token[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	for ; i < len(token) && token[i] == '='; i++ {
	}
	if i != len(token) {
		return errors.New("bearer token is not a b64token")
	}
	return nil
}

// OAuthError is the error a server sends as its challenge when it refuses
// a token (RFC 7628 section 3.2.2; XOAUTH2 sends the same JSON).
type OAuthError struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes,omitempty"`
	Scope   string `json:"scope,omitempty"`
}

// oauthClient is a SASL client for OAUTHBEARER or XOAUTH2. go-sasl's
// OAUTHBEARER client answers the error challenge with an error, which
// makes imapclient return with the command still open; this one answers
// it so that the server ends the command with a tagged NO, and keeps the
// error for the log.
//
// The answer is a single %x01 for both mechanisms. RFC 7628 section 3.2.3
// asks exactly that of OAUTHBEARER. XOAUTH2 asks for an empty response,
// but imapclient cannot send one: it writes "=", which is SASL-IR's
// notation for an empty initial response, not a valid continuation, and
// Dovecot answers it with BAD (invalid base64) and closes the connection.
// A server that has refused the token ends the exchange on any answer:
// Dovecot 2.3 answers %x01 with NO [AUTHENTICATIONFAILED].
type oauthClient struct {
	mech   string
	ir     []byte
	failed *OAuthError // the server's error challenge, if any
}

// NewOAuthBearerClient returns an OAUTHBEARER client (RFC 7628 section
// 3.1): GS2 header "n,a=USER," then host, port and the bearer token.
// host and port are optional (empty, 0).
func NewOAuthBearerClient(user, token, host string, port int) sasl.Client {
	var b strings.Builder
	b.WriteString("n,")
	if user != "" {
		b.WriteString("a=" + gs2Escape(user))
	}
	b.WriteString(",")
	if host != "" {
		b.WriteString("\x01host=" + host)
	}
	if port != 0 {
		b.WriteString("\x01port=" + strconv.Itoa(port))
	}
	b.WriteString("\x01auth=Bearer " + token + "\x01\x01")
	return &oauthClient{mech: sasl.OAuthBearer, ir: []byte(b.String())}
}

// NewXOAuth2Client returns an XOAUTH2 client: "user=" USER
// "\x01auth=Bearer " TOKEN "\x01\x01".
func NewXOAuth2Client(user, token string) sasl.Client {
	return &oauthClient{mech: "XOAUTH2", ir: []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")}
}

// gs2Escape escapes a GS2 saslname (RFC 5801 section 4): "," and "=".
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *oauthClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }

func (c *oauthClient) Next(challenge []byte) ([]byte, error) {
	if c.failed != nil {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.failed = &OAuthError{}
	if err := json.Unmarshal(challenge, c.failed); err != nil || c.failed.Status == "" {
		c.failed.Status = "unparsable error challenge"
	}
	return []byte{0x01}, nil
}

// ServerError returns the error challenge the server sent, if any.
func (c *oauthClient) ServerError() *OAuthError { return c.failed }

// bearerMechanism picks the mechanism for want given the server's
// capabilities; ok is false when auto finds neither advertised.
func bearerMechanism(want OAuthMechanism, caps imap.CapSet) (OAuthMechanism, bool) {
	switch want {
	case OAuthOAuthBearer, OAuthXOAuth2:
		return want, true
	}
	switch {
	case caps.Has(imap.Cap("AUTH=OAUTHBEARER")):
		return OAuthOAuthBearer, true
	case caps.Has(imap.Cap("AUTH=XOAUTH2")):
		return OAuthXOAuth2, true
	}
	return "", false
}

// loginBearer authenticates as the mailbox req.Username with a bearer
// token (LoginOptions.BearerToken).
func (u *upstream) loginBearer(req *pop3front.LoginRequest, token string) error {
	if err := checkBearer(token); err != nil {
		u.log.Error("bearer token refused before contacting upstream", "err", err)
		return tempErr(unavailableText, err)
	}
	if strings.ContainsAny(req.Username, "\x00\x01\r\n") || isMasterLogin(req) {
		u.log.Info("login refused before contacting upstream", "reason", "username unusable with a bearer token")
		return pop3front.ErrAuthFailed
	}
	caps := u.c.Caps()
	if caps == nil {
		return tempErr(unavailableText, errors.New("no capabilities before login"))
	}
	want := u.b.cfg.OAuthMechanism
	mech, ok := bearerMechanism(want, caps)
	if !ok {
		u.log.Error("upstream advertises neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2")
		return tempErr(unavailableText, errors.New("no OAuth SASL mechanism advertised"))
	}
	if want == mech && !caps.Has(imap.Cap("AUTH="+strings.ToUpper(string(mech)))) {
		u.log.Warn("using an OAuth mechanism the upstream does not advertise", "mechanism", mech)
	}
	var c *oauthClient
	if mech == OAuthOAuthBearer {
		// New checked the address; RFC 7628 section 3.1: host and port
		// the client connected to.
		host, portStr, _ := net.SplitHostPort(u.b.cfg.Address)
		port, _ := strconv.Atoi(portStr)
		c = NewOAuthBearerClient(req.Username, token, host, port).(*oauthClient)
	} else {
		c = NewXOAuth2Client(req.Username, token).(*oauthClient)
	}
	err := u.c.Authenticate(c)
	if err == nil {
		return nil
	}
	mapped := classifyLogin(err)
	if mapped != pop3front.ErrAuthFailed {
		u.log.Warn("upstream login error", "mechanism", mech, "err", err)
		return mapped
	}
	status := ""
	if se := c.ServerError(); se != nil {
		status = se.Status
	}
	u.log.Info("upstream refused the bearer token", "mechanism", mech, "status", status, "err", err)
	return ErrTokenRejected
}
