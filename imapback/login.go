package imapback

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/popbridge/popbridge/pop3front"
)

// LoginOptions adjust one login; see Backend.LoginWith.
type LoginOptions struct {
	// Policy replaces the policy PolicyFor would choose; nil: PolicyFor.
	Policy *Policy
	// Attrs are added to the maildrop's LogAttrs (the POP3 session's
	// end-of-session log line), e.g. the username modifiers used.
	Attrs []slog.Attr
	// BearerToken, if set, logs in as the LoginRequest's Username with
	// this OAuth 2.0 access token (SASL OAUTHBEARER or XOAUTH2, see
	// Config.OAuthMechanism) instead of its password. A refused token is
	// reported as ErrTokenRejected.
	BearerToken string
}

// LoginWith is Login with options: a policy chosen by the caller (a
// device's username modifier) and extra session log attributes.
func (b *Backend) LoginWith(ctx context.Context, req *pop3front.LoginRequest, opts LoginOptions) (pop3front.Maildrop, error) {
	if opts.Policy != nil {
		p, err := b.normalize(*opts.Policy)
		if err != nil {
			return nil, tempErr(unavailableText, err)
		}
		opts.Policy = &p
	}
	return b.login(ctx, req, opts)
}

// maxCredential bounds each of username, password and authorization
// identity.
const maxCredential = 1024

// checkCredentials refuses what could not be sent as exactly one
// well-formed command (docs/design.md, invariant 8): NUL, CR and LF are allowed neither in
// a quoted string nor, for LOGIN, in a literal (RFC 3501 section 4.3:
// CHAR8 excludes NUL; a SASL PLAIN message uses NUL as its separator).
// Other bytes are safe: go-imap quotes strings with backslash escapes and
// switches to a literal for 8-bit data or long values.
//
// Each credential is bounded by maxCredential octets (docs/design.md, invariant 9; servers
// refuse large literals before login, imapserver above 4096 octets).
//
// An authorization identity other than the username (a master user acting
// for another) is refused unless allowMaster.
func checkCredentials(req *pop3front.LoginRequest, allowMaster bool) error {
	if req.Username == "" {
		return errors.New("empty username")
	}
	for _, s := range []string{req.Username, req.Password, req.AuthzID} {
		if strings.ContainsAny(s, "\x00\r\n") {
			return errors.New("NUL, CR or LF in credentials")
		}
		if len(s) > maxCredential {
			return errors.New("credential too long")
		}
	}
	if isMasterLogin(req) && !allowMaster {
		return errors.New("authorization identity differs from username (master-user login not enabled)")
	}
	return nil
}

// isMasterLogin reports a login acting for another user: an authorization
// identity that is not the authentication identity.
func isMasterLogin(req *pop3front.LoginRequest) bool {
	return req.AuthzID != "" && req.AuthzID != req.Username
}

// login authenticates with the user's own credentials: LOGIN, or
// AUTHENTICATE PLAIN (RFC 4616, with SASL-IR if advertised) when the
// server advertises LOGINDISABLED. PLAIN is only used over TLS then
// (LOGINDISABLED on a plaintext connection means "not here").
//
// A master-user login (checkCredentials allowed it) always uses
// AUTHENTICATE PLAIN with authzid = AuthzID, authcid = Username: IMAP
// LOGIN has no place for an authorization identity. Without AUTH=PLAIN
// advertised it is refused as a failed login, and logged.
func (u *upstream) login(req *pop3front.LoginRequest) error {
	caps := u.c.Caps() // pre-login; WaitGreeting already settled them
	if caps == nil {
		return tempErr(unavailableText, errors.New("no capabilities before login"))
	}
	plain := caps.Has(imap.Cap("AUTH=PLAIN"))
	var err error
	switch {
	case caps.Has(imap.CapLoginDisabled) && (!u.tls || !plain):
		u.log.Error("upstream refuses LOGIN and offers no AUTHENTICATE PLAIN over TLS")
		return tempErr(unavailableText, errors.New("LOGINDISABLED without AUTH=PLAIN over TLS"))
	case isMasterLogin(req):
		if !plain {
			u.log.Error("master-user login refused: upstream does not advertise AUTH=PLAIN")
			return pop3front.ErrAuthFailed
		}
		err = u.c.Authenticate(sasl.NewPlainClient(req.AuthzID, req.Username, req.Password))
	case caps.Has(imap.CapLoginDisabled):
		err = u.c.Authenticate(sasl.NewPlainClient("", req.Username, req.Password))
	default:
		err = u.c.Login(req.Username, req.Password).Wait()
	}
	if err != nil {
		mapped := classifyLogin(err)
		if mapped == pop3front.ErrAuthFailed {
			// The upstream's text may echo the username but never the
			// password: go-imap does not put the command in errors.
			u.log.Info("upstream login failed", "err", err)
		} else {
			u.log.Warn("upstream login error", "err", err)
		}
		return mapped
	}
	return nil
}

// open logs in, EXAMINEs the mailbox, settles capabilities and the policy,
// and takes the snapshot.
func (u *upstream) open(ctx context.Context, req *pop3front.LoginRequest, opts LoginOptions) (*maildrop, error) {
	m := &maildrop{upstream: u}
	err := m.do(ctx, "login", func() error {
		if tok := opts.BearerToken; tok != "" {
			return u.loginBearer(req, tok) // oauthsasl.go
		}
		return u.login(req)
	})
	if err != nil {
		return nil, err
	}

	// The first folder that exists (folders.go).
	m.initFolders()
	var sel *imap.SelectData
	first := 0
	for ; first < len(m.folders); first++ {
		if sel, err = m.examine(ctx, first); err != nil {
			return nil, err
		}
		if sel != nil {
			break
		}
	}
	if sel == nil {
		u.log.Error("none of the folders exists upstream", "folders", m.foldersAttr())
		return nil, tempErr(mailboxText, errors.New("no folder exists"))
	}

	// Capabilities change at login (Dovecot sends the new set in the
	// login OK). go-imap replaces them only after completing the login
	// command, so reading them right after Login().Wait() can return the
	// pre-login set; after EXAMINE's reply, the login reply has been
	// handled completely.
	err = m.do(ctx, "login", func() error {
		m.caps = u.c.Caps()
		if m.caps == nil {
			return errors.New("no capabilities after login")
		}
		return nil
	})
	if err != nil {
		return nil, tempErr(unavailableText, err)
	}

	m.policy = u.b.sessionPolicy(req, opts) // views.go: per user, per login
	m.extraAttrs = opts.Attrs
	if err := m.checkPolicy(); err != nil {
		u.logout(ctx)
		return nil, err
	}
	if err := m.checkUIDL(); err != nil { // uidl.go
		u.logout(ctx)
		return nil, err
	}

	if err := m.snapshotAll(ctx, first, sel.NumMessages); err != nil {
		return nil, err
	}
	return m, nil
}
