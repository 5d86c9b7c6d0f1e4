package fakeimap

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/popbridge/popbridge/internal/testtb"
)

// Quirk profiles: a small stateful IMAP server that behaves like one of
// the servers in docs/servers.md (Dovecot, Cyrus, Courier, UW/Panda,
// GNU Mailutils), for deterministic tests of a whole gateway session.
//
// Unlike a script, Serve answers whatever a client sends, in the order it
// sends it, from a Mailbox shared by every connection of the server: a
// test can expunge a message "from a phone" (Mailbox.Expunge, or a second
// client connection) while the gateway's session is open, and each
// connection answers as its profile's server would. Every command is
// recorded (Mailbox.Commands) so tests can check what was never sent
// (a plain EXPUNGE, a sequence-number FETCH 1:* on an empty mailbox).

// ExpungedAnswer is how a server answers a UID FETCH of a message another
// session expunged before this session was told.
type ExpungedAnswer int

const (
	// ExpungedNil: `BODY[] NIL` (RFC822.SIZE 0), an untagged EXPUNGE and
	// `OK [EXPUNGEISSUED]` (Dovecot).
	ExpungedNil ExpungedAnswer = iota
	// ExpungedOriginal: the full original message with \Deleted, then an
	// untagged EXPUNGE (Cyrus).
	ExpungedOriginal
	// ExpungedSubstitute: OK with a 129-byte "message unavailable"
	// substitute; only its size differs from the snapshot (Courier).
	ExpungedSubstitute
	// ExpungedOtherMessage: the bytes of a different message under the
	// expunged UID (UW, read-only session).
	ExpungedOtherMessage
	// ExpungedKeepServing: the original, as if nothing happened; the
	// session is never told (mailutils).
	ExpungedKeepServing
)

// Profile describes one server's observable behaviour.
type Profile struct {
	Name    string
	Version string
	// Caps is the CAPABILITY list after login (the greeting offers the
	// same minus post-login extensions; LOGIN is always allowed).
	Caps string
	// CapsInLogin: the LOGIN OK carries [CAPABILITY ...] (Dovecot, Cyrus).
	CapsInLogin bool
	Expunged    ExpungedAnswer
	// Notify: the server tells a session about other sessions' expunges
	// (untagged EXPUNGE) at NOOP and UID FETCH/STORE.
	Notify bool
	// ExpungeWord is what the server writes for an expunge notice:
	// "EXPUNGE", or "EXPUNGED" (mailutils, non-standard).
	ExpungeWord string
	// Order lists FETCH data items in the order the server writes them;
	// "BODY" stands for every body section. Items not requested are
	// skipped.
	Order []string
	// EmptySeqFetch is the tagged status of a sequence-number FETCH 1:*
	// on an empty mailbox: "BAD", "NO" or "OK".
	EmptySeqFetch string
	// LockKill: a read-write SELECT kills the session that held the
	// mailbox read-write (`* BYE Killed (lost mailbox lock)`) (UW).
	LockKill bool
	// LooseUIDs: a UID above the last names the last message, and a UID
	// set naming a missing UID below the last is BAD (mailutils 3.15).
	LooseUIDs bool
	// SpecialUse: LIST returns \Trash and \Archive on those folders.
	SpecialUse bool
}

// The five profiles, from docs/servers.md.
var (
	Dovecot = Profile{
		Name: "dovecot", Version: "2.3.19",
		Caps:        "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE",
		CapsInLogin: true, Expunged: ExpungedNil, Notify: true, ExpungeWord: "EXPUNGE",
		Order: []string{"UID", "RFC822.SIZE", "FLAGS", "BODY"}, EmptySeqFetch: "BAD",
	}
	Cyrus = Profile{
		Name: "cyrus", Version: "3.6.1",
		Caps:        "IMAP4rev1 LITERAL+ ID ENABLE ACL RIGHTS=kxten QUOTA MAILBOX-REFERRALS NAMESPACE UIDPLUS NO_ATOMIC_RENAME UNSELECT CHILDREN MULTIAPPEND BINARY CATENATE CONDSTORE ESEARCH SORT THREAD=REFERENCES LIST-EXTENDED SPECIAL-USE CREATE-SPECIAL-USE IDLE MOVE OBJECTID QRESYNC",
		CapsInLogin: true, Expunged: ExpungedOriginal, Notify: true, ExpungeWord: "EXPUNGE",
		Order: []string{"FLAGS", "UID", "RFC822.SIZE", "BODY"}, EmptySeqFetch: "NO", SpecialUse: true,
	}
	Courier = Profile{
		Name: "courier", Version: "5.0.13",
		Caps:     "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE",
		Expunged: ExpungedSubstitute, Notify: true, ExpungeWord: "EXPUNGE",
		Order: []string{"BODY", "RFC822.SIZE", "FLAGS", "UID"}, EmptySeqFetch: "OK",
	}
	UW = Profile{
		Name: "uw", Version: "Panda 2010.417",
		Caps:     "IMAP4rev1 LITERAL+ IDLE UIDPLUS NAMESPACE CHILDREN MAILBOX-REFERRALS BINARY UNSELECT ESEARCH WITHIN SCAN SORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT MULTIAPPEND",
		Expunged: ExpungedOtherMessage, Notify: true, ExpungeWord: "EXPUNGE",
		Order: []string{"UID", "RFC822.SIZE", "FLAGS", "BODY"}, EmptySeqFetch: "BAD", LockKill: true,
	}
	Mailutils = Profile{
		Name: "mailutils", Version: "3.15",
		Caps:     "IMAP4rev1 NAMESPACE ID IDLE LITERAL+ UNSELECT",
		Expunged: ExpungedKeepServing, Notify: false, ExpungeWord: "EXPUNGED",
		Order: []string{"UID", "RFC822.SIZE", "FLAGS", "BODY"}, EmptySeqFetch: "OK", LooseUIDs: true,
	}
)

// Profiles returns the five profiles.
func Profiles() []Profile { return []Profile{Dovecot, Cyrus, Courier, UW, Mailutils} }

// Has reports whether the profile advertises capability c.
func (p Profile) Has(c string) bool {
	return slices.ContainsFunc(strings.Fields(p.Caps), func(x string) bool { return strings.EqualFold(x, c) })
}

// Substitute is Courier's stand-in for a message that vanished: 129
// octets.
var Substitute = []byte("From: System Administrator <root@localhost>\r\nSubject: message unavailable\r\n\r\nThis message is no longer available on the server.\r\n")

// Message is one message of a Mailbox.
type Message struct {
	UID   uint32
	Body  []byte
	Flags []string // as sent, e.g. `\Seen`
}

type message struct {
	uid   uint32
	body  []byte
	flags []string
}

func (m *message) has(f string) bool {
	return slices.ContainsFunc(m.flags, func(x string) bool { return strings.EqualFold(x, f) })
}

func (m *message) add(f string) {
	if !m.has(f) {
		m.flags = append(m.flags, f)
	}
}

// Mailbox is INBOX and its sibling folders, shared by every connection
// of a profile server. Its methods are safe for concurrent use.
type Mailbox struct {
	mu       sync.Mutex
	validity uint32
	next     uint32
	msgs     []*message // INBOX, by UID
	gone     map[uint32]*message
	folders  map[string][]*message
	sessions map[*session]bool
	rw       *session // UW: the read-write holder
	cmds     []string
}

// NewMailbox returns an INBOX holding bodies (UIDs 1, 2, ...) with
// UIDVALIDITY validity, and no other folder.
func NewMailbox(validity uint32, bodies ...[]byte) *Mailbox {
	mb := &Mailbox{validity: validity, next: 1, gone: map[uint32]*message{}, folders: map[string][]*message{}, sessions: map[*session]bool{}}
	for _, b := range bodies {
		mb.Add(b)
	}
	return mb
}

// Add delivers a new message to INBOX and returns its UID. Open sessions
// see it only after their next SELECT or EXAMINE.
func (mb *Mailbox) Add(body []byte, flags ...string) uint32 {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	m := &message{uid: mb.next, body: slices.Clone(body), flags: slices.Clone(flags)}
	mb.next++
	mb.msgs = append(mb.msgs, m)
	return m.uid
}

// CreateFolder creates a folder (Trash, Archive, ...).
func (mb *Mailbox) CreateFolder(name string) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if _, ok := mb.folders[name]; !ok {
		mb.folders[name] = nil
	}
}

// Expunge removes uids from INBOX as another client would; sessions
// learn of it as their profile says.
func (mb *Mailbox) Expunge(uids ...uint32) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.expungeLocked(nil, uids)
}

func (mb *Mailbox) expungeLocked(by *session, uids []uint32) {
	keep := mb.msgs[:0]
	for _, m := range mb.msgs {
		if slices.Contains(uids, m.uid) {
			mb.gone[m.uid] = m
			for s := range mb.sessions {
				if s != by && s.inView(m.uid) {
					s.pending = append(s.pending, m.uid)
				}
			}
			continue
		}
		keep = append(keep, m)
	}
	clear(mb.msgs[len(keep):])
	mb.msgs = keep
}

// Messages returns INBOX (or folder) as it is now.
func (mb *Mailbox) Messages(folder string) []Message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	l := mb.msgs
	if !strings.EqualFold(folder, "INBOX") {
		l = mb.folders[folder]
	}
	var out []Message
	for _, m := range l {
		out = append(out, Message{UID: m.uid, Body: slices.Clone(m.body), Flags: slices.Clone(m.flags)})
	}
	return out
}

// Commands returns every command line received by any connection, in
// order, prefixed with the connection's index ("0: T1 LOGIN ...").
func (mb *Mailbox) Commands() []string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return slices.Clone(mb.cmds)
}

func (mb *Mailbox) find(uid uint32) *message {
	for _, m := range mb.msgs {
		if m.uid == uid {
			return m
		}
	}
	return nil
}

// StartProfile starts a fake server playing p over mb for up to conns
// connections.
func StartProfile(t testtb.TB, p Profile, mb *Mailbox, conns int) *Server {
	scripts := make([]Script, conns)
	for i := range scripts {
		scripts[i] = S(Serve(p, mb))
	}
	return Start(t, scripts...)
}

// Serve is a step that answers a whole connection as p would, over mb.
func Serve(p Profile, mb *Mailbox) Step {
	return Step{"Serve(" + p.Name + ")", func(c *Conn) error {
		s := &session{c: c, p: p, mb: mb}
		mb.mu.Lock()
		mb.sessions[s] = true
		mb.mu.Unlock()
		defer func() {
			mb.mu.Lock()
			delete(mb.sessions, s)
			if mb.rw == s {
				mb.rw = nil
			}
			mb.mu.Unlock()
		}()
		return s.run()
	}}
}

type session struct {
	c        *Conn
	p        Profile
	mb       *Mailbox
	selected bool
	readOnly bool
	view     []uint32 // UIDs by sequence number, as this session knows them
	pending  []uint32 // expunged by others, not yet announced
	out      bytes.Buffer
	killed   bool
}

func (s *session) inView(uid uint32) bool { return slices.Contains(s.view, uid) }

func (s *session) printf(format string, args ...any) { fmt.Fprintf(&s.out, format, args...) }

var (
	reCmd   = regexp.MustCompile(`^(\S+) (?i:(UID) )?(\S+)(?: (.*))?$`)
	reFetch = regexp.MustCompile(`^(\S+) \((.*)\)$`)
	reStore = regexp.MustCompile(`^(\S+) ([+-]?)FLAGS(\.SILENT)? \((.*)\)$`)
	reBody  = regexp.MustCompile(`(?i)^BODY(?:\.PEEK)?\[([A-Z]*)\](?:<(\d+)\.(\d+)>)?$`)
)

func (s *session) run() error {
	c := s.c
	s.printf("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID AUTH=PLAIN] %s ready\r\n", s.p.Name)
	for {
		if err := s.flush(); err != nil {
			return errStop
		}
		line, err := c.ReadLine(c.s.timeout)
		if err != nil {
			return errStop // the client went away (or the test ended)
		}
		s.mb.mu.Lock()
		s.mb.cmds = append(s.mb.cmds, fmt.Sprintf("%d: %s", c.index, line))
		killed := s.killed
		s.mb.mu.Unlock()
		if killed {
			return errStop
		}
		m := reCmd.FindStringSubmatch(line)
		if m == nil {
			s.printf("* BAD parse error\r\n")
			continue
		}
		tag, uid, cmd, args := m[1], m[2] != "", strings.ToUpper(m[3]), m[4]
		if s.command(tag, uid, cmd, args) {
			s.flush()
			return errStop
		}
	}
}

// flush writes what the session has to say; a killed session's
// connection is closed by the killer.
func (s *session) flush() error {
	if s.out.Len() == 0 {
		return nil
	}
	err := s.c.WriteBytes(s.out.Bytes())
	s.out.Reset()
	return err
}

// command handles one command; it returns true to end the connection.
func (s *session) command(tag string, uid bool, cmd, args string) bool {
	mb := s.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	switch {
	case cmd == "CAPABILITY":
		s.printf("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n", s.p.Caps, tag)
	case cmd == "LOGIN" || cmd == "AUTHENTICATE":
		s.login(tag)
	case cmd == "ID" && s.p.Has("ID"):
		s.printf("* ID (\"name\" \"%s\")\r\n%s OK ID completed\r\n", s.p.Name, tag)
	case cmd == "NOOP":
		s.notify()
		s.printf("%s OK NOOP completed\r\n", tag)
	case cmd == "LOGOUT":
		s.printf("* BYE Logging out\r\n%s OK LOGOUT completed\r\n", tag)
		return true
	case cmd == "SELECT" || cmd == "EXAMINE":
		s.open(tag, cmd == "EXAMINE")
	case cmd == "CREATE":
		s.create(tag, unquote(args))
	case cmd == "LIST":
		s.list(tag)
	case !s.selected:
		s.printf("%s BAD No mailbox selected\r\n", tag)
	case cmd == "FETCH":
		s.fetch(tag, uid, args)
	case cmd == "STORE":
		s.store(tag, uid, args)
	case cmd == "EXPUNGE" && uid && s.p.Has("UIDPLUS"), cmd == "EXPUNGE" && !uid:
		s.expunge(tag, uid, args)
	case (cmd == "COPY" || cmd == "MOVE" && s.p.Has("MOVE")) && uid:
		s.copy(tag, cmd == "MOVE", args)
	default:
		s.printf("%s BAD Unknown command %s\r\n", tag, cmd)
	}
	return false
}

// login accepts any credentials.
func (s *session) login(tag string) {
	if s.p.CapsInLogin {
		s.printf("%s OK [CAPABILITY %s] Logged in\r\n", tag, s.p.Caps)
	} else {
		s.printf("%s OK LOGIN completed\r\n", tag)
	}
}

// create makes an empty folder name; under the caller's mb.mu.
func (s *session) create(tag, name string) {
	mb := s.mb
	if _, ok := mb.folders[name]; ok || strings.EqualFold(name, "INBOX") {
		s.printf("%s NO [ALREADYEXISTS] Mailbox exists\r\n", tag)
		return
	}
	mb.folders[name] = nil
	s.printf("%s OK CREATE completed\r\n", tag)
}

// list lists INBOX and every folder, with special-use attributes if the
// profile has them; under the caller's mb.mu.
func (s *session) list(tag string) {
	s.printf("* LIST (\\HasNoChildren) \"/\" INBOX\r\n")
	names := make([]string, 0, len(s.mb.folders))
	for n := range s.mb.folders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		attr := `\HasNoChildren`
		if s.p.SpecialUse && (n == "Trash" || n == "Archive") {
			attr += ` \` + n
		}
		s.printf("* LIST (%s) \"/\" %q\r\n", attr, n)
	}
	s.printf("%s OK LIST completed\r\n", tag)
}

func (s *session) open(tag string, readOnly bool) {
	mb := s.mb
	if !readOnly && s.p.LockKill && mb.rw != nil && mb.rw != s {
		old := mb.rw
		old.killed = true
		old.c.Write("* BYE Killed (lost mailbox lock)\r\n")
		old.c.nc.Close()
	}
	if mb.rw == s || !readOnly {
		mb.rw = nil
	}
	if !readOnly {
		mb.rw = s
	}
	s.selected, s.readOnly = true, readOnly
	s.view, s.pending = s.view[:0], nil
	for _, m := range mb.msgs {
		s.view = append(s.view, m.uid)
	}
	s.printf("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n")
	s.printf("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n")
	s.printf("* %d EXISTS\r\n* 0 RECENT\r\n", len(s.view))
	s.printf("* OK [UIDVALIDITY %d] UIDs valid\r\n* OK [UIDNEXT %d] Predicted next UID\r\n", mb.validity, mb.next)
	if readOnly {
		s.printf("%s OK [READ-ONLY] EXAMINE completed\r\n", tag)
	} else {
		s.printf("%s OK [READ-WRITE] SELECT completed\r\n", tag)
	}
}

// notify announces other sessions' expunges, if the profile does.
func (s *session) notify() {
	if !s.p.Notify {
		return
	}
	for _, u := range s.pending {
		if i := slices.Index(s.view, u); i >= 0 {
			s.printf("* %d %s\r\n", i+1, s.p.ExpungeWord)
			s.view = slices.Delete(s.view, i, i+1)
		}
	}
	s.pending = nil
}

// resolve maps a set to sequence indexes of the session's view. ok is
// false for a set the server refuses (BAD).
func (s *session) resolve(set string, uid bool) (idx []int, ok bool) {
	var max uint32
	if uid && len(s.view) > 0 {
		max = s.view[len(s.view)-1]
	} else if !uid {
		max = uint32(len(s.view))
	}
	for _, part := range strings.Split(set, ",") {
		lo, hi, found := strings.Cut(part, ":")
		a, okA := setNum(lo, max)
		b := a
		okB := okA
		if found {
			b, okB = setNum(hi, max)
		}
		if !okA || !okB {
			return nil, false
		}
		if a > b {
			a, b = b, a
		}
		if !uid {
			for n := a; n <= b && n <= max; n++ {
				if n >= 1 {
					idx = append(idx, int(n-1))
				}
			}
			continue
		}
		if s.p.LooseUIDs {
			// mailutils: a missing UID below the last is a parse error;
			// one above the last is the last message.
			for _, n := range []uint32{a, b} {
				if n <= max && !s.inView(n) {
					return nil, false
				}
			}
			if a > max && len(s.view) > 0 {
				a, b = max, max
			}
		}
		for i, u := range s.view {
			if u >= a && u <= b {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx), true
}

func setNum(s string, max uint32) (uint32, bool) {
	if s == "*" {
		return max, true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil && n > 0
}

type fetchItem struct {
	name    string // UID, RFC822.SIZE, FLAGS, BODY
	section string // HEADER, TEXT or ""
	partial bool
	off, n  int
}

func parseItems(list string) ([]fetchItem, bool) {
	var out []fetchItem
	for _, f := range strings.Fields(list) {
		switch u := strings.ToUpper(f); u {
		case "UID", "RFC822.SIZE", "FLAGS":
			out = append(out, fetchItem{name: u})
		default:
			m := reBody.FindStringSubmatch(f)
			if m == nil {
				return nil, false
			}
			it := fetchItem{name: "BODY", section: strings.ToUpper(m[1])}
			if m[2] != "" {
				it.partial = true
				it.off, _ = strconv.Atoi(m[2])
				it.n, _ = strconv.Atoi(m[3])
			}
			out = append(out, it)
		}
	}
	return out, true
}

func (s *session) fetch(tag string, uid bool, args string) {
	m := reFetch.FindStringSubmatch(args)
	if m == nil {
		s.printf("%s BAD Invalid FETCH arguments\r\n", tag)
		return
	}
	items, ok := parseItems(m[2])
	if !ok {
		s.printf("%s BAD Invalid FETCH items\r\n", tag)
		return
	}
	if uid && !slices.ContainsFunc(items, func(it fetchItem) bool { return it.name == "UID" }) {
		items = append([]fetchItem{{name: "UID"}}, items...)
	}
	if !uid && len(s.view) == 0 && m[1] == "1:*" {
		switch s.p.EmptySeqFetch {
		case "OK":
			s.printf("%s OK FETCH completed\r\n", tag)
		case "NO":
			s.printf("%s NO Invalid sequence in FETCH\r\n", tag)
		default:
			s.printf("%s BAD Error in IMAP command FETCH: Invalid messageset\r\n", tag)
		}
		return
	}
	idx, ok := s.resolve(m[1], uid)
	if !ok {
		s.printf("%s BAD %sFETCH Failed to parse message set\r\n", tag, map[bool]string{true: "UID "}[uid])
		return
	}
	issued := false
	for _, i := range idx {
		u := s.view[i]
		msg := s.mb.find(u)
		if msg == nil {
			orig := s.mb.gone[u]
			switch s.p.Expunged {
			case ExpungedNil:
				s.printf("* %d FETCH (UID %d RFC822.SIZE 0 BODY[] NIL)\r\n", i+1, u)
				issued = true
				continue
			case ExpungedOriginal:
				msg = &message{uid: u, body: orig.body, flags: append(slices.Clone(orig.flags), `\Deleted`)}
			case ExpungedSubstitute:
				msg = &message{uid: u, body: Substitute}
			case ExpungedOtherMessage:
				live := s.mb.msgs
				if len(live) == 0 {
					s.printf("* %d FETCH (UID %d RFC822.SIZE 0 BODY[] NIL)\r\n", i+1, u)
					continue
				}
				other := live[min(i, len(live)-1)]
				msg = &message{uid: u, body: other.body, flags: other.flags}
			case ExpungedKeepServing:
				msg = orig
			}
		}
		s.fetchOne(i+1, msg, items)
	}
	if uid {
		s.notify()
	}
	if issued {
		s.printf("%s OK [EXPUNGEISSUED] Some messages were also expunged\r\n", tag)
		return
	}
	s.printf("%s OK FETCH completed\r\n", tag)
}

func (s *session) fetchOne(seq int, msg *message, items []fetchItem) {
	var parts []string
	var lits [][]byte
	add := func(text string, lit []byte) {
		parts = append(parts, text)
		lits = append(lits, lit)
	}
	for _, name := range s.p.Order {
		for _, it := range items {
			if it.name != name {
				continue
			}
			switch name {
			case "UID":
				add(fmt.Sprintf("UID %d", msg.uid), nil)
			case "RFC822.SIZE":
				add(fmt.Sprintf("RFC822.SIZE %d", len(msg.body)), nil)
			case "FLAGS":
				add(fmt.Sprintf("FLAGS (%s)", strings.Join(msg.flags, " ")), nil)
			case "BODY":
				b := section(msg.body, it.section)
				key := "BODY[" + it.section + "]"
				if it.partial {
					key += fmt.Sprintf("<%d>", it.off)
					b = b[min(it.off, len(b)):]
					b = b[:min(it.n, len(b))]
				}
				add(key+" ", b)
			}
		}
	}
	s.printf("* %d FETCH (", seq)
	for i, p := range parts {
		if i > 0 {
			s.printf(" ")
		}
		s.printf("%s", p)
		if lits[i] != nil || strings.HasSuffix(p, " ") {
			s.printf("{%d}\r\n", len(lits[i]))
			s.out.Write(lits[i])
		}
	}
	s.printf(")\r\n")
}

// section cuts HEADER (with its blank line) or TEXT out of body.
func section(body []byte, sec string) []byte {
	if sec == "" {
		return body
	}
	end := len(body)
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	} else if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	if sec == "HEADER" {
		return body[:end]
	}
	return body[end:]
}

func (s *session) store(tag string, uid bool, args string) {
	m := reStore.FindStringSubmatch(args)
	if m == nil || m[2] == "-" || s.readOnly {
		s.printf("%s BAD STORE not supported here\r\n", tag)
		return
	}
	idx, ok := s.resolve(m[1], uid)
	if !ok {
		s.printf("%s BAD %sSTORE Failed to parse message set\r\n", tag, map[bool]string{true: "UID "}[uid])
		return
	}
	for _, i := range idx {
		msg := s.mb.find(s.view[i])
		if msg == nil {
			continue
		}
		for _, f := range strings.Fields(m[4]) {
			msg.add(f)
		}
		if m[3] == "" {
			s.printf("* %d FETCH (UID %d FLAGS (%s))\r\n", i+1, msg.uid, strings.Join(msg.flags, " "))
		}
	}
	if uid {
		s.notify()
	}
	s.printf("%s OK STORE completed\r\n", tag)
}

func (s *session) expunge(tag string, uid bool, args string) {
	if s.readOnly {
		s.printf("%s NO Mailbox is read-only\r\n", tag)
		return
	}
	var only map[uint32]bool
	if uid {
		idx, ok := s.resolve(args, true)
		if !ok {
			s.printf("%s BAD UID EXPUNGE Failed to parse message set\r\n", tag)
			return
		}
		only = map[uint32]bool{}
		for _, i := range idx {
			only[s.view[i]] = true
		}
	}
	var uids []uint32
	for _, m := range s.mb.msgs {
		if m.has(`\Deleted`) && (only == nil || only[m.uid]) {
			uids = append(uids, m.uid)
		}
	}
	s.mb.expungeLocked(s, uids)
	for _, u := range uids {
		if i := slices.Index(s.view, u); i >= 0 {
			s.printf("* %d %s\r\n", i+1, s.p.ExpungeWord)
			s.view = slices.Delete(s.view, i, i+1)
		}
	}
	s.printf("%s OK EXPUNGE completed\r\n", tag)
}

func (s *session) copy(tag string, move bool, args string) {
	set, target, _ := strings.Cut(args, " ")
	target = unquote(target)
	dst, exists := s.mb.folders[target]
	if !exists {
		s.printf("%s NO [TRYCREATE] Mailbox doesn't exist: %s\r\n", tag, target)
		return
	}
	if s.readOnly && move {
		s.printf("%s NO Mailbox is read-only\r\n", tag)
		return
	}
	idx, ok := s.resolve(set, true)
	if !ok {
		s.printf("%s BAD Failed to parse message set\r\n", tag)
		return
	}
	var moved []uint32
	for _, i := range idx {
		msg := s.mb.find(s.view[i])
		if msg == nil {
			continue
		}
		dst = append(dst, &message{uid: uint32(len(dst) + 1), body: msg.body, flags: slices.Clone(msg.flags)})
		moved = append(moved, msg.uid)
	}
	s.mb.folders[target] = dst
	if move {
		s.mb.expungeLocked(s, moved)
		for _, u := range moved {
			if i := slices.Index(s.view, u); i >= 0 {
				s.printf("* %d EXPUNGE\r\n", i+1)
				s.view = slices.Delete(s.view, i, i+1)
			}
		}
	}
	s.printf("%s OK COPY completed\r\n", tag)
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
		return u
	}
	return s
}
