package daemon

import (
	"reflect"
	"strings"

	"github.com/popbridge/popbridge/internal/enum"
)

// The daemon's own keys with a fixed set of values. Like imapback's
// policy types, each lists its values once and implements
// encoding.TextUnmarshaler, so the decoder refuses a bad value at its key
// and line; Check finds the same in a Config built in code (Validate).

// PlaintextPolicy is [pop3] allow_plaintext: where passwords may be sent
// without TLS.
type PlaintextPolicy string

const (
	PlaintextLoopback PlaintextPolicy = "loopback"
	PlaintextAlways   PlaintextPolicy = "always"
	PlaintextNever    PlaintextPolicy = "never"
)

// UserModifier is one of [pop3] user_modifiers (overrides.go).
type UserModifier string

const (
	ModifierRecent UserModifier = "recent"
	ModifierKeep   UserModifier = "keep"
)

// LogLevel is [log] level.
type LogLevel string

// LogFormat is [log] format.
type LogFormat string

var (
	plaintextPolicies = []PlaintextPolicy{PlaintextLoopback, PlaintextAlways, PlaintextNever}
	userModifiers     = []UserModifier{ModifierRecent, ModifierKeep}
	logLevels         = []LogLevel{"debug", "info", "warn", "error"}
	logFormats        = []LogFormat{"text", "json"}
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PlaintextPolicy) UnmarshalText(b []byte) error { return enum.Parse(p, b, plaintextPolicies) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *UserModifier) UnmarshalText(b []byte) error { return enum.Parse(m, b, userModifiers) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LogLevel) UnmarshalText(b []byte) error { return enum.Parse(l, b, logLevels) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error { return enum.Parse(f, b, logFormats) }

// Check reports whether p is one of the allowed values.
func (p PlaintextPolicy) Check() error { return enum.Check(p, plaintextPolicies) }

// Check reports whether m is one of the allowed values.
func (m UserModifier) Check() error { return enum.Check(m, userModifiers) }

// Check reports whether l is one of the allowed values.
func (l LogLevel) Check() error { return enum.Check(l, logLevels) }

// Check reports whether f is one of the allowed values.
func (f LogFormat) Check() error { return enum.Check(f, logFormats) }

// checker is a value that knows its allowed values.
type checker interface{ Check() error }

// checkValues checks every value under v (a config struct) that knows
// its allowed values, naming it by its dotted key. skip, if set, leaves
// out a key. Unset ("") values are Validate's to judge.
func checkValues(v reflect.Value, prefix string, skip func(key string, v reflect.Value) bool) []error {
	var errs []error
	walkKeys(v, prefix, func(key string, f reflect.Value) {
		if skip != nil && skip(key, f) {
			return
		}
		vals := []reflect.Value{f}
		if f.Kind() == reflect.Slice {
			vals = nil
			for i := range f.Len() {
				vals = append(vals, f.Index(i))
			}
		}
		for _, e := range vals {
			if c, ok := e.Interface().(checker); ok && !e.IsZero() {
				if err := c.Check(); err != nil {
					errs = append(errs, invalid(key, "%v", err))
				}
			}
		}
	})
	return errs
}

// walkKeys calls fn for every key of a config struct: its fields with a
// toml tag, by dotted key; embedded structs give their keys to the table
// that embeds them. Tables are walked, arrays of tables are not.
func walkKeys(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			walkKeys(v.Field(i), prefix, fn)
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.NumField() > 0 && !isValue(f) {
			walkKeys(f, prefix+name+".", fn)
			continue
		}
		fn(prefix+name, f)
	}
}

// isValue reports whether a struct is one value (Duration), not a table.
func isValue(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error })
	return ok
}
