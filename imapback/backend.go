// Package imapback serves POP3 maildrops from an upstream IMAP server: it
// implements pop3front.Backend with go-imap v2's imapclient.
//
// One POP3 session is one upstream connection, logged in with the user's
// own credentials. The mailbox is opened with EXAMINE (read-only, RFC 3501
// section 6.3.2) for the whole session, because some servers (UW imapd)
// kill other sessions when a second one SELECTs read-write. The snapshot is
// one `UID FETCH 1:* (UID RFC822.SIZE FLAGS)`; messages are fetched by UID
// with BODY.PEEK (never setting \Seen); changes are applied only at Commit,
// after a short read-write SELECT, with UID commands only (never a plain
// EXPUNGE: it would also remove other clients' \Deleted mail).
//
// go-imap v2 (beta.8) needs several workarounds, each noted where it is
// made: no context support (the connection is closed instead), no read
// deadline while a response is awaited and a fixed absolute deadline per
// literal (watchConn owns read deadlines), truncated literals that read as
// complete (bytes are counted), FETCH responses routed by a UID assumed to
// precede any literal (router), ID and MOVE fallbacks sent without
// checking capabilities (never used), and a race reading capabilities
// right after login.
package imapback

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/pop3front"
)

// Security selects how the upstream connection is protected.
type Security string

const (
	SecurityNone     Security = "none"     // plaintext: only for a trusted, local upstream
	SecurityStartTLS Security = "starttls" // RFC 3501 section 6.2.1, refused if not advertised
	SecurityTLS      Security = "tls"      // implicit TLS (RFC 8314)
)

// DeletePolicy is what a POP3 DELE becomes upstream at QUIT.
type DeletePolicy string

const (
	DeleteFlag    DeletePolicy = "flag"    // +FLAGS (\Deleted), no expunge
	DeleteKeyword DeletePolicy = "keyword" // +FLAGS (Policy.Keyword)
	DeleteTrash   DeletePolicy = "trash"   // UID MOVE to the Trash mailbox
	DeleteArchive DeletePolicy = "archive" // UID MOVE to the Archive mailbox
	DeleteExpunge DeletePolicy = "expunge" // +FLAGS (\Deleted), UID EXPUNGE
	DeleteKeep    DeletePolicy = "keep"    // nothing
)

// SeenPolicy says when retrieved messages get \Seen.
type SeenPolicy string

const (
	SeenQuit  SeenPolicy = "quit"  // messages fully sent by RETR, at QUIT
	SeenNever SeenPolicy = "never" // never
)

// Policy is the admin's choice of upstream effects. New fills a zero
// field with DefaultPolicy's; the booleans are taken as given, so start
// from DefaultPolicy.
type Policy struct {
	Delete  DeletePolicy
	Seen    SeenPolicy
	Trash   string // used when no SPECIAL-USE \Trash mailbox exists
	Archive string // used when no SPECIAL-USE \Archive mailbox exists
	Keyword string // for DeleteKeyword
	// FallbackToFlag: when the server lacks what Delete needs (UIDPLUS for
	// expunge; MOVE or UIDPLUS for trash and archive), use "flag" and log
	// a warning instead of refusing the login with -ERR [SYS/PERM].
	FallbackToFlag bool

	// UIDL selects the unique-id listing (uidl.go).
	UIDL UIDLScheme
	// UIDLRequired: when the server lacks what UIDL needs (OBJECTID for
	// emailid, X-GM-EXT-1 for x-gm-msgid), refuse the login with
	// -ERR [SYS/PERM] rather than use dovecot UIDLs with a warning.
	UIDLRequired bool
	// HideRetrieved stores RetrievedKeyword on messages RETR'd in a
	// session that ended with QUIT, and hides them from later POP3
	// listings (views.go).
	HideRetrieved    bool
	RetrievedKeyword string
	MaxMessages      int           // list at most this many; 0: all
	Window           Window        // which MaxMessages: newest or oldest
	MaxAge           time.Duration // list only messages received within it; 0: all
}

// DefaultPolicy is the policy of a gateway configured with nothing:
// nothing expunged, \Seen at QUIT, and a login refused rather than
// UIDLs changed.
func DefaultPolicy() Policy {
	return Policy{
		Delete:           DeleteFlag,
		Seen:             SeenQuit,
		Trash:            "Trash",
		Archive:          "Archive",
		Keyword:          "$POP3Deleted",
		UIDL:             UIDLDovecot,
		UIDLRequired:     true,
		RetrievedKeyword: DefaultRetrievedKeyword,
		Window:           WindowNewest,
	}
}

// Observer receives upstream events, for metrics. It must be safe for
// concurrent use and must not block. A nil Observer is allowed.
type Observer interface {
	// UpstreamOp is called once per upstream operation. op is one of
	// "connect", "login", "examine", "snapshot", "fetch", "prefetch",
	// "top", "noop", "commit", "logout" and "probe".
	UpstreamOp(op string, d time.Duration, err error)
	// Committed is called after every QUIT update the upstream
	// confirmed, with the delete policy applied (after any override or
	// fallback) and how many messages it was applied to.
	Committed(policy string, deleted int)
	// Anomaly is called once per message the upstream did not serve as
	// snapshotted; kind is AnomalyExpunged or AnomalySizeMismatch
	// (quirks.go).
	Anomaly(kind string)
}

// Config configures a Backend.
type Config struct {
	Address  string // host:port
	Security Security
	// TLSConfig is used for tls and starttls; the certificate is always
	// verified. ServerName defaults to the host of Address.
	TLSConfig *tls.Config
	Mailbox   string // default DefaultMailbox
	// Folders, when set, replaces Mailbox: these mailboxes are presented
	// as one maildrop, in this order (folders.go).
	Folders []string
	Policy  Policy
	// Overrides give matching users another policy; the first match
	// wins (views.go).
	Overrides []PolicyOverride
	// DialTimeout bounds connecting: TCP, TLS and the greeting (default
	// DefaultDialTimeout).
	DialTimeout time.Duration
	// CommandTimeout is the watchdog for every upstream read while a
	// command is in flight: the upstream must send something within it, or
	// the connection is closed (default DefaultCommandTimeout).
	CommandTimeout time.Duration
	Logger         *slog.Logger // default slog.Default()
	Observer       Observer     // optional
	// Trace, when it matches the user, logs the session's IMAP lines with
	// credentials redacted (wiretrace.go); nil traces nothing.
	Trace *pop3front.WireTrace
	// InsecureSkipVerify disables upstream certificate verification, for
	// labs only (the caller logs a warning).
	InsecureSkipVerify bool
	// ForwardClientAddress sends the POP3 client's address before login
	// as ID ("x-originating-ip" ... "x-originating-port" ...) (RFC 2971),
	// where the upstream advertises ID, so that its per-IP defences see
	// the client (Dovecot honours it from login_trusted_networks). Never
	// sent where ID is not advertised. The daemon turns it on by default.
	ForwardClientAddress bool
	// AllowMasterUser lets a LoginRequest whose AuthzID differs from its
	// Username log in upstream with AUTHENTICATE PLAIN carrying both
	// (RFC 4616: authzid AuthzID, authcid Username), so the upstream
	// decides whether Username may act for AuthzID (Dovecot master users)
	// and opens AuthzID's mailbox. Without it such logins are refused.
	AllowMasterUser bool
	// OAuthMechanism is the SASL mechanism of logins with a bearer token
	// (LoginOptions.BearerToken): auto (default), oauthbearer or xoauth2
	// (oauthsasl.go).
	OAuthMechanism OAuthMechanism
}

// Backend implements pop3front.Backend. It is safe for concurrent use.
type Backend struct {
	cfg Config
	log *slog.Logger

	noIDOnce sync.Once // the "no ID capability" warning is logged once
}

var _ pop3front.Backend = (*Backend)(nil)

// New validates cfg, fills in defaults and returns a Backend. It does not
// contact the upstream.
func New(cfg Config) (*Backend, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("imapback: address %q: %v", cfg.Address, err)
	}
	switch cfg.Security {
	case SecurityNone:
	case SecurityTLS, SecurityStartTLS:
		if cfg.TLSConfig == nil {
			cfg.TLSConfig = &tls.Config{}
		} else {
			cfg.TLSConfig = cfg.TLSConfig.Clone()
		}
		// Verification can be turned off only by the explicit lab switch,
		// never by a TLS configuration that happens to carry the flag.
		if cfg.TLSConfig.InsecureSkipVerify && !cfg.InsecureSkipVerify {
			return nil, errors.New("imapback: TLS certificate verification can be disabled only with Config.InsecureSkipVerify")
		}
		cfg.TLSConfig.InsecureSkipVerify = cfg.InsecureSkipVerify
		if cfg.TLSConfig.ServerName == "" {
			cfg.TLSConfig.ServerName = host
		}
		if cfg.TLSConfig.MinVersion == 0 {
			cfg.TLSConfig.MinVersion = tls.VersionTLS12
		}
	default:
		return nil, fmt.Errorf("imapback: security: %w", cfg.Security.Check())
	}
	orDefault(&cfg.Mailbox, DefaultMailbox)
	if strings.ContainsAny(cfg.Mailbox, "\x00\r\n") {
		return nil, fmt.Errorf("imapback: mailbox %q: invalid characters", cfg.Mailbox)
	}
	if err := checkFolders(cfg.Folders); err != nil { // folders.go
		return nil, err
	}
	p := &cfg.Policy
	def := DefaultPolicy()
	orDefault(&p.Delete, def.Delete)
	if err := p.Delete.Check(); err != nil {
		return nil, fmt.Errorf("imapback: delete policy: %w", err)
	}
	orDefault(&p.Seen, def.Seen)
	if err := p.Seen.Check(); err != nil {
		return nil, fmt.Errorf("imapback: seen policy: %w", err)
	}
	orDefault(&p.Trash, def.Trash)
	orDefault(&p.Archive, def.Archive)
	for _, name := range []string{p.Trash, p.Archive} {
		if strings.ContainsAny(name, "\x00\r\n") {
			return nil, fmt.Errorf("imapback: mailbox %q: invalid characters", name)
		}
	}
	orDefault(&p.Keyword, def.Keyword)
	if !validKeyword(p.Keyword) {
		return nil, fmt.Errorf("imapback: keyword %q: must be an IMAP atom not starting with a backslash", p.Keyword)
	}
	switch cfg.OAuthMechanism {
	case "":
		cfg.OAuthMechanism = OAuthAuto
	case OAuthAuto, OAuthOAuthBearer, OAuthXOAuth2:
	default:
		return nil, fmt.Errorf("imapback: OAuth mechanism %q: must be auto, oauthbearer or xoauth2", cfg.OAuthMechanism)
	}
	if err := finishConfig(&cfg); err != nil { // views.go
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Backend{cfg: cfg, log: log.With("upstream", cfg.Address)}, nil
}

// Config's defaults.
const (
	DefaultMailbox        = "INBOX"
	DefaultDialTimeout    = 10 * time.Second
	DefaultCommandTimeout = 60 * time.Second
)

// orDefault sets a zero *v to def.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// validKeyword reports whether kw is a flag-keyword (RFC 3501 section 9:
// an atom; no atom-specials, no "\").
func validKeyword(kw string) bool {
	if kw == "" {
		return false
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func (b *Backend) observe(op string, start time.Time, err error) {
	if b.cfg.Observer != nil {
		b.cfg.Observer.UpstreamOp(op, time.Since(start), err)
	}
}

// Probe connects to the upstream, waits for its greeting (and completes
// STARTTLS or TLS, verifying the certificate), then logs out without
// logging in. It is meant for readiness checks.
func (b *Backend) Probe(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { b.observe("probe", start, err) }()
	u, err := b.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	u.logout(ctx)
	return nil
}

// Login authenticates req upstream and returns the user's maildrop: the
// mailbox EXAMINEd, its snapshot taken and the delete policy checked
// against the server's capabilities.
//
// Credentials containing NUL, CR or LF, an empty username, or (unless
// Config.AllowMasterUser) an authorization identity other than the
// username are refused with pop3front.ErrAuthFailed without contacting
// the upstream.
func (b *Backend) Login(ctx context.Context, req *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	return b.login(ctx, req, LoginOptions{})
}

// login is Login with opts (LoginWith, login.go).
func (b *Backend) login(ctx context.Context, req *pop3front.LoginRequest, opts LoginOptions) (pop3front.Maildrop, error) {
	log := b.log.With("user", req.Username)
	if isMasterLogin(req) {
		log = log.With("authzid", req.AuthzID)
	}
	if err := checkCredentials(req, b.cfg.AllowMasterUser); err != nil {
		log.Info("login refused before contacting upstream", "err", err)
		return nil, pop3front.ErrAuthFailed
	}
	var fwd []string
	if b.cfg.ForwardClientAddress {
		fwd = idFields(req.Client, req.Local)
	}
	var trace *slog.Logger
	if b.cfg.Trace.Matches(req.Username) {
		trace = b.cfg.Trace.Logger.With("user", req.Username)
	}
	u, err := b.connect(ctx, fwd, trace)
	if err != nil {
		log.Warn("upstream connect failed", "err", err)
		return nil, err
	}
	u.log = log
	m, err := u.open(ctx, req, opts)
	if err != nil {
		u.kill()
		u.closeClient()
		return nil, err
	}
	return m, nil
}
