package pop3front

import "bytes"

// Prefetcher is an optional interface of a Maildrop (tested with a type
// assertion, like io.WriterTo): a maildrop that can fetch messages ahead
// implements it to learn what the client has already asked for.
//
// Before Open for a RETR or TOP, the session calls Prefetch for each RETR
// and TOP it finds already pipelined behind that command in its input
// buffer, in order (at most maxPrefetchHints, none past a QUIT). A hint is
// only a hint: the command may still fail or never run (the client may go
// away), and the maildrop may ignore it. Prefetch must not block on I/O,
// must not change the store, must keep what it fetches ahead bounded,
// and must deliver through Open only what Open itself would deliver
// (same checks: a message expunged or changed upstream is ErrExpunged,
// never stale prefetched bytes).
type Prefetcher interface {
	Prefetch(index int, sec Section)
}

// maxPrefetchHints bounds the hints given before one Open.
const maxPrefetchHints = 32

// hintPrefetch tells a Prefetcher maildrop which RETR and TOP commands
// are queued behind the current one. It only looks at complete lines
// already buffered; nothing is read and nothing is consumed.
func (s *session) hintPrefetch() {
	p, ok := s.drop.(Prefetcher)
	if !ok || s.br.Buffered() == 0 {
		return
	}
	buf, _ := s.br.Peek(s.br.Buffered())
	for n := 0; n < maxPrefetchHints; {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return
		}
		line := bytes.TrimSuffix(buf[:i], crlf[:1])
		buf = buf[i+1:]
		if bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\r') >= 0 {
			continue
		}
		cmd, args := parseCommand(line)
		if cmd == nil {
			continue
		}
		var sec Section
		switch cmd.name {
		case "QUIT":
			return
		case "RETR":
		case "TOP":
			sec.Top = true
		default:
			continue
		}
		a, na := splitArgs(args)
		if na != 1 && !sec.Top || na != 2 && sec.Top {
			continue
		}
		v, ok := parseNumber(a[0])
		if !ok || v == 0 || v > uint64(len(s.msgs)) || s.deleted[v-1] {
			continue
		}
		if sec.Top {
			lines, ok := parseNumber(a[1])
			if !ok {
				continue
			}
			sec.BodyLines = int(min(lines, maxTopLines))
		}
		p.Prefetch(int(v-1), sec)
		n++
	}
}
