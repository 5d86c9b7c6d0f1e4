package daemon

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/imapback"
)

// UIDL schemes, POP views, per-user policies ([[policy.override]]) and
// the keys of username modifiers ([pop3] user_modifiers, usermodifiers.go):
// the configuration side. imapback does the work and knows nothing of TOML.

// OverrideConfig is one [[policy.override]] table: users matching Match
// get the global [policy] with the keys given here replaced.
type OverrideConfig struct {
	Match          string       `toml:"match"`
	Delete         *string      `toml:"delete"`
	Seen           *string      `toml:"seen"`
	FallbackToFlag *bool        `toml:"fallback_to_flag"`
	UIDL           *string      `toml:"uidl"`
	UIDLRequired   *bool        `toml:"uidl_required"`
	HideRetrieved  *bool        `toml:"hide_retrieved"`
	MaxMessages    *int         `toml:"max_messages"`
	Window         *string      `toml:"window"`
	MaxAge         *AgeDuration `toml:"max_age"`
}

// AgeDuration is a duration written as a Go duration ("36h") or in days
// or weeks ("30d", "2w"); "0" is none.
type AgeDuration struct{ time.Duration }

var ageRE = regexp.MustCompile(`^([0-9]{1,5})([dw])$`)

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *AgeDuration) UnmarshalText(b []byte) error {
	s := string(b)
	if m := ageRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := 24 * time.Hour
		if m[2] == "w" {
			unit *= 7
		}
		d.Duration = time.Duration(n) * unit
		return nil
	}
	if s == "0" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid age %q (use e.g. \"30d\", \"2w\", \"36h\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d AgeDuration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

var (
	uidlSchemes   = []string{"dovecot", "emailid", "x-gm-msgid", "content"}
	windows       = []string{"newest", "oldest"}
	userModifiers = []string{"recent", "keep"}
)

// validateViews checks the keys of this file's features.
func (c *Config) validateViews() []error {
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	p := &c.Policy
	check(oneOf("policy.uidl", p.UIDL, uidlSchemes))
	check(validKeyword("policy.retrieved_keyword", p.RetrievedKeyword))
	if p.HideRetrieved && p.Delete == "keyword" && strings.EqualFold(p.RetrievedKeyword, p.Keyword) {
		check(invalid("policy.retrieved_keyword", "must differ from policy.keyword"))
	}
	check(oneOf("policy.window", p.Window, windows))
	check(nonNegative("policy.max_messages", p.MaxMessages))
	check(nonNegativeAge("policy.max_age", p.MaxAge))
	for i, o := range p.Override {
		key := func(k string) string { return fmt.Sprintf("policy.override[%d].%s", i+1, k) }
		if o.Match == "" {
			check(invalid(key("match"), "is required (a user name or glob)"))
		} else if _, err := path.Match(o.Match, ""); err != nil {
			check(invalid(key("match"), "%q is not a valid glob: %v", o.Match, err))
		} else {
			check(validText(key("match"), o.Match, 1, 1000))
		}
		if o.Delete != nil {
			check(oneOf(key("delete"), *o.Delete, deletePolicies))
		}
		if o.Seen != nil {
			check(oneOf(key("seen"), *o.Seen, seenPolicies))
		}
		if o.UIDL != nil {
			check(oneOf(key("uidl"), *o.UIDL, uidlSchemes))
		}
		if o.Window != nil {
			check(oneOf(key("window"), *o.Window, windows))
		}
		if o.MaxMessages != nil {
			check(nonNegative(key("max_messages"), *o.MaxMessages))
		}
		if o.MaxAge != nil {
			check(nonNegativeAge(key("max_age"), *o.MaxAge))
		}
	}

	q := &c.POP3
	seen := map[string]bool{}
	for _, m := range q.UserModifiers {
		check(oneOf("pop3.user_modifiers", m, userModifiers))
		if seen[m] {
			check(invalid("pop3.user_modifiers", "%q given twice", m))
		}
		seen[m] = true
	}
	if s := q.ModifierSeparator; len(s) != 1 || s[0] <= ' ' || s[0] >= 0x7f || s == "@" || s == "." ||
		(s[0] >= '0' && s[0] <= '9') || (s[0]|0x20 >= 'a' && s[0]|0x20 <= 'z') {
		check(invalid("pop3.modifier_separator", "%q must be one printable character other than a letter, digit, \"@\" or \".\"", s))
	}
	check(nonNegative("pop3.recent_max_messages", q.RecentMaxMessages))
	check(nonNegativeAge("pop3.recent_max_age", q.RecentMaxAge))
	if seen["recent"] && q.RecentMaxAge.Duration == 0 && q.RecentMaxMessages == 0 {
		check(invalid("pop3.recent_max_age", "the recent modifier needs recent_max_age or recent_max_messages"))
	}
	return errs
}

func nonNegative(key string, v int) error {
	if v < 0 {
		return invalid(key, "must not be negative")
	}
	return nil
}

func nonNegativeAge(key string, d AgeDuration) error {
	if d.Duration < 0 {
		return invalid(key, "must not be negative")
	}
	return nil
}

// overrideKeyRE matches the keys validateViews names for override tables.
var overrideKeyRE = regexp.MustCompile(`^policy\.override\[(\d+)\]\.(.+)$`)

// overrideKeyLine finds the line of "policy.override[N].key": the key in
// the Nth [[policy.override]] table, or that table's header line.
func overrideKeyLine(data []byte, dotted string) (int, bool) {
	m := overrideKeyRE.FindStringSubmatch(dotted)
	if m == nil {
		return 0, false
	}
	want, _ := strconv.Atoi(m[1])
	n, header := 0, 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			if n == want {
				break // the table ended without the key
			}
			if strings.Trim(strings.SplitN(line, "#", 2)[0], "[] \t") == "policy.override" && strings.HasPrefix(line, "[[") {
				n++
				if n == want {
					header = i + 1
				}
			}
			continue
		}
		if n == want {
			if k, _, ok := strings.Cut(line, "="); ok && strings.Trim(strings.TrimSpace(k), `"'`) == m[2] {
				return i + 1, true
			}
		}
	}
	return header, true
}

// basePolicy is the [policy] table as imapback's Policy.
func basePolicy(p PolicyConfig) imapback.Policy {
	return imapback.Policy{
		Delete:           imapback.DeletePolicy(p.Delete),
		Seen:             imapback.SeenPolicy(p.Seen),
		Trash:            p.Trash,
		Archive:          p.Archive,
		Keyword:          p.Keyword,
		FallbackToFlag:   p.FallbackToFlag,
		UIDL:             imapback.UIDLScheme(p.UIDL),
		UIDLFallback:     !p.UIDLRequired,
		HideRetrieved:    p.HideRetrieved,
		RetrievedKeyword: p.RetrievedKeyword,
		MaxMessages:      p.MaxMessages,
		Window:           imapback.Window(p.Window),
		MaxAge:           p.MaxAge.Duration,
	}
}

// policyOverrides turns [[policy.override]] into imapback's list, each a
// complete policy: the global one with the given keys replaced.
func policyOverrides(p PolicyConfig) []imapback.PolicyOverride {
	var out []imapback.PolicyOverride
	for _, o := range p.Override {
		q := basePolicy(p)
		if o.Delete != nil {
			q.Delete = imapback.DeletePolicy(*o.Delete)
		}
		if o.Seen != nil {
			q.Seen = imapback.SeenPolicy(*o.Seen)
		}
		if o.FallbackToFlag != nil {
			q.FallbackToFlag = *o.FallbackToFlag
		}
		if o.UIDL != nil {
			q.UIDL = imapback.UIDLScheme(*o.UIDL)
		}
		if o.UIDLRequired != nil {
			q.UIDLFallback = !*o.UIDLRequired
		}
		if o.HideRetrieved != nil {
			q.HideRetrieved = *o.HideRetrieved
		}
		if o.MaxMessages != nil {
			q.MaxMessages = *o.MaxMessages
		}
		if o.Window != nil {
			q.Window = imapback.Window(*o.Window)
		}
		if o.MaxAge != nil {
			q.MaxAge = o.MaxAge.Duration
		}
		out = append(out, imapback.PolicyOverride{Match: o.Match, Policy: q})
	}
	return out
}
