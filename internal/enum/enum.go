// Package enum checks configuration values of string types with a fixed
// set of allowed values, listed once per type.
package enum

import (
	"fmt"
	"slices"
	"strings"
)

// Parse sets *dst to b if b is one of allowed; for an UnmarshalText, so
// a configuration file decoder refuses a bad value at its key and line.
func Parse[T ~string](dst *T, b []byte, allowed []T) error {
	v := T(b)
	if err := Check(v, allowed); err != nil {
		return err
	}
	*dst = v
	return nil
}

// Check reports whether v is one of allowed. Its message is what a
// config file's author reads after the key:
// `"shred" is not one of flag | keyword | ...`.
func Check[T ~string](v T, allowed []T) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(names, " | "))
}
