package imapback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/pop3front"
)

// retrStream streams one message's BODY[] as it arrives from upstream.
//
// Read returns io.EOF only when the literal delivered exactly its declared
// size (equal to the snapshot's RFC822.SIZE), the response carried the
// requested UID, and the command completed with OK. go-imap reads a
// truncated literal as complete and reports the failure only at the
// command's end, so bytes are counted here.
//
// Close before the end tears the upstream connection down (go-imap's
// reader blocks until a body literal is consumed, and draining a large
// remainder could take long): later calls on the maildrop fail with
// SYS/TEMP. A stream read to its end releases the connection for reuse.
type retrStream struct {
	m       *maildrop
	e       entry
	index   int
	op      *fetchOp
	msg     *imapclient.FetchMessageData // the response holding the body
	lit     imap.LiteralReader
	uid     imap.UID // UID item seen in msg so far (0: not yet)
	start   time.Time
	ctx     context.Context // Open's: once it is done, Read fails
	stopCtx func() bool

	mu       sync.Mutex
	n        int64
	litEnded bool // lit.Read returned an error or io.EOF
	eof      bool
	err      error
	released bool
}

var errStreamClosed = errors.New("stream closed before its end")

// openRetr sends UID FETCH u (UID RFC822.SIZE BODY.PEEK[]) and waits
// until the body literal begins. It returns ErrExpunged, before producing
// a byte, when the server has no such message (Dovecot's BODY[] NIL with
// [EXPUNGEISSUED], NO [EXPUNGEISSUED]) or would send something else than
// the snapshotted message (a literal or RFC822.SIZE of another size:
// Courier's substitute, UW's wrong message); errMaybeGone for an answer
// that only may mean it is gone (no data, a NO without a code: gone.go).
// Callers hold m.mu.
func (m *maildrop) openRetr(ctx context.Context, index int, e entry) (io.ReadCloser, error) {
	s := &retrStream{m: m, e: e, index: index, start: time.Now(), ctx: ctx}
	m.conn.begin()
	s.stopCtx = context.AfterFunc(ctx, m.kill)
	s.op = m.startFetch(e.uid, &imap.FetchOptions{
		UID:         true,
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	// Fetches ahead go out right behind this one (prefetch.go); until the
	// server's item order is known, only after this body began.
	key := aheadKey{index, false}
	planned := m.ahead.ok
	if planned {
		m.planAhead(key)
	}
	err := s.begin()
	if !planned {
		m.planAhead(key)
	}
	if err == nil {
		m.stream = s
		return s, nil
	}
	if errors.Is(err, pop3front.ErrExpunged) {
		if ferr := s.op.finish(); ferr != nil && imapError(ferr) == nil {
			err = ferr // the connection failed while draining
		}
	}
	if !errors.Is(err, pop3front.ErrExpunged) {
		m.kill()
		s.op.abandon()
		m.teardown(err)
		s.release(err)
		m.log.Warn("upstream fetch failed", "msg", index+1, "uid", e.uid, "err", err)
		return nil, tempErr(lostText, err)
	}
	s.release(nil)
	m.markGone(index, err)
	return nil, err
}

// begin consumes responses until the body literal starts.
func (s *retrStream) begin() error {
	e := s.e
	log := s.m.log.With("msg", s.index+1, "uid", e.uid)
	for msg := s.op.next(); msg != nil; msg = s.op.next() {
		var uid imap.UID
		var size int64 = -1
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataRFC822Size:
				size = it.Size
			case imapclient.FetchItemDataBodySection:
				if !wholeBody(it.Section) || (uid != 0 && uid != e.uid) {
					continue // not what we asked for; Next discards it
				}
				if it.Literal == nil {
					log.Info("message gone upstream (BODY[] NIL)")
					return pop3front.ErrExpunged
				}
				if it.Literal.Size() != e.size || (size >= 0 && size != e.size) {
					log.Warn("upstream would deliver a different message: treating it as expunged",
						"snapshot_size", e.size, "literal_size", it.Literal.Size(), "rfc822_size", size)
					s.m.b.anomaly(AnomalySizeMismatch)
					return pop3front.ErrExpunged
				}
				s.msg, s.lit, s.uid = msg, it.Literal, uid
				s.m.noteOrder(s.op.unilateral())
				return nil
			}
		}
	}
	if err := s.op.result; err != nil {
		switch k := goneNo(imapError(err)); k {
		case confirmedGone:
			log.Info("message gone upstream (NO)", "err", err)
			return goneErr(k)
		case maybeGone:
			log.Info("fetch refused (NO without a code): answered as expunged, not confirmed", "err", err)
			return goneErr(k)
		}
		return err
	}
	log.Info("fetch returned no data: answered as expunged, not confirmed")
	return errMaybeGone
}

func wholeBody(sec *imap.FetchItemBodySection) bool {
	return sec != nil && sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 && sec.Partial == nil
}

func (s *retrStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	// The connection is killed when ctx ends (stopCtx), but what go-imap
	// has already buffered could still be read to a clean end: a
	// cancelled stream must never look complete.
	if err := s.ctx.Err(); err != nil {
		s.failLocked(fmt.Errorf("reading message: %w", err))
		return 0, s.err
	}
	n, err := s.lit.Read(p)
	s.n += int64(n)
	s.litEnded = err != nil
	switch {
	case err == nil:
		return n, nil
	case err != io.EOF:
		s.failLocked(fmt.Errorf("reading message: %w", err))
		return n, s.err
	case s.n != s.lit.Size():
		s.failLocked(fmt.Errorf("message truncated: %d of %d octets", s.n, s.lit.Size()))
		return n, s.err
	}
	if err := s.completeLocked(); err != nil {
		s.failLocked(err)
		return n, s.err
	}
	s.eof = true
	s.release(nil)
	return n, io.EOF
}

// completeLocked checks what follows the literal (servers may send UID and
// RFC822.SIZE after it) and waits for the command's tagged OK.
func (s *retrStream) completeLocked() error {
	for item := s.msg.Next(); item != nil; item = s.msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			s.uid = it.UID
		case imapclient.FetchItemDataRFC822Size:
			if it.Size != s.e.size {
				return fmt.Errorf("RFC822.SIZE %d after the body, snapshot %d", it.Size, s.e.size)
			}
		}
	}
	if s.uid != s.e.uid {
		return fmt.Errorf("body arrived for UID %d, want %d", s.uid, s.e.uid)
	}
	if err := s.op.finish(); err != nil {
		return fmt.Errorf("fetch completed with: %w", err)
	}
	return nil
}

// failLocked ends a stream that must not look complete. The connection's
// state is unknown, so it is closed; the maildrop is torn down at Close.
func (s *retrStream) failLocked(cause error) {
	if s.err != nil || s.eof {
		return
	}
	s.err = &streamError{cause}
	if s.litEnded {
		s.m.waitDead()
	} else {
		s.m.kill() // abandon's drain of the literal fails fast
	}
	s.op.abandon()
	if cause != errStreamClosed {
		s.m.log.Warn("message stream failed", "msg", s.index+1, "uid", s.e.uid, "octets", s.n, "err", cause)
	}
	s.release(cause)
}

// release ends the operation: watchdog, context and metrics.
func (s *retrStream) release(err error) {
	if s.released {
		return
	}
	s.released = true
	s.stopCtx()
	s.m.conn.end()
	s.m.b.observe("fetch", s.start, err)
}

// Close releases the stream; see retrStream.
func (s *retrStream) Close() error {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(errStreamClosed)
	if s.err != nil {
		m.teardown(s.err)
	}
	if m.stream == s {
		m.stream = nil
	}
	return nil
}

func (s *retrStream) abortLocked(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(cause)
}

// streamError is a failed transfer; never io.EOF.
type streamError struct{ err error }

func (e *streamError) Error() string { return "imapback: message transfer failed: " + e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }
