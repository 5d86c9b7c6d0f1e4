package imapback

import (
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// FETCH responses reach go-imap's FetchCommand only when their UID item
// comes before any literal; otherwise (Courier answers `BODY[] {n} ...
// UID u`) go-imap hands the message to the unilateral handler, and the
// command completes with no data. The router funnels both paths of the
// one fetch in flight into a single channel, so item order never matters:
// the consumer checks the UID wherever it appears. Only one fetch is in
// flight per connection: pipelined fetches can deadlock go-imap's reader,
// which blocks until a body literal is consumed.

// router dispatches unilateral FETCH responses to the fetch in flight.
type router struct {
	mu  sync.Mutex
	cur *fetchOp
}

func (r *router) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{Fetch: r.fetch}
}

// fetch runs in its own goroutine (go-imap starts one per unilateral
// message). A message nobody wants is drained so the reader can go on.
func (r *router) fetch(msg *imapclient.FetchMessageData) {
	r.mu.Lock()
	op := r.cur
	r.mu.Unlock()
	if op == nil {
		drainMsg(msg)
		return
	}
	op.deliverFrom(msg, true)
}

func (r *router) set(op *fetchOp) {
	r.mu.Lock()
	r.cur = op
	r.mu.Unlock()
}

func (r *router) clear(op *fetchOp) {
	r.mu.Lock()
	if r.cur == op {
		r.cur = nil
	}
	r.mu.Unlock()
}

// drainMsg consumes a message's items; go-imap discards unread literals.
func drainMsg(msg *imapclient.FetchMessageData) {
	for msg.Next() != nil {
	}
}

// fetchOp is one UID FETCH in flight. Its consumer (one goroutine) calls
// next until nil, then close; or abandon after killing the connection.
type fetchOp struct {
	r    *router
	in   chan delivery
	done chan error // the command's result, once all its data was handled
	stop chan struct{}

	stopOnce sync.Once
	cur      *delivery
	finished bool
	result   error
}

// delivery hands a message to the consumer; ack is closed once the
// consumer drained it. Until then its sender must not call Next again
// (FetchCommand.Next would discard it concurrently).
type delivery struct {
	msg        *imapclient.FetchMessageData
	ack        chan struct{}
	unilateral bool // came through the unilateral handler, not the command
}

// startFetch sends UID FETCH uid with opts and starts routing.
func (u *upstream) startFetch(uid imap.UID, opts *imap.FetchOptions) *fetchOp {
	op := &fetchOp{
		r:    u.router,
		in:   make(chan delivery),
		done: make(chan error, 1),
		stop: make(chan struct{}),
	}
	u.router.set(op) // before sending: responses may come at once
	cmd := u.c.Fetch(imap.UIDSetNum(uid), opts)
	go func() {
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			op.deliver(msg)
		}
		op.done <- cmd.Close()
	}()
	return op
}

func (op *fetchOp) deliver(msg *imapclient.FetchMessageData) { op.deliverFrom(msg, false) }

// unilateral reports whether the current message came through the
// unilateral handler (the server sent its UID after a literal).
func (op *fetchOp) unilateral() bool { return op.cur != nil && op.cur.unilateral }

func (op *fetchOp) deliverFrom(msg *imapclient.FetchMessageData, unilateral bool) {
	ack := make(chan struct{})
	select {
	case op.in <- delivery{msg, ack, unilateral}:
		<-ack
	case <-op.stop:
		drainMsg(msg)
	}
}

// next drains the current message and returns the next one, or nil once
// the command completed (op.result is then its error). A response with a
// literal cannot complete before its literal was read, so no message with
// a body is ever lost to the race between in and done.
func (op *fetchOp) next() *imapclient.FetchMessageData {
	op.release()
	if op.finished {
		return nil
	}
	select {
	case d := <-op.in:
		op.cur = &d
		return d.msg
	case err := <-op.done:
		op.finished = true
		op.result = err
		return nil
	}
}

func (op *fetchOp) release() {
	if op.cur != nil {
		drainMsg(op.cur.msg)
		close(op.cur.ack)
		op.cur = nil
	}
}

// finish drains the rest of the response and returns the command's
// result. The connection stays usable.
func (op *fetchOp) finish() error {
	for op.next() != nil {
	}
	op.close()
	return op.result
}

func (op *fetchOp) close() {
	op.release()
	op.stopOnce.Do(func() { close(op.stop) })
	op.r.clear(op)
}

// abandon gives up on the fetch; the caller has closed the connection, so
// draining fails fast and the command completes with an error.
func (op *fetchOp) abandon() {
	op.close()
	if !op.finished {
		select {
		case op.result = <-op.done:
			op.finished = true
		case <-time.After(5 * time.Second):
		}
	}
}
