package pop3front

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// maxTopLines caps TOP's line count: a larger count is accepted and means
// the whole body, without handing the backend absurd numbers.
const maxTopLines = math.MaxInt32

// maxZeroReads is how many (0, nil) reads in a row a stream may return
// before it counts as broken (io.ErrNoProgress).
const maxZeroReads = 100

// cmdRETR: RFC 1939 section 5.
func (s *session) cmdRETR(args []byte) error {
	idx, res, err := s.oneMessage(args)
	if res != argOK {
		return err
	}
	return s.sendMessage(idx, Section{})
}

// cmdTOP: RFC 1939 section 7, "TOP msg n": the header, the blank line,
// and n body lines. n is a non-negative number; a huge n means the whole
// body.
func (s *session) cmdTOP(args []byte) error {
	a, n := splitArgs(args)
	switch {
	case n == 0:
		return s.badCommand(textMissingMsg)
	case n == 1:
		return s.badCommand(textMissingLines)
	case n > 2:
		return s.badCommand(textNoArgs)
	}
	lines, ok := parseNumber(a[1])
	if !ok {
		return s.badCommand(textBadLines)
	}
	idx, res, err := s.message(a[0])
	if res != argOK {
		return err
	}
	return s.sendMessage(idx, Section{Top: true, BodyLines: int(min(lines, maxTopLines))})
}

// sendMessage answers RETR or TOP. "+OK" goes out only once Open
// succeeded; after it, a failure can only close the connection without a
// terminator (docs/design.md, invariant 4). The terminator is written only after the
// stream returned io.EOF (or TOP has its lines), into the same buffer as
// the last body octets.
func (s *session) sendMessage(idx int, sec Section) error {
	s.hintPrefetch()
	rc, err := s.drop.Open(s.ctx, idx, sec)
	if err != nil {
		if rc != nil {
			s.safeClose("stream", rc)
		}
		if errors.Is(err, ErrExpunged) {
			s.errMsg(idx+1, "expunged.")
			return nil
		}
		s.logBackendError("open", err)
		s.errReply(err)
		return nil
	}
	s.stream = rc
	if sec.Top {
		s.ok("")
	} else {
		s.okNums(s.msgs[idx].Size, -1, "octets")
	}
	s.dw.reset(s.bw, sec.Top, sec.BodyLines)
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	rerr, werr := s.copyBody(rc, buf[:])
	copyBuffers.Put(buf)
	s.stream = nil
	s.safeClose("stream", rc)
	if werr == nil && rerr == nil && !sec.Top && s.dw.in != s.msgs[idx].Size {
		// The backend ended the message early or late: what went out
		// is not the message LIST announced, so it gets no terminator.
		rerr = fmt.Errorf("pop3: message %d is %d octets, announced %d", idx+1, s.dw.in, s.msgs[idx].Size)
	}
	if werr != nil {
		// The client is gone or too slow; what it got has no terminator.
		return s.ioEnd(werr)
	}
	if rerr != nil {
		// Replies before this one are complete and go out; the partial
		// body goes with them, but never a terminator.
		s.logBackendError("read", rerr)
		return s.final("upstream_error", rerr)
	}
	if err := s.dw.Close(); err != nil {
		return s.ioEnd(err)
	}
	s.obs.Retrieved(sec.Top, s.dw.in)
	if s.tracing {
		s.trace("S", fmt.Sprintf("(%d octets of message %d, then the terminator)", s.dw.in, idx+1))
	}
	if sec.Top {
		s.nTop++
	} else {
		s.retrieved[idx] = true
		s.nRetrieved++
		s.retrBytes += s.dw.in
	}
	return nil
}

// copyBody streams rc through the dot writer until io.EOF or until TOP
// has its lines. It reports read and write failures apart: both end the
// session, but they end it for different reasons.
func (s *session) copyBody(rc io.Reader, buf []byte) (rerr, werr error) {
	if wt, ok := rc.(io.WriterTo); ok {
		// A body in memory goes to the dot writer in one piece, without
		// the copy through buf (Maildrop.Open states what nil means).
		s.sink = bodySink{dw: &s.dw} // a field: nothing allocated per message
		_, err := wt.WriteTo(&s.sink)
		switch {
		case s.sink.err != nil:
			return nil, s.sink.err
		case err == nil || s.dw.Done():
			return nil, nil
		}
		return err, nil
	}
	zero := 0
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			zero = 0
			if _, werr := s.dw.Write(buf[:n]); werr != nil && werr != errTopDone {
				return nil, werr
			}
		} else if err == nil {
			if zero++; zero >= maxZeroReads {
				return io.ErrNoProgress, nil
			}
		}
		if s.dw.Done() {
			return nil, nil
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// bodySink is the dot writer as a WriteTo destination: it keeps a write
// failure apart from the source's, and TOP's end stops the source as an
// error (errTopDone) that is not one.
type bodySink struct {
	dw  *dotWriter
	err error
}

func (b *bodySink) Write(p []byte) (int, error) {
	n, err := b.dw.Write(p)
	if err != nil && err != errTopDone && b.err == nil {
		b.err = err
	}
	return n, err
}
