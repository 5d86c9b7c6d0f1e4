package gwtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
)

// Options configure an in-process gateway.
type Options struct {
	Upstream string // IMAP host:port (plaintext)
	Mailbox  string // default INBOX
	Policy   imapback.Policy
	Limits   pop3front.Limits
	// DialTimeout and CommandTimeout configure imapback (defaults 5s).
	DialTimeout    time.Duration
	CommandTimeout time.Duration
	Logger         *slog.Logger // nil: discard
	// Wrap, if set, wraps the backend (to inject panics or count calls).
	Wrap func(pop3front.Backend) pop3front.Backend
}

// Gateway is a running in-process gateway.
type Gateway struct {
	Server  *pop3front.Server
	Backend *imapback.Backend
	ln      net.Listener
	served  chan struct{}
}

// Start starts a gateway on a free loopback port.
func Start(o Options) (*Gateway, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 5 * time.Second
	}
	b, err := imapback.New(imapback.Config{
		Address:        o.Upstream,
		Security:       imapback.SecurityNone,
		Mailbox:        o.Mailbox,
		Policy:         o.Policy,
		DialTimeout:    o.DialTimeout,
		CommandTimeout: o.CommandTimeout,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	var be pop3front.Backend = b
	if o.Wrap != nil {
		be = o.Wrap(be)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		Server:  &pop3front.Server{Backend: be, Logger: log, Limits: o.Limits},
		Backend: b,
		ln:      ln,
		served:  make(chan struct{}),
	}
	go func() {
		defer close(g.served)
		_ = g.Server.Serve(ln)
	}()
	return g, nil
}

// Addr is the POP3 listener's host:port.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Close stops the gateway at once (nothing is committed) and waits for
// the listener to stop; sessions end shortly after.
func (g *Gateway) Close() {
	g.Server.Close()
	<-g.served
}

// Shutdown stops gracefully within ctx.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.Server.Shutdown(ctx)
	<-g.served
	if errors.Is(err, pop3front.ErrServerClosed) {
		err = nil
	}
	return err
}
