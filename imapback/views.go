package imapback

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// POP views, per-user policies and per-login options.
//
// A view narrows what a POP3 session lists, without changing the mailbox:
//
//   - HideRetrieved: messages RETR'd by an earlier POP3 session that ended
//     with QUIT carry Policy.RetrievedKeyword ($POP3Retrieved) and are not
//     listed; other IMAP clients (phones) still see them, untouched. The
//     keyword is stored at QUIT, like \Seen, and only for messages fully
//     sent by RETR (Gmail's "normal mode": several POP devices each take
//     new mail once);
//   - MaxAge: only messages whose INTERNALDATE is not older than MaxAge
//     (IMAP SEARCH SINCE: whole days, in the server's time zone);
//   - MaxMessages: at most that many messages, the newest (highest UIDs)
//     or, with Window "oldest", the oldest.
//
// A view is applied in the snapshot with one UID SEARCH (NOT DELETED,
// UNKEYWORD ..., SINCE ...), then a UID FETCH of only the chosen UIDs, so
// a huge mailbox is never fetched whole.

// Window says which end of the mailbox MaxMessages keeps.
type Window string

const (
	WindowNewest Window = "newest" // the MaxMessages highest UIDs (default)
	WindowOldest Window = "oldest" // the MaxMessages lowest UIDs
)

// DefaultRetrievedKeyword marks messages RETR'd by POP3 under HideRetrieved.
const DefaultRetrievedKeyword = "$POP3Retrieved"

// PolicyOverride gives users matching Match their own Policy.
type PolicyOverride struct {
	// Match is a user name or a path.Match glob ("scan*@example.org"),
	// compared case-insensitively with the mailbox owner's name (the
	// authorization identity of a master-user login, else the login
	// name).
	Match  string
	Policy Policy // complete: defaults are filled in as for Config.Policy
}

// PolicyFor returns the policy for user: that of the first override
// whose Match matches, else Config.Policy.
func (b *Backend) PolicyFor(user string) Policy {
	u := strings.ToLower(user)
	for _, o := range b.cfg.Overrides {
		if ok, _ := path.Match(strings.ToLower(o.Match), u); ok {
			return o.Policy
		}
	}
	return b.cfg.Policy
}

// owner is the user whose mailbox a login opens.
func owner(req *pop3front.LoginRequest) string {
	if req.AuthzID != "" {
		return req.AuthzID
	}
	return req.Username
}

// sessionPolicy is the policy a login starts with.
func (b *Backend) sessionPolicy(req *pop3front.LoginRequest, opts LoginOptions) Policy {
	if opts.Policy != nil {
		return *opts.Policy
	}
	return b.PolicyFor(owner(req))
}

// finishConfig validates and completes what New's own checks do not
// cover: the UIDL and view fields of Config.Policy and every override.
func finishConfig(cfg *Config) error {
	if err := finishViews(&cfg.Policy); err != nil {
		return err
	}
	for i := range cfg.Overrides {
		o := &cfg.Overrides[i]
		if _, err := path.Match(o.Match, ""); err != nil || o.Match == "" {
			return fmt.Errorf("imapback: override %d: match %q: not a user name or glob", i+1, o.Match)
		}
		// New's checks and defaults, reused: a backend that is never
		// used validates the override's policy.
		sub, err := New(Config{Address: cfg.Address, Security: SecurityNone, Policy: o.Policy, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return fmt.Errorf("imapback: override %d (%s): %w", i+1, o.Match, err)
		}
		o.Policy = sub.cfg.Policy
	}
	return nil
}

// normalize validates and completes a policy given at login.
func (b *Backend) normalize(p Policy) (Policy, error) {
	sub, err := New(Config{Address: b.cfg.Address, Security: SecurityNone, Policy: p, Logger: b.log})
	if err != nil {
		return Policy{}, err
	}
	return sub.cfg.Policy, nil
}

func finishViews(p *Policy) error {
	def := DefaultPolicy()
	orDefault(&p.UIDL, def.UIDL)
	if err := p.UIDL.Check(); err != nil {
		return fmt.Errorf("imapback: uidl: %w", err)
	}
	orDefault(&p.RetrievedKeyword, def.RetrievedKeyword)
	if !validKeyword(p.RetrievedKeyword) {
		return fmt.Errorf("imapback: retrieved keyword %q: must be an IMAP atom not starting with a backslash", p.RetrievedKeyword)
	}
	if p.HideRetrieved && strings.EqualFold(p.RetrievedKeyword, p.Keyword) && p.Delete == DeleteKeyword {
		return errors.New("imapback: the retrieved keyword must differ from the delete keyword")
	}
	orDefault(&p.Window, def.Window)
	if err := p.Window.Check(); err != nil {
		return fmt.Errorf("imapback: window: %w", err)
	}
	if p.MaxMessages < 0 {
		return fmt.Errorf("imapback: max messages %d: must not be negative", p.MaxMessages)
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("imapback: max age %v: must not be negative", p.MaxAge)
	}
	return nil
}

// viewActive reports whether the snapshot narrows the listing.
func (p *Policy) viewActive() bool {
	return p.HideRetrieved || p.MaxMessages > 0 || p.MaxAge > 0
}

// maxSetRanges bounds the UID set sent in one UID FETCH: beyond it the
// snapshot fetches the span of the chosen UIDs and drops the others, so a
// command line stays well below servers' limits (Dovecot: 64 KB).
const maxSetRanges = 500

// viewSet runs the view's UID SEARCH and returns the UID set to fetch and
// the chosen UIDs (nil: every fetched message is wanted). Callers run it
// inside m.do.
func (m *maildrop) viewSet() (set imap.UIDSet, keep map[imap.UID]bool, err error) {
	p := &m.policy
	crit := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	if p.Delete == DeleteKeyword {
		crit.NotFlag = append(crit.NotFlag, imap.Flag(p.Keyword))
	}
	if p.HideRetrieved {
		crit.NotFlag = append(crit.NotFlag, imap.Flag(p.RetrievedKeyword))
	}
	if p.MaxAge > 0 {
		crit.Since = time.Now().Add(-p.MaxAge)
	}
	data, err := m.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return nil, nil, fmt.Errorf("UID SEARCH: %w", err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	uids = slices.Compact(uids)
	m.matched = len(uids)
	if n := p.MaxMessages; n > 0 && len(uids) > n {
		if p.Window == WindowOldest {
			uids = uids[:n]
		} else {
			uids = uids[len(uids)-n:]
		}
	}
	m.chosen = len(uids)
	if len(uids) == 0 {
		return nil, nil, nil
	}
	for _, u := range uids {
		set.AddNum(u)
	}
	if len(set) <= maxSetRanges {
		return set, nil, nil
	}
	keep = make(map[imap.UID]bool, len(uids))
	for _, u := range uids {
		keep[u] = true
	}
	return imap.UIDSet{imap.UIDRange{Start: uids[0], Stop: uids[len(uids)-1]}}, keep, nil
}

// LogAttrs describes the session for the POP3 session's end-of-session
// log line (pop3front.SessionInfo).
func (m *maildrop) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("uidl_scheme", string(m.uidlScheme)),
		slog.String("delete_policy", string(m.policy.Delete)),
	}
	if m.multiFolder() {
		attrs = append(attrs, slog.String("folders", m.foldersAttr())) // folders.go
	}
	if m.policy.viewActive() {
		view := []string{}
		if m.policy.HideRetrieved {
			view = append(view, "hide_retrieved")
		}
		if m.policy.MaxAge > 0 {
			view = append(view, "max_age="+m.policy.MaxAge.String())
		}
		if m.policy.MaxMessages > 0 {
			view = append(view, fmt.Sprintf("max_messages=%d/%s", m.policy.MaxMessages, m.policy.Window))
		}
		attrs = append(attrs, slog.String("view", strings.Join(view, ",")), slog.Int("view_matched", m.matched))
	}
	return append(attrs, m.extraAttrs...)
}

var _ pop3front.SessionInfo = (*maildrop)(nil)

// retrievedFlags are what QUIT stores on messages fully sent by RETR:
// \Seen under seen=quit, the retrieved keyword under HideRetrieved.
func (m *maildrop) retrievedFlags() []imap.Flag {
	var flags []imap.Flag
	if m.policy.Seen == SeenQuit {
		flags = append(flags, imap.FlagSeen)
	}
	if m.policy.HideRetrieved {
		flags = append(flags, imap.Flag(m.policy.RetrievedKeyword))
	}
	return flags
}
