package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
)

// TestDefaultsAreThePackagesDefaults: [policy] and [limits] defaults are
// imapback's and pop3front's own.
func TestDefaultsAreThePackagesDefaults(t *testing.T) {
	d := defaultConfig()
	if got, want := basePolicy(d.Policy), imapback.DefaultPolicy(); got != want {
		t.Errorf("default [policy] = %+v, want imapback.DefaultPolicy() %+v", got, want)
	}
	if got, want := d.Limits.pop3(), pop3front.DefaultLimits(); got != want {
		t.Errorf("default [limits] = %+v, want pop3front.DefaultLimits() %+v", got, want)
	}
}

// TestOverrideTablesDecodeOntoPolicy: an override table replaces only
// the keys it gives; the others are [policy]'s, whatever their order in
// the file.
func TestOverrideTablesDecodeOntoPolicy(t *testing.T) {
	cfg, err := parseConfig("x.toml", []byte(`
[[policy.override]]
match = "a"
uidl_required = true
seen = "quit"

[policy]
seen = "never"
uidl = "content"
uidl_required = false
max_age = "2w"
fallback_to_flag = true
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policy.Override) != 1 {
		t.Fatalf("%d overrides, want 1", len(cfg.Policy.Override))
	}
	o := cfg.Policy.Override[0]
	want := cfg.Policy.UserPolicy
	want.UIDLRequired, want.Seen = true, imapback.SeenQuit
	if o.UserPolicy != want || o.Match != "a" {
		t.Errorf("override = %+v, want %+v", o.UserPolicy, want)
	}
	if o.MaxAge.Duration != 14*24*time.Hour || !o.FallbackToFlag || o.UIDL != imapback.UIDLContent {
		t.Errorf("override lost [policy]'s keys: %+v", o.UserPolicy)
	}
	q := policyOverrides(cfg.Policy)[0].Policy
	if !q.UIDLRequired || q.Seen != imapback.SeenQuit || q.Trash != "Trash" {
		t.Errorf("imapback override = %+v", q)
	}
}

// TestConfigReportsEveryBadValue: the decoder refuses a value at its
// line; every refused value is reported, in file order, with Validate's
// problems.
func TestConfigReportsEveryBadValue(t *testing.T) {
	_, err := parseConfig("x.toml", []byte(`[log]
level = "loud"
[pop3]
allow_plaintext = "sometimes"
user_modifiers = ["keep", "nope"]
[policy]
max_messages = -1
[[policy.override]]
match = "a"
window = "middle"
[[policy.override]]
match = "b"
window = "sideways"
max_age = "soon"
`))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`x.toml:2: log.level: "loud" is not one of debug | info | warn | error`,
		`x.toml:4: pop3.allow_plaintext: "sometimes" is not one of loopback | always | never`,
		`x.toml:5: pop3.user_modifiers: "nope" is not one of recent | keep`,
		`x.toml:10: policy.override[1].window: "middle" is not one of newest | oldest`,
		`x.toml:13: policy.override[2].window: "sideways" is not one of newest | oldest`,
		`x.toml:14: policy.override[2].max_age: invalid age "soon"`,
		`x.toml:7: policy.max_messages: must not be negative`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want %q", i+1, got[i], want[i])
		}
	}
}

// TestValidateChecksValuesBuiltInCode: a Config built in code is checked
// against the same lists as a file.
func TestValidateChecksValuesBuiltInCode(t *testing.T) {
	cfg := defaultConfig()
	cfg.Policy.Delete = "shred"
	cfg.Log.Format = "xml"
	cfg.POP3.UserModifiers = []UserModifier{"keep", "old"}
	o := OverrideConfig{Match: "a", UserPolicy: cfg.Policy.UserPolicy}
	o.Window = "middle"
	cfg.Policy.Override = []OverrideConfig{o}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		`policy.delete: "shred" is not one of`,
		`log.format: "xml" is not one of text | json`,
		`pop3.user_modifiers: "old" is not one of recent | keep`,
		`policy.override[1].window: "middle" is not one of newest | oldest`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	// The override's delete is [policy]'s: reported once, there.
	if n := strings.Count(err.Error(), `"shred"`); n != 1 {
		t.Errorf("%q reported %d times, want once:\n%s", "shred", n, err)
	}
}

// TestConfigRefusedMultilineValue: a refused value spanning lines cannot
// be blanked; its error is still reported, and no made-up syntax error.
func TestConfigRefusedMultilineValue(t *testing.T) {
	for range 5 { // the decoder's order varies
		_, err := parseConfig("x.toml", []byte("[pop3]\nuser_modifiers = [\n  \"nope\",\n]\n"))
		if err == nil {
			t.Fatal("accepted")
		}
		if got, want := err.Error(), `x.toml:2: pop3.user_modifiers: "nope" is not one of recent | keep`; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	}
}
