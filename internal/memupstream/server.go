// Package memupstream runs an in-memory IMAP server (go-imap's imapserver
// and imapmemserver) with selectable capability profiles. Tests use it as
// the upstream of imapback; the gateway's demo mode serves it to newcomers.
//
// Nothing is persisted: every mailbox lives in memory and is lost on Close.
//
// A profile changes both what the server advertises and what it accepts:
// without MOVE, UID MOVE is refused; without UIDPLUS (RFC 4315), UID
// EXPUNGE is refused. The server never advertises ID (RFC 2971) and, like
// imapserver, closes the connection on an unknown command before login.
//
// Known imapmemserver quirks (see docs/go-imap.md): EXAMINE does not block
// writes; messages with bare LF make RFC822.SIZE differ from the octets
// sent (seed CRLF); a FETCH holds the mailbox lock while the client reads
// it, so a stalled reader blocks every other session of that mailbox;
// SPECIAL-USE attributes given at CREATE are ignored.
package memupstream

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Profile selects the capabilities the server advertises and honours.
type Profile string

const (
	// ProfileIMAP4rev2 advertises only IMAP4rev2 (RFC 9051), which implies
	// UIDPLUS and MOVE without naming them.
	ProfileIMAP4rev2 Profile = "imap4rev2"
	// ProfileUIDPlus is IMAP4rev1 with UIDPLUS (RFC 4315) and no MOVE:
	// the COPY + STORE + UID EXPUNGE path.
	ProfileUIDPlus Profile = "uidplus"
	// ProfileBare is IMAP4rev1 (RFC 3501) without UIDPLUS or MOVE, like
	// GNU Mailutils: no safe way to expunge individual messages.
	ProfileBare Profile = "imap4rev1"
	// ProfileFull is IMAP4rev1 with UIDPLUS, MOVE (RFC 6851), NAMESPACE,
	// LITERAL+ and SPECIAL-USE (RFC 6154; no mailbox carries a special-use
	// attribute, since imapmemserver cannot store one). The demo default.
	ProfileFull Profile = "full"
)

func (p Profile) caps() (imap.CapSet, error) {
	switch p {
	case ProfileIMAP4rev2:
		return imap.CapSet{imap.CapIMAP4rev2: {}}, nil
	case ProfileUIDPlus:
		return imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, nil
	case ProfileBare:
		return imap.CapSet{imap.CapIMAP4rev1: {}}, nil
	case ProfileFull, "":
		return imap.CapSet{
			imap.CapIMAP4rev1:   {},
			imap.CapUIDPlus:     {},
			imap.CapMove:        {},
			imap.CapNamespace:   {},
			imap.CapLiteralPlus: {},
			imap.CapSpecialUse:  {},
		}, nil
	}
	return nil, fmt.Errorf("memupstream: unknown profile %q", p)
}

// Options configures a Server. The zero value serves ProfileFull over
// plaintext, logging nothing.
type Options struct {
	Profile Profile
	Logger  *slog.Logger // server-side errors, at Debug level; nil: discarded
	// Wire, if set, receives every byte the server reads from clients, a
	// line at a time (lines of different connections never interleave).
	// It contains credentials: for tests only.
	Wire io.Writer
	// TLSConfig, if set, offers STARTTLS (RFC 3501 section 6.2.1) and
	// refuses LOGIN before it (LOGINDISABLED); with ImplicitTLS the
	// listener speaks TLS from the first byte instead.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// RefuseCreate makes CREATE fail with NO, for fault tests (a trash
	// mailbox that cannot be created).
	RefuseCreate bool
	// CheckBearer, if set, offers AUTH=OAUTHBEARER (RFC 7628) and
	// AUTH=XOAUTH2 besides PLAIN, and accepts a login as user when it
	// returns true for the bearer token given (sasl.go).
	CheckBearer func(user, token string) bool
}

// Server is a running in-memory IMAP server.
type Server struct {
	mem *imapmemserver.Server
	srv *imapserver.Server
	ln  net.Listener

	mu     sync.Mutex
	users  map[string]*imapmemserver.User
	pwds   map[string]string // for logins by bearer token
	closed bool
	served chan struct{}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func Start(addr string, opts Options) (*Server, error) {
	caps, err := opts.Profile.caps()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srvOpts := &imapserver.Options{
		Caps:         caps,
		Logger:       printfLogger{opts.Logger},
		InsecureAuth: opts.TLSConfig == nil || opts.ImplicitTLS,
	}
	if opts.ImplicitTLS {
		if opts.TLSConfig == nil {
			ln.Close()
			return nil, errors.New("memupstream: ImplicitTLS needs TLSConfig")
		}
		ln = tls.NewListener(ln, opts.TLSConfig)
	} else {
		srvOpts.TLSConfig = opts.TLSConfig
	}
	if opts.Wire != nil {
		// Inside implicit TLS, so the recorder sees plaintext. After
		// STARTTLS it sees ciphertext: imapserver upgrades the conn itself.
		ln = &wireListener{Listener: ln, rec: &wireRecorder{w: opts.Wire}}
	}
	ln = sinkListener{ln}
	s := &Server{
		mem:    imapmemserver.New(),
		ln:     ln,
		users:  make(map[string]*imapmemserver.User),
		pwds:   make(map[string]string),
		served: make(chan struct{}),
	}
	move := caps.Has(imap.CapMove)
	uidplus := caps.Has(imap.CapUIDPlus)
	srvOpts.NewSession = func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
		sess := &session{Session: s.mem.NewSession(), uidExpunge: uidplus, refuseCreate: opts.RefuseCreate,
			checkBearer: opts.CheckBearer, password: s.password}
		if move {
			return &moveSession{sess}, nil, nil
		}
		return sess, nil, nil
	}
	s.srv = imapserver.New(srvOpts)
	go func() {
		defer close(s.served)
		s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddUser creates a user with an empty INBOX.
func (s *Server) AddUser(username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[username]; ok {
		return fmt.Errorf("memupstream: user %q exists", username)
	}
	u := imapmemserver.NewUser(username, password)
	if err := u.Create("INBOX", nil); err != nil {
		return err
	}
	s.users[username] = u
	s.pwds[username] = password
	s.mem.AddUser(u)
	return nil
}

func (s *Server) password(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pwds[username]
}

func (s *Server) user(username string) (*imapmemserver.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return nil, fmt.Errorf("memupstream: no user %q", username)
	}
	return u, nil
}

// CreateMailbox creates a mailbox for username.
func (s *Server) CreateMailbox(username, name string) error {
	u, err := s.user(username)
	if err != nil {
		return err
	}
	return u.Create(name, nil)
}

// Append stores msg in the user's mailbox with the given flags. Seed CRLF
// line endings: with bare LF, RFC822.SIZE disagrees with the octets sent.
func (s *Server) Append(username, mailbox string, msg []byte, flags ...imap.Flag) error {
	u, err := s.user(username)
	if err != nil {
		return err
	}
	// imapmemserver dereferences the options: never pass nil.
	_, err = u.Append(mailbox, literal{bytes.NewReader(msg), int64(len(msg))}, &imap.AppendOptions{Flags: flags})
	return err
}

// Close stops listening and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	<-s.served
	return err
}

type literal struct {
	*bytes.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

// session makes a profile honest: imapserver dispatches UID EXPUNGE and
// UID MOVE whatever it advertises, so refuse what the profile lacks.
// Embedding the Session interface hides imapmemserver's Move (and
// Namespace) from imapserver's type assertions.
type session struct {
	imapserver.Session
	uidExpunge   bool
	refuseCreate bool
	checkBearer  func(user, token string) bool // nil: PLAIN only
	password     func(user string) string
}

func (s *session) Create(mailbox string, options *imap.CreateOptions) error {
	if s.refuseCreate {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "CREATE refused (RefuseCreate)"}
	}
	return s.Session.Create(mailbox, options)
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if uids != nil && !s.uidExpunge {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "UID EXPUNGE needs UIDPLUS, which is not enabled"}
	}
	return s.Session.Expunge(w, uids)
}

// moveSession is a session for profiles with MOVE (and NAMESPACE, which
// IMAP4rev2 requires alongside it).
type moveSession struct{ *session }

func (s *moveSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.Session.(imapserver.SessionMove).Move(w, numSet, dest)
}

func (s *moveSession) Namespace() (*imap.NamespaceData, error) {
	return s.Session.(imapserver.SessionNamespace).Namespace()
}

type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "memupstream")
	}
}
