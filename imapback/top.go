package imapback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/pop3front"
)

// TOP fetches are bounded and buffered, so a TOP stream never holds the
// connection between reads and may be closed at any point.
const (
	maxTopHeader    = 4 << 20   // larger headers are refused (SYS/TEMP)
	minTopChunk     = 2 << 10   // first BODY[TEXT] partial, at least
	firstTopChunk   = 256 << 10 // first partial, at most
	maxTopChunk     = 1 << 20   // later partials double up to this
	topBytesPerLine = 128       // guess used to size the first partial
)

// topStream serves TOP: the header (with its blank line) followed by
// enough of the text to hold BodyLines lines, fetched as
//
//	UID FETCH u (UID RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.N>)
//
// and, while fewer than BodyLines line breaks arrived and the partial was
// full, further BODY.PEEK[TEXT]<off.N> partials (RFC 3501 section 6.4.5).
// BodyLines 0 fetches the header only. PEEK never sets \Seen.
type topStream struct {
	m     *maildrop
	e     entry
	index int
	ctx   context.Context
	want  int // body lines asked for

	mu    sync.Mutex
	buf   []byte
	off   int64 // text octets fetched so far
	chunk int64 // size of the last partial requested
	lines int   // line breaks in the text so far
	more  bool  // the text may go on and more lines are needed
	err   error
}

// openTop fetches the header and the first part of the text, checking
// UID and RFC822.SIZE against the snapshot before returning. Callers hold
// m.mu.
func (m *maildrop) openTop(ctx context.Context, index int, e entry, lines int) (io.ReadCloser, error) {
	s := &topStream{m: m, e: e, index: index, ctx: ctx, want: lines}
	if lines > 0 {
		s.chunk = min(max(int64(lines)*topBytesPerLine, minTopChunk), firstTopChunk)
	}
	var hdr, txt []byte
	err := m.do(ctx, "top", func() error {
		var err error
		hdr, txt, err = s.fetch(true, 0, s.chunk)
		return err
	})
	if err != nil {
		if errors.Is(err, pop3front.ErrExpunged) {
			m.markGone(index, err)
			return nil, err
		}
		if imapError(err) == nil {
			m.teardown(err)
		}
		m.log.Warn("upstream TOP fetch failed", "msg", index+1, "uid", e.uid, "err", err)
		return nil, tempErr(lostText, err)
	}
	s.buf = append(hdr, txt...)
	s.account(txt)
	m.stream = s
	return s, nil
}

func (s *topStream) account(txt []byte) {
	s.off += int64(len(txt))
	s.lines += bytes.Count(txt, []byte{'\n'})
	s.more = s.want > 0 && s.lines < s.want && int64(len(txt)) == s.chunk
}

// fetch runs one TOP fetch and reads it whole. A message the server says
// is gone, or a mismatched one, is ErrExpunged; no data or a NO without a
// code is errMaybeGone (gone.go).
func (s *topStream) fetch(header bool, off, n int64) (hdr, txt []byte, err error) {
	e := s.e
	opts := &imap.FetchOptions{UID: true, RFC822Size: true}
	if header {
		opts.BodySection = append(opts.BodySection, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true})
	}
	if n > 0 {
		opts.BodySection = append(opts.BodySection, &imap.FetchItemBodySection{
			Specifier: imap.PartSpecifierText, Peek: true,
			Partial: &imap.SectionPartial{Offset: off, Size: n},
		})
	}
	op := s.m.startFetch(e.uid, opts)
	found, nilSeen := false, false
	var size int64 = -1
	var bad error
	for msg := op.next(); msg != nil; msg = op.next() {
		r := s.readTop(msg, n, &bad)
		if r.uid != e.uid || (header && !r.hSeen) || (n > 0 && !r.tSeen) {
			continue // not ours, or not a body response
		}
		if r.hNil {
			s.m.log.Info("message gone upstream (BODY[HEADER] NIL)", "msg", s.index+1, "uid", e.uid)
			nilSeen = true
			continue
		}
		found, size, hdr, txt = true, r.size, r.hdr, r.txt
		if header { // openTop, under m.mu: see aheadState
			s.m.noteOrder(op.unilateral())
		}
	}
	op.close()
	if bad != nil {
		return nil, nil, bad
	}
	if err := op.result; err != nil {
		if k := goneNo(imapError(err)); k != notGone {
			return nil, nil, goneErr(k)
		}
		return nil, nil, err
	}
	if !found && nilSeen {
		return nil, nil, pop3front.ErrExpunged
	}
	if !found {
		return nil, nil, errMaybeGone
	}
	if size != e.size {
		s.m.log.Warn("upstream would deliver a different message: treating it as expunged",
			"msg", s.index+1, "uid", e.uid, "snapshot_size", e.size, "rfc822_size", size)
		s.m.b.anomaly(AnomalySizeMismatch)
		return nil, nil, pop3front.ErrExpunged
	}
	return hdr, txt, nil
}

// topResponse is what one FETCH response of a TOP fetch carried.
type topResponse struct {
	uid                imap.UID
	size               int64 // -1: no RFC822.SIZE
	hdr, txt           []byte
	hSeen, tSeen, hNil bool // BODY[HEADER] seen, BODY[TEXT] seen, BODY[HEADER] NIL
}

// readTop reads one FETCH response's items, the TEXT literal up to n
// octets. The first literal that cannot be read goes to *bad; unless it
// was only too large, the connection is not reused (upstream.waitDead).
func (s *topStream) readTop(msg *imapclient.FetchMessageData, n int64, bad *error) topResponse {
	r := topResponse{size: -1}
	var err error
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			r.uid = it.UID
		case imapclient.FetchItemDataRFC822Size:
			r.size = it.Size
		case imapclient.FetchItemDataBodySection:
			switch {
			case it.Section.Specifier == imap.PartSpecifierHeader && len(it.Section.Part) == 0:
				r.hSeen = true
				if it.Literal == nil {
					r.hNil = true
					continue
				}
				r.hdr, err = readLiteral(it.Literal, maxTopHeader)
			case it.Section.Specifier == imap.PartSpecifierText && len(it.Section.Part) == 0:
				r.tSeen = true
				if it.Literal != nil {
					r.txt, err = readLiteral(it.Literal, n)
				}
			}
			if err != nil && *bad == nil {
				*bad = err
				if !errors.Is(err, errTooLarge) {
					s.m.waitDead() // see upstream.waitDead
				}
			}
		}
	}
	return r
}

var errTooLarge = errors.New("literal too large")

// readLiteral reads a whole literal of at most limit octets; a short one
// is an error (go-imap reads a truncated literal as complete).
func readLiteral(lit imap.LiteralReader, limit int64) ([]byte, error) {
	if lit.Size() > limit {
		return nil, fmt.Errorf("%w: %d octets, limit %d", errTooLarge, lit.Size(), limit)
	}
	b := make([]byte, lit.Size())
	if _, err := io.ReadFull(lit, b); err != nil {
		return nil, fmt.Errorf("literal truncated: %w", err)
	}
	return b, nil
}

func (s *topStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if !s.more {
			return 0, io.EOF
		}
		if err := s.fetchMoreLocked(); err != nil {
			s.err = &streamError{err}
			return 0, s.err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// fetchMoreLocked fetches the next partial of the text. The message must
// still be the snapshotted one; any failure ends the stream with an error.
func (s *topStream) fetchMoreLocked() error {
	s.chunk = min(s.chunk*2, maxTopChunk)
	var txt []byte
	err := s.m.do(s.ctx, "top", func() error {
		var err error
		_, txt, err = s.fetch(false, s.off, s.chunk)
		return err
	})
	if err != nil {
		s.m.kill() // state unknown: the maildrop is torn down at Close
		s.m.log.Warn("upstream TOP fetch failed", "msg", s.index+1, "uid", s.e.uid, "err", err)
		return err
	}
	s.buf = txt
	s.account(txt)
	return nil
}

// Close releases the stream. Nothing is in flight between reads, so the
// connection stays usable unless a fetch failed.
func (s *topStream) Close() error {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		m.teardown(s.err)
	}
	if m.stream == s {
		m.stream = nil
	}
	return nil
}

func (s *topStream) abortLocked(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = &streamError{cause}
	}
}
