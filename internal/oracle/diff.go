package oracle

import (
	"fmt"
	"slices"
	"strings"
)

// Change is one message present before and after whose state differs.
type Change struct {
	Before, After Msg
}

// Diff is what changed in a mailbox between two states.
type Diff struct {
	Removed []Msg    // present before, gone after
	Added   []Msg    // new UIDs
	Changed []Change // same UID, other flags, size or bytes
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d.Removed)+len(d.Added)+len(d.Changed) == 0 }

// String lists the changes, one per line.
func (d Diff) String() string {
	var b strings.Builder
	for _, m := range d.Removed {
		fmt.Fprintf(&b, "- %v\n", m)
	}
	for _, m := range d.Added {
		fmt.Fprintf(&b, "+ %v\n", m)
	}
	for _, c := range d.Changed {
		fmt.Fprintf(&b, "~ %v\n  -> %v\n", c.Before, c.After)
	}
	if b.Len() == 0 {
		return "(no change)\n"
	}
	return b.String()
}

// Compare returns what changed from before to after (matched by UID).
func Compare(before, after []Msg) Diff {
	var d Diff
	am := byUID(after)
	bm := byUID(before)
	for _, b := range before {
		a, ok := am[b.UID]
		switch {
		case !ok:
			d.Removed = append(d.Removed, b)
		case a.String() != b.String() || a.SHA256 != b.SHA256:
			d.Changed = append(d.Changed, Change{b, a})
		}
	}
	for _, a := range after {
		if _, ok := bm[a.UID]; !ok {
			d.Added = append(d.Added, a)
		}
	}
	return d
}

func byUID(l []Msg) map[uint32]Msg {
	m := make(map[uint32]Msg, len(l))
	for _, x := range l {
		m[x.UID] = x
	}
	return m
}

// Rules say which changes POP3 sessions were allowed to make.
type Rules struct {
	// Policy is the delete policy: flag, keyword, trash, archive, expunge
	// or keep.
	Policy string
	// Keyword is the keyword policy's flag (default $POP3Deleted).
	Keyword string
	// Deleted are the UIDs DELE'd in sessions that reached QUIT.
	Deleted []uint32
	// Retrieved are the UIDs fully RETR'd in sessions that reached QUIT:
	// they may gain \Seen.
	Retrieved []uint32
	// AllowNew accepts new UIDs (mail delivered meanwhile).
	AllowNew bool
}

// Check reports, as an error listing every violation, changes outside
// the rules: a message removed that was not deleted (or under a policy
// that never removes), a message whose bytes changed, a flag removed, or
// a flag added that neither the delete policy (on a deleted UID) nor
// \Seen (on a retrieved UID) explains. A partial application (some
// deleted UIDs untouched, or only \Deleted stored before a failed
// expunge) is within the rules: Check is about "nothing else".
func Check(before, after []Msg, r Rules) error {
	d := Compare(before, after)
	deleted := set(r.Deleted)
	retrieved := set(r.Retrieved)
	kw := r.Keyword
	if kw == "" {
		kw = "$POP3Deleted"
	}
	var bad []string
	removes := r.Policy == "expunge" || r.Policy == "trash" || r.Policy == "archive"
	for _, m := range d.Removed {
		if !deleted[m.UID] || !removes {
			bad = append(bad, fmt.Sprintf("removed without a DELE allowing it (policy %s): %v", r.Policy, m))
		}
	}
	if !r.AllowNew {
		for _, m := range d.Added {
			bad = append(bad, fmt.Sprintf("new message: %v", m))
		}
	}
	for _, c := range d.Changed {
		if c.Before.SHA256 != c.After.SHA256 || c.Before.Size != c.After.Size {
			bad = append(bad, fmt.Sprintf("bytes changed: %v -> %v", c.Before, c.After))
			continue
		}
		for _, f := range c.Before.Flags {
			if !slices.Contains(c.After.Flags, f) {
				bad = append(bad, fmt.Sprintf("flag %s removed: %v -> %v", f, c.Before, c.After))
			}
		}
		for _, f := range c.After.Flags {
			if slices.Contains(c.Before.Flags, f) {
				continue
			}
			ok := false
			switch {
			case strings.EqualFold(f, `\Seen`) && retrieved[c.After.UID]:
				ok = true
			case deleted[c.After.UID] && strings.EqualFold(f, `\Deleted`):
				// flag and expunge store it; trash and archive do on the
				// COPY path before UID EXPUNGE.
				ok = r.Policy == "flag" || removes
			case deleted[c.After.UID] && strings.EqualFold(f, kw):
				ok = r.Policy == "keyword"
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("flag %s added outside the rules: %v -> %v", f, c.Before, c.After))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("oracle: %d change(s) outside the rules:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}

// CheckUnchanged reports any difference at all.
func CheckUnchanged(before, after []Msg) error {
	if d := Compare(before, after); !d.Empty() {
		return fmt.Errorf("oracle: mailbox changed:\n%s", d)
	}
	return nil
}

// CheckApplied reports deleted UIDs that did not get the policy's full
// effect: still present under expunge, trash and archive; lacking
// \Deleted (flag) or the keyword (keyword).
func CheckApplied(after []Msg, r Rules) error {
	am := byUID(after)
	kw := r.Keyword
	if kw == "" {
		kw = "$POP3Deleted"
	}
	var bad []string
	for _, u := range r.Deleted {
		m, present := am[u]
		switch r.Policy {
		case "expunge", "trash", "archive":
			if present {
				bad = append(bad, fmt.Sprintf("UID %d still present: %v", u, m))
			}
		case "flag":
			if present && !slices.Contains(m.Flags, `\Deleted`) {
				bad = append(bad, fmt.Sprintf("UID %d lacks \\Deleted: %v", u, m))
			}
		case "keyword":
			if present && !slices.Contains(m.Flags, kw) {
				bad = append(bad, fmt.Sprintf("UID %d lacks %s: %v", u, kw, m))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("oracle: delete policy %s not applied:\n%s", r.Policy, strings.Join(bad, "\n"))
	}
	return nil
}

// CheckCopied reports removed messages whose bytes are not in target
// (the trash or archive mailbox): under trash and archive no message may
// be expunged before its copy exists.
func CheckCopied(before, after, target []Msg) error {
	have := map[string]int{}
	for _, m := range target {
		have[m.SHA256]++
	}
	var bad []string
	for _, m := range Compare(before, after).Removed {
		if have[m.SHA256] == 0 {
			bad = append(bad, m.String())
			continue
		}
		have[m.SHA256]--
	}
	if len(bad) > 0 {
		return fmt.Errorf("oracle: removed without a copy in the target mailbox:\n%s", strings.Join(bad, "\n"))
	}
	return nil
}

func set(l []uint32) map[uint32]bool {
	m := make(map[uint32]bool, len(l))
	for _, x := range l {
		m[x] = true
	}
	return m
}
