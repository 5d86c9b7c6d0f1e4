package imapback

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/pop3front"
)

// Prefetch: keeping upstream fetches in flight.
//
// One RETR or TOP is one upstream round trip, plus the POP3 one: with
// small messages the round trips, not the bytes, set the pace. So the
// maildrop fetches ahead, into memory, what the session is about to ask
// for, and serves it from memory when it does:
//
//   - hinted: pop3front's session tells it (pop3front.Prefetcher) which
//     RETR and TOP n 0 commands the client has already pipelined behind
//     the current one; up to prefetchCap octets;
//   - sequential read-ahead: after two RETRs (or two TOP n 0) of
//     consecutive messages, the next messages are fetched ahead, up to
//     readAheadCap octets (a client that stops reading holds no more).
//
// Both are bounded: only messages whose snapshot size fits the budget are
// fetched ahead (a larger message is only ever streamed, never held), and
// a literal of any other size than expected is drained, never stored.
//
// go-imap's reader blocks until each body literal it hands out is read,
// and Dovecot sometimes answers pipelined commands out of order, so a
// fetch kept in flight must be consumed no matter what the session does:
// each batch is one `UID FETCH u1,u2,... (UID RFC822.SIZE BODY.PEEK[])`
// for RETRs, or BODY.PEEK[HEADER] for TOP n 0 (never both kinds in one
// batch), whose responses a goroutine reads, in whatever order they come,
// into the batch's slots, each checked against its own request. It never waits for the
// session, so the stream the session is reading (sent before the batch)
// can always complete.
//
// A prefetched message is delivered only when its response carried the
// right UID, RFC822.SIZE equal to the snapshot's, a literal of exactly
// that size read in full (for RETR), and the batch command completed with
// OK. Anything else (expunged, NIL body, another message's size, a NO, a
// dead connection) discards the slot and Open takes the ordinary path,
// which makes its own checks and answers ErrExpunged or SYS/TEMP as it
// would have without prefetch. BODY.PEEK never sets \Seen: prefetch
// changes nothing upstream.
//
// Servers that send the UID after the body literal (Courier) route FETCH
// responses through the unilateral handler, where two fetches in flight
// could not be told apart: prefetch is enabled only once an ordinary
// fetch of the session came back through its own command.
const (
	prefetchCap  = 1 << 20   // octets fetched ahead for pipelined commands
	readAheadCap = 512 << 10 // octets fetched ahead on sequential access
	maxBatch     = 32        // messages per prefetch command
	maxHints     = 64        // pipelined commands remembered
	// headerGuess is the budget a TOP n 0 header is planned with; the
	// actual header may use the batch's whole budget.
	headerGuess = 2 << 10
)

// aheadState is the maildrop's prefetch state, guarded by m.mu.
type aheadState struct {
	hints   []aheadKey // pipelined commands the session announced
	batches []*batch   // in flight, or done with slots not yet taken
	last    aheadKey   // the last Open
	opened  bool       // last is set
	// ok: the server answered an ordinary fetch through its command (UID
	// before the literal), so prefetch responses can be told apart;
	// known: that was decided (a server that once routed a body through
	// the unilateral handler never gets prefetch).
	ok, known bool
}

// noteOrder records how an ordinary fetch's body arrived; see aheadState.
// Callers hold m.mu.
func (m *maildrop) noteOrder(unilateral bool) {
	if m.ahead.known {
		return
	}
	m.ahead.known = true
	m.ahead.ok = !unilateral
	if unilateral {
		m.log.Info("upstream sends the UID after the body: prefetch disabled for this session")
	}
}

// aheadKey names what a slot holds: message index, and header only (TOP
// n 0) or whole (RETR).
type aheadKey struct {
	index int
	top   bool
}

// slot is one message of a batch.
type slot struct {
	key  aheadKey
	uid  imap.UID
	size int64 // snapshot RFC822.SIZE
	body []byte
	ok   bool // complete and checked (still subject to the batch's result)
}

// fits reports whether a literal of n octets for section sec is what s
// asked for: for RETR the whole message, exactly the snapshot's size; for
// TOP n 0 the header, no larger than the whole message.
func (s *slot) fits(sec *imap.FetchItemBodySection, n int64) bool {
	if sec == nil || len(sec.Part) != 0 || sec.Partial != nil {
		return false
	}
	if s.key.top {
		return sec.Specifier == imap.PartSpecifierHeader && n <= s.size
	}
	return sec.Specifier == imap.PartSpecifierNone && n == s.size
}

// serves reports whether s may answer the Open of key, message e: the
// same request, and (again, at the point of serving) a body a RETR may
// deliver, exactly the snapshot's size.
func (s *slot) serves(key aheadKey, e entry) bool {
	n := int64(len(s.body))
	return s.key == key && s.uid == e.uid && s.size == e.size &&
		(key.top && n <= e.size || !key.top && n == e.size)
}

// batch is one prefetch command in flight or done; all its slots are of
// one kind.
type batch struct {
	slots  []*slot
	byUID  map[imap.UID]*slot
	budget int64 // octets it may hold
	used   int64
	done   chan struct{} // closed when the command completed and was read
	err    error         // the command's result, valid after done
	left   int           // slots not yet taken or evicted
}

// Prefetch implements pop3front.Prefetcher: the session has RETR (or TOP)
// index queued behind the command it is about to run. It only records the
// hint; the next Open sends the fetch, after its own.
func (m *maildrop) Prefetch(index int, sec pop3front.Section) {
	if sec.Top && sec.BodyLines != 0 || index < 0 || index >= len(m.msgs) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ahead.hints) < maxHints {
		m.ahead.hints = append(m.ahead.hints, aheadKey{index, sec.Top})
	}
}

// takeAhead returns the prefetched message for key if there is one that
// may be delivered; it waits for its batch to complete. Slots before key
// (the client went past them) are evicted. Callers hold m.mu.
func (m *maildrop) takeAhead(ctx context.Context, key aheadKey) (*slot, bool) {
	var found *slot
	var fb *batch
	for _, b := range m.ahead.batches {
		for i, s := range b.slots {
			if s == nil {
				continue
			}
			if s.key == key && found == nil {
				found, fb = s, b
				b.slots[i] = nil
				b.left--
			} else if s.key.index < key.index && s.key.top == key.top {
				b.slots[i] = nil
				b.left--
			}
		}
	}
	if found == nil {
		m.reapBatches()
		return nil, false
	}
	select {
	case <-fb.done:
	case <-ctx.Done():
		m.kill()
		<-fb.done
	}
	m.reapBatches()
	if fb.err != nil || !found.ok || !found.serves(key, m.msgs[key.index]) {
		m.log.Debug("prefetched message not usable: fetching it again", "msg", key.index+1, "uid", found.uid, "batch_err", fb.err)
		return nil, false
	}
	return found, true
}

// reapBatches forgets completed batches with nothing left to take.
func (m *maildrop) reapBatches() {
	live := m.ahead.batches[:0]
	for _, b := range m.ahead.batches {
		select {
		case <-b.done:
			if b.left == 0 {
				continue
			}
		default:
		}
		live = append(live, b)
	}
	clear(m.ahead.batches[len(live):])
	m.ahead.batches = live
}

// heldBudget is the budget of every batch not yet reaped.
func (m *maildrop) heldBudget() int64 {
	var n int64
	for _, b := range m.ahead.batches {
		n += b.budget
	}
	return n
}

func (m *maildrop) planned(key aheadKey) bool {
	for _, b := range m.ahead.batches {
		for _, s := range b.slots {
			if s != nil && s.key == key {
				return true
			}
		}
	}
	return false
}

// planAhead decides what to fetch ahead after Open(key) and sends it.
// Callers hold m.mu; the ordinary fetch for key, if any, is already sent.
func (m *maildrop) planAhead(key aheadKey) {
	sequential := m.ahead.last.index == key.index-1 && m.ahead.last.top == key.top && m.ahead.opened
	m.ahead.last, m.ahead.opened = key, true
	hints := m.ahead.hints
	m.ahead.hints = m.ahead.hints[:0]
	if !m.ahead.ok || m.broken != nil {
		return
	}
	want := make([]aheadKey, 0, maxHints) // on the stack: nothing allocated per Open
	budget := int64(prefetchCap)
	for _, h := range hints {
		if h != key {
			want = append(want, h)
		}
	}
	if len(want) == 0 && sequential {
		// Read ahead only when what is already ahead runs low.
		budget = readAheadCap
		ahead := 0
		for i := key.index + 1; i < len(m.msgs) && i <= key.index+maxBatch; i++ {
			if !m.planned(aheadKey{i, key.top}) {
				break
			}
			ahead++
		}
		if ahead < maxBatch/4 {
			for i := key.index + 1 + ahead; i < len(m.msgs) && len(want) < maxBatch && m.msgs[i].folder == m.msgs[key.index].folder; i++ {
				want = append(want, aheadKey{i, key.top})
			}
		}
	}
	if len(want) == 0 {
		return
	}
	// One batch per kind, so every slot's section is its batch's: a RETR
	// is only ever filled from BODY[], a TOP n 0 from BODY[HEADER].
	room := budget - m.heldBudget()
	for _, top := range []bool{key.top, !key.top} {
		room -= m.sendBatch(want, top, room)
	}
}

// sendBatch sends one prefetch command for the wanted keys of one kind
// (top: TOP n 0, else RETR) within room octets, and returns the budget it
// took. Callers hold m.mu.
func (m *maildrop) sendBatch(want []aheadKey, top bool, room int64) int64 {
	b := &batch{} // map and channel only once something fits the room
	var uids imap.UIDSet
	for _, k := range want {
		if k.top != top || len(b.slots) == maxBatch || k.index < 0 || k.index >= len(m.msgs) || m.planned(k) {
			continue
		}
		e := m.msgs[k.index]
		if int(e.folder) != m.cur {
			// Batches never cross a folder (folders.go): a message of
			// another folder is fetched when its folder is EXAMINEd.
			continue
		}
		if _, dup := b.byUID[e.uid]; dup {
			continue
		}
		cost := e.size
		if top {
			cost = min(e.size, headerGuess)
		}
		if cost > room {
			if top {
				continue
			}
			break // keep order: no holes in what a client will ask next
		}
		room -= cost
		b.budget += cost
		s := &slot{key: k, uid: e.uid, size: e.size}
		b.slots = append(b.slots, s)
		if b.byUID == nil {
			b.byUID = make(map[imap.UID]*slot, len(want))
		}
		b.byUID[e.uid] = s
		uids.AddNum(e.uid)
	}
	if len(b.slots) == 0 {
		return 0
	}
	b.done = make(chan struct{})
	b.left = len(b.slots)
	if top {
		// Headers are small and their size unknown: let the batch use
		// the room planned for it, at least.
		b.budget = max(b.budget, min(room+b.budget, int64(len(b.slots))*headerGuess*4))
	}
	opts := &imap.FetchOptions{UID: true, RFC822Size: true}
	if top {
		opts.BodySection = []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}}
	} else {
		opts.BodySection = []*imap.FetchItemBodySection{{Peek: true}}
	}
	m.conn.begin()
	cmd := m.c.Fetch(uids, opts)
	m.ahead.batches = append(m.ahead.batches, b)
	go m.runBatch(b, cmd)
	return b.budget
}

// runBatch reads a prefetch command's responses into its slots; it never
// waits for anything but the upstream.
func (m *maildrop) runBatch(b *batch, cmd *imapclient.FetchCommand) {
	start := time.Now()
	defer func() {
		m.conn.end()
		m.b.observe("prefetch", start, b.err)
		close(b.done)
	}()
	dead := false
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var size int64 = -1
		var body []byte
		for item := msg.Next(); item != nil && !dead; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataRFC822Size:
				size = it.Size
			case imapclient.FetchItemDataBodySection:
				s := b.byUID[uid]
				if s == nil || it.Literal == nil || body != nil {
					continue // go-imap drains an unread literal
				}
				if !s.fits(it.Section, it.Literal.Size()) || b.used+it.Literal.Size() > b.budget {
					continue
				}
				n := it.Literal.Size()
				buf := getBody(n) // recycled by memStream.Close (bodypool.go)
				if _, err := io.ReadFull(it.Literal, buf); err != nil {
					// A literal cut short: the connection is gone, and
					// the literal must not be read again (waitDead).
					m.waitDead()
					dead = true
					continue
				}
				b.used += n
				body = buf
			}
		}
		if dead {
			break
		}
		if s := b.byUID[uid]; s != nil && body != nil && size == s.size && !s.ok {
			s.body, s.ok = body, true
		}
	}
	b.err = cmd.Close()
	if dead && b.err == nil {
		b.err = errors.New("prefetch literal truncated")
	}
}

// stopAhead waits for every prefetch in flight and forgets them all.
// Callers hold m.mu.
func (m *maildrop) stopAhead() {
	for _, b := range m.ahead.batches {
		select {
		case <-b.done:
		case <-time.After(m.b.cfg.CommandTimeout + 5*time.Second):
			m.kill()
			<-b.done
		}
	}
	clear(m.ahead.batches)
	m.ahead.batches = m.ahead.batches[:0]
	m.ahead.hints = m.ahead.hints[:0]
}

// memStream serves a prefetched message from memory. It was checked
// whole before Open returned it, so io.EOF at its end is the truth; only
// an abort (the maildrop closed under it) ends it with an error.
type memStream struct {
	m *maildrop

	mu   sync.Mutex
	buf  []byte
	body []byte // all of it, recycled once the stream is closed (bodypool.go)
	err  error
}

func (s *memStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// WriteTo writes what is left in one Write, sparing the caller's copy
// buffer; nil means all of it went out. The buffer is written without
// the lock (a slow client must not hold up abortLocked), which is safe
// because only Close, called by the same goroutine as WriteTo, recycles
// it.
func (s *memStream) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	buf, err := s.buf, s.err
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(buf)
	s.mu.Lock()
	if s.err == nil {
		s.buf = buf[n:]
	}
	s.mu.Unlock()
	return int64(n), err
}

func (s *memStream) Close() error {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stream == s {
		m.stream = nil
	}
	s.mu.Lock()
	s.buf = nil
	putBody(s.body)
	s.body = nil
	if s.err == nil {
		s.err = errStreamClosed
	}
	s.mu.Unlock()
	return nil
}

func (s *memStream) abortLocked(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = nil
	// Not recycled here: a WriteTo may still be writing from it.
	s.body = nil
	if s.err == nil {
		s.err = &streamError{cause}
	}
}
