package imapback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// entry is one snapshotted message, kept small: 100,000 messages must not
// cost more than a few megabytes.
type entry struct {
	uid    imap.UID
	folder uint16 // index in maildrop.folders (folders.go)
	size   int64
}

// maildrop implements pop3front.Maildrop over one upstream connection.
//
// Methods are meant to be called by one session goroutine; Close may also
// be called from another goroutine (shutdown) and then cancels what is in
// flight.
type maildrop struct {
	*upstream

	folders    []folder    // the listed mailboxes, in order (folders.go)
	cur        int         // the folder EXAMINEd now; -1: none
	caps       imap.CapSet // after login, kept for the session
	policy     Policy      // effective: possibly downgraded to flag
	msgs       []entry
	infos      []pop3front.MessageInfo
	uidlScheme UIDLScheme          // effective: possibly fallen back to dovecot (uidl.go)
	contentIDs map[imap.UID]string // during the snapshot only (content scheme)
	usedUIDLs  map[string]bool     // during the snapshot only (non-dovecot schemes)
	targetName string              // the trash or archive mailbox, once found at QUIT
	matched    int                 // messages the view's SEARCH matched (views.go)
	chosen     int                 // of those, the ones the window keeps
	extraAttrs []slog.Attr         // LoginOptions.Attrs, for LogAttrs

	mu     sync.Mutex       // serialises operations; taken before a stream's own lock
	stream openStream       // the stream Open returned, until its Close
	broken error            // set once the connection is torn down
	done   bool             // Commit or Close ran: nothing more to do
	gone   map[int]goneKind // indexes RETR or TOP answered "expunged" (gone.go)
	ahead  aheadState       // prefetch (prefetch.go)
}

// openStream is what the maildrop needs from an open stream.
type openStream interface {
	// abortLocked tears the stream down from another goroutine (Close);
	// the caller holds m.mu and has closed the connection.
	abortLocked(cause error)
}

var _ pop3front.Maildrop = (*maildrop)(nil)

// do runs one upstream operation: the read watchdog is armed and ctx
// cancels it by closing the connection (go-imap has no context). The
// Observer sees its duration and result.
func (m *maildrop) do(ctx context.Context, op string, f func() error) error {
	start := time.Now()
	m.conn.begin()
	stop := context.AfterFunc(ctx, m.kill)
	err := f()
	if !stop() && err != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	m.conn.end()
	m.b.observe(op, start, err)
	return err
}

// usable reports why no operation may start; callers hold m.mu.
func (m *maildrop) usable() error {
	switch {
	case m.broken != nil:
		return tempErr(lostText, m.broken)
	case m.done:
		return tempErr(lostText, errors.New("maildrop closed"))
	case m.stream != nil:
		return tempErr(lostText, errors.New("a message stream is still open"))
	}
	return nil
}

// teardown closes the connection after a failure that leaves it in an
// unknown state; every later call fails with SYS/TEMP. Callers hold m.mu.
func (m *maildrop) teardown(cause error) {
	if m.broken == nil {
		m.broken = cause
	}
	m.closeClient()
}

// Messages returns the snapshot taken at login, oldest (lowest UID) first.
func (m *maildrop) Messages() []pop3front.MessageInfo { return m.infos }

// Noop sends NOOP (RFC 3501 section 6.1.2) to keep the connection alive.
func (m *maildrop) Noop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	err := m.do(ctx, "noop", func() error { return m.c.Noop().Wait() })
	if err != nil {
		if imapError(err) == nil {
			m.teardown(err)
		}
		return tempErr(lostText, err)
	}
	return nil
}

// Open streams message index; see pop3front.Maildrop. RETR streams
// BODY.PEEK[] as it arrives (stream.go); TOP fetches the header and a
// bounded part of the text (top.go). Neither sets \Seen.
//
// The stream belongs to ctx: cancelling ctx before the stream is closed
// tears the connection down.
func (m *maildrop) Open(ctx context.Context, index int, sec pop3front.Section) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return nil, err
	}
	if index < 0 || index >= len(m.msgs) {
		return nil, fmt.Errorf("imapback: message index %d out of range", index)
	}
	if m.gone[index] == confirmedGone {
		return nil, pop3front.ErrExpunged // gone.go
	}
	e := m.msgs[index]
	if err := m.enter(ctx, int(e.folder)); err != nil { // folders.go
		return nil, err
	}
	if sec.Top && sec.BodyLines != 0 {
		// Only TOP n 0 and RETR are fetched ahead.
		m.ahead.hints, m.ahead.opened = m.ahead.hints[:0], false
		return m.openTop(ctx, index, e, max(sec.BodyLines, 0))
	}
	key := aheadKey{index, sec.Top}
	if s, ok := m.takeAhead(ctx, key); ok {
		m.planAhead(key)
		if !sec.Top {
			m.retrieved(index)
		}
		st := &memStream{m: m, buf: s.body}
		m.stream = st
		return st, nil
	}
	if sec.Top {
		rc, err := m.openTop(ctx, index, e, 0)
		m.planAhead(key)
		return rc, err
	}
	rc, err := m.openRetr(ctx, index, e)
	if err == nil {
		m.retrieved(index)
	}
	return rc, err
}

// Close ends the session without changing anything upstream: LOGOUT
// (bounded, best effort), then the connection is closed. An open stream
// is torn down. Close after Commit is a no-op.
func (m *maildrop) Close() error {
	if !m.mu.TryLock() {
		// An operation is in flight (Close from another goroutine):
		// cancel it so it releases the lock quickly.
		m.kill()
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if m.stream != nil {
		m.kill()
		m.stream.abortLocked(errors.New("maildrop closed with a stream open"))
		m.stream = nil
		m.teardown(errors.New("maildrop closed with a stream open"))
	}
	m.stopAhead()
	if m.done {
		return nil
	}
	m.done = true
	if m.broken != nil {
		m.closeClient()
		return nil
	}
	m.logout(context.Background())
	return nil
}
