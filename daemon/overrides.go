package daemon

import (
	"fmt"
	"path"
	"reflect"
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
// get the global [policy] with the keys given here replaced. A file's
// tables are decoded onto copies of [policy]'s UserPolicy
// (decodeOverrides); in code, start from cfg.Policy.UserPolicy.
type OverrideConfig struct {
	Match string `toml:"match"`
	UserPolicy
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

// validateViews checks the keys of this file's features.
func (c *Config) validateViews() []error {
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	p := &c.Policy
	check(validKeyword("policy.retrieved_keyword", p.RetrievedKeyword))
	if p.HideRetrieved && p.Delete == "keyword" && strings.EqualFold(p.RetrievedKeyword, p.Keyword) {
		check(invalid("policy.retrieved_keyword", "must differ from policy.keyword"))
	}
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
		// A key equal to [policy]'s came from it, or is judged there.
		base := map[string]reflect.Value{}
		walkKeys(reflect.ValueOf(&p.UserPolicy).Elem(), key(""), func(k string, v reflect.Value) { base[k] = v })
		errs = append(errs, checkValues(reflect.ValueOf(&o.UserPolicy).Elem(), key(""), func(k string, v reflect.Value) bool {
			return v.Equal(base[k])
		})...)
		if o.MaxMessages != p.MaxMessages {
			check(nonNegative(key("max_messages"), o.MaxMessages))
		}
		if o.MaxAge != p.MaxAge {
			check(nonNegativeAge(key("max_age"), o.MaxAge))
		}
	}

	q := &c.POP3
	seen := map[UserModifier]bool{}
	for _, m := range q.UserModifiers {
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
	if seen[ModifierRecent] && q.RecentMaxAge.Duration == 0 && q.RecentMaxMessages == 0 {
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
	q := imapback.Policy{
		Trash:            p.Trash,
		Archive:          p.Archive,
		Keyword:          p.Keyword,
		RetrievedKeyword: p.RetrievedKeyword,
	}
	p.UserPolicy.applyTo(&q)
	return q
}

// policyConfig is the reverse of basePolicy.
func policyConfig(q imapback.Policy) PolicyConfig {
	return PolicyConfig{
		UserPolicy: UserPolicy{
			Delete:         q.Delete,
			Seen:           q.Seen,
			FallbackToFlag: q.FallbackToFlag,
			UIDL:           q.UIDL,
			UIDLRequired:   q.UIDLRequired,
			HideRetrieved:  q.HideRetrieved,
			MaxMessages:    q.MaxMessages,
			Window:         q.Window,
			MaxAge:         AgeDuration{q.MaxAge},
		},
		Trash:            q.Trash,
		Archive:          q.Archive,
		Keyword:          q.Keyword,
		RetrievedKeyword: q.RetrievedKeyword,
	}
}

// applyTo sets q's fields that u holds.
func (u UserPolicy) applyTo(q *imapback.Policy) {
	q.Delete = u.Delete
	q.Seen = u.Seen
	q.FallbackToFlag = u.FallbackToFlag
	q.UIDL = u.UIDL
	q.UIDLRequired = u.UIDLRequired
	q.HideRetrieved = u.HideRetrieved
	q.MaxMessages = u.MaxMessages
	q.Window = u.Window
	q.MaxAge = u.MaxAge.Duration
}

// policyOverrides turns [[policy.override]] into imapback's list, each a
// complete policy: the global one with the override's UserPolicy.
func policyOverrides(p PolicyConfig) []imapback.PolicyOverride {
	var out []imapback.PolicyOverride
	for _, o := range p.Override {
		q := basePolicy(p)
		o.UserPolicy.applyTo(&q)
		out = append(out, imapback.PolicyOverride{Match: o.Match, Policy: q})
	}
	return out
}
