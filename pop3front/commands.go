package pop3front

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
)

// command is one entry of the command table: its name, the states it is
// valid in, and its handler. A handler writes exactly one reply; a
// non-nil error ends the session (a *sessionEnd, or a client I/O error).
type command struct {
	name   string
	states state
	fn     func(s *session, args []byte) error
}

// commands maps upper-case names to the table. Every POP3 command name is
// four letters (RFC 1939, RFC 2449, RFC 2595, RFC 5034). APOP is not
// offered, so it is an unknown command; so is STLS without a TLSConfig.
var commands map[string]*command

func init() {
	table := []*command{
		{"USER", stateAuth, (*session).cmdUSER},
		{"PASS", stateAuth, (*session).cmdPASS},
		{"AUTH", stateAuth, (*session).cmdAUTH},
		{"STLS", stateAuth, (*session).cmdSTLS},
		{"CAPA", stateAuth | stateTrans, (*session).cmdCAPA},
		{"QUIT", stateAuth | stateTrans, (*session).cmdQUIT},
		{"STAT", stateTrans, (*session).cmdSTAT},
		{"LIST", stateTrans, (*session).cmdLIST},
		{"UIDL", stateTrans, (*session).cmdUIDL},
		{"RETR", stateTrans, (*session).cmdRETR},
		{"TOP", stateTrans, (*session).cmdTOP},
		{"DELE", stateTrans, (*session).cmdDELE},
		{"RSET", stateTrans, (*session).cmdRSET},
		{"NOOP", stateTrans, (*session).cmdNOOP},
	}
	commands = make(map[string]*command, len(table))
	for _, c := range table {
		commands[c.name] = c
	}
}

// parseCommand splits a command line at its first space into the
// command (nil if unknown) and the rest. Names are case-insensitive (RFC
// 1939 section 3). It does not allocate.
func parseCommand(line []byte) (*command, []byte) {
	name, args := line, []byte(nil)
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		name, args = line[:i], line[i+1:]
	}
	if len(name) == 0 || len(name) > 4 {
		return nil, args
	}
	var up [4]byte
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return commands[string(up[:len(name)])], args
}

// handle runs one command line.
func (s *session) handle(line []byte) error {
	// NUL and stray CR never reach a handler, let alone the backend
	// (docs/design.md, invariant 8).
	if bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\r') >= 0 {
		s.obs.Command("UNKNOWN")
		return s.badCommand(textBadChars)
	}
	if s.srv.Trace != nil {
		s.traceClient(line)
	}
	cmd, args := parseCommand(line)
	if cmd == nil {
		s.obs.Command("UNKNOWN")
		return s.badCommand(textUnknown)
	}
	s.obs.Command(cmd.name)
	if st := s.state(); cmd.states&st == 0 {
		if st == stateAuth {
			return s.badCommand(textNotLoggedIn)
		}
		return s.badCommand(textLoggedIn)
	}
	return cmd.fn(s, args)
}

// maxArgs is the most arguments any command takes (TOP msg n).
const maxArgs = 2

// splitArgs splits space-separated arguments. It tolerates runs of spaces
// and trailing spaces (some clients send "LIST "), and counts arguments
// past maxArgs so callers can reject them. It does not allocate.
func splitArgs(b []byte) (args [maxArgs][]byte, n int) {
	for {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		if len(b) == 0 {
			return args, n
		}
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		if n < maxArgs {
			args[n] = b[:end]
		}
		n++
		b = b[end:]
	}
}

// parseNumber parses a non-negative decimal number. Leading zeros are
// accepted ("01" is 1), as Dovecot's POP3 does. A number too large for
// uint64 saturates, so it is a well-formed but nonexistent message
// number. ok is false for anything but digits ("-1", "+1", "1x", "").
func parseNumber(b []byte) (v uint64, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			v = math.MaxUint64
		} else {
			v = v*10 + d
		}
	}
	return v, true
}

// argResult is what a message-number argument turned out to be.
type argResult int

const (
	argOK      argResult = iota
	argReplied           // a reply was written; nothing more to do
)

// message resolves a message-number argument (RFC 1939 section 5:
// 1..N, deleted ones excluded) to its index. On failure it writes the
// reply: syntax errors count as bad commands, a well-formed number that
// names no message ("0", "4294967296") or a deleted one does not.
func (s *session) message(arg []byte) (idx int, res argResult, err error) {
	v, ok := parseNumber(arg)
	if !ok {
		return 0, argReplied, s.badCommand(textBadMsg)
	}
	if v == 0 || v > uint64(len(s.msgs)) {
		s.err(textNoSuchMsg)
		return 0, argReplied, nil
	}
	idx = int(v - 1)
	if s.deleted[idx] {
		s.errMsg(idx+1, "already deleted.")
		return 0, argReplied, nil
	}
	return idx, argOK, nil
}

// noArgs rejects arguments to a command that takes none.
func (s *session) noArgs(args []byte) (bool, error) {
	if _, n := splitArgs(args); n > 0 {
		return false, s.badCommand(textNoArgs)
	}
	return true, nil
}

// oneMessage parses the single message-number argument of RETR and DELE.
func (s *session) oneMessage(args []byte) (int, argResult, error) {
	a, n := splitArgs(args)
	switch {
	case n == 0:
		return 0, argReplied, s.badCommand(textMissingMsg)
	case n > 1:
		return 0, argReplied, s.badCommand(textNoArgs)
	}
	return s.message(a[0])
}

// cmdSTAT: RFC 1939 section 5, "+OK nn mm" over undeleted messages.
func (s *session) cmdSTAT(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	var n, size int64
	for i, m := range s.msgs {
		if !s.deleted[i] {
			n++
			size += m.Size
		}
	}
	s.okNums(n, size, "")
	return nil
}

// cmdLIST: RFC 1939 section 5, scan listings of undeleted messages.
func (s *session) cmdLIST(args []byte) error {
	a, n := splitArgs(args)
	switch {
	case n > 1:
		return s.badCommand(textNoArgs)
	case n == 1:
		idx, res, err := s.message(a[0])
		if res != argOK {
			return err
		}
		s.okNums(int64(idx+1), s.msgs[idx].Size, "")
		return nil
	}
	s.okNums(int64(len(s.msgs)-s.nDeleted), -1, "messages:")
	for i, m := range s.msgs {
		if s.deleted[i] {
			continue
		}
		buf := s.bw.AvailableBuffer()
		buf = strconv.AppendInt(buf, int64(i+1), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, m.Size, 10)
		buf = append(buf, crlf...)
		s.bw.Write(buf)
	}
	s.bw.Write(terminator)
	return nil
}

// cmdUIDL: RFC 1939 section 7, unique-id listings of undeleted messages.
func (s *session) cmdUIDL(args []byte) error {
	a, n := splitArgs(args)
	switch {
	case n > 1:
		return s.badCommand(textNoArgs)
	case n == 1:
		idx, res, err := s.message(a[0])
		if res != argOK {
			return err
		}
		s.okNums(int64(idx+1), -1, s.msgs[idx].UIDL)
		return nil
	}
	s.ok("")
	for i, m := range s.msgs {
		if s.deleted[i] {
			continue
		}
		buf := s.bw.AvailableBuffer()
		buf = strconv.AppendInt(buf, int64(i+1), 10)
		buf = append(buf, ' ')
		buf = append(buf, m.UIDL...)
		buf = append(buf, crlf...)
		s.bw.Write(buf)
	}
	s.bw.Write(terminator)
	return nil
}

// cmdDELE: RFC 1939 section 5. Bookkeeping only; the store sees it at
// QUIT through Commit.
func (s *session) cmdDELE(args []byte) error {
	idx, res, err := s.oneMessage(args)
	if res != argOK {
		return err
	}
	s.deleted[idx] = true
	s.nDeleted++
	s.ok("Marked to be deleted.")
	return nil
}

// cmdRSET: RFC 1939 section 5, unmark every deleted message. Like
// Dovecot's own POP3 (which drops the \Seen changes it would make at
// QUIT), RSET also forgets the retrievals so far: Commit then sees only
// what was deleted or retrieved after the last RSET.
func (s *session) cmdRSET(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	clear(s.deleted)
	s.nDeleted = 0
	clear(s.retrieved)
	s.ok("")
	return nil
}

// cmdNOOP: RFC 1939 section 5. It also keeps the store's connection
// alive; if the store is gone the session cannot go on.
func (s *session) cmdNOOP(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.lim.LoginTimeout)
	err := s.drop.Noop(ctx)
	cancel()
	if err != nil {
		s.logBackendError("noop", err)
		s.errReply(err)
		return s.final("upstream_error", err)
	}
	s.ok("")
	return nil
}

// cmdQUIT: RFC 1939 sections 4 and 6. In TRANSACTION this is the UPDATE
// state: the only place Commit is called, and "+OK" only when it
// succeeded (docs/design.md, invariant 3). Nothing after QUIT is read.
func (s *session) cmdQUIT(args []byte) error {
	if ok, err := s.noArgs(args); !ok {
		return err
	}
	if s.state() != stateTrans {
		s.ok("Logging out.")
		return endWith("quit", nil)
	}
	out := s.outcome()
	if len(out.Deleted) == 0 && len(out.Retrieved) == 0 {
		// Nothing to apply under any policy: no upstream round trip.
		s.obs.Update(0, "none")
		s.update = "none"
		s.ok("Logging out.")
		return endWith("quit", nil)
	}
	if err := s.ctx.Err(); err != nil {
		// Close() or a forced Shutdown: never commit.
		s.err(textShuttingDown)
		return s.final("shutdown", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.lim.CommitTimeout)
	err := s.drop.Commit(ctx, out)
	cancel()
	if err != nil {
		s.obs.Update(len(out.Deleted), "failed")
		s.update = "failed"
		s.logBackendError("commit", err)
		// docs/design.md, invariant 3: any failure is [SYS/TEMP]; an *Error may say more.
		text := textCommitFailed
		if pe := (*Error)(nil); errors.As(err, &pe) && pe.Text != "" {
			text = safeText(pe.Text, maxReplyLine-32)
		}
		s.err("[" + CodeSysTemp + "] " + text)
		return endWith("quit_failed", err)
	}
	s.obs.Update(len(out.Deleted), "ok")
	s.update = "applied"
	s.ok("Logging out.")
	return endWith("quit", nil)
}

// outcome is what QUIT asks the store to apply, indexes ascending.
func (s *session) outcome() Outcome {
	var out Outcome
	for i := range s.msgs {
		if s.deleted[i] {
			out.Deleted = append(out.Deleted, i)
		}
		if s.retrieved[i] {
			out.Retrieved = append(out.Retrieved, i)
		}
	}
	return out
}
