package daemon

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// README.md's configuration tables are the admin's reference: each
// "| key | default | meaning |" table under a "### `[table]`" heading
// lists that table's keys. A default cell that starts with a code span
// is a TOML value; one that does not ("none for demo ...") describes an
// unset default.

var (
	tableHeadingRE = regexp.MustCompile("^### `\\[([a-z0-9_.]+)\\]`")
	codeSpanRE     = regexp.MustCompile("`([^`]*)`")
)

type readmeRow struct {
	line     int
	defaults string // the default cell
}

// readmeConfigRows returns README.md's configuration rows by dotted key,
// and the keys named in the sentence saying what an override may set.
func readmeConfigRows(t *testing.T) (rows map[string]readmeRow, overridable []string) {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows = map[string]readmeRow{}
	table, inKeys := "", false
	sc := bufio.NewScanner(f)
	var overrideText strings.Builder
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := tableHeadingRE.FindStringSubmatch(line); m != nil {
			table, inKeys = m[1], false
			continue
		}
		if strings.HasPrefix(line, "## ") {
			table, inKeys = "", false
		}
		if strings.HasPrefix(line, "An override may set ") || overrideText.Len() > 0 && !strings.Contains(overrideText.String(), "the rest") {
			overrideText.WriteString(line + " ")
		}
		switch {
		case table == "":
		case line == "| key | default | meaning |":
			inKeys = true
		case inKeys && strings.HasPrefix(line, "|---"):
		case inKeys && strings.HasPrefix(line, "|"):
			cells := strings.Split(line, "|")
			if len(cells) < 4 {
				t.Fatalf("README.md:%d: a row without key and default", n)
			}
			for _, k := range codeSpans(cells[1]) {
				key := table + "." + k
				if strings.HasPrefix(k, "[[") {
					key = strings.Trim(k, "[]")
				}
				if _, dup := rows[key]; dup {
					t.Errorf("README.md:%d: %s documented twice", n, key)
				}
				rows[key] = readmeRow{line: n, defaults: strings.TrimSpace(cells[2])}
			}
		default:
			inKeys = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	s, _, _ := strings.Cut(overrideText.String(), "the rest")
	return rows, codeSpans(s)
}

func codeSpans(s string) []string {
	var out []string
	for _, m := range codeSpanRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestREADMEConfigTablesMatchCode: every key of Config (its toml tags)
// has a README row giving defaultConfig's default, and every README row
// is a key of Config.
func TestREADMEConfigTablesMatchCode(t *testing.T) {
	rows, overridable := readmeConfigRows(t)
	if len(rows) < 50 {
		t.Fatalf("found %d rows in README.md's configuration tables, want every key (over 50)", len(rows))
	}
	cfg := defaultConfig()
	code := map[string]reflect.Value{}
	walkKeys(reflect.ValueOf(&cfg).Elem(), "", func(key string, v reflect.Value) { code[key] = v })

	// Rows naming several keys ("`cert`, `key`") give one default for
	// all, or one each in order.
	byRow := map[int][]string{}
	for key, r := range rows {
		byRow[r.line] = append(byRow[r.line], key)
	}
	for key, v := range code {
		r, ok := rows[key]
		if !ok {
			t.Errorf("%s (default %s): no row in README.md's configuration tables", key, show(v))
			continue
		}
		if !strings.HasPrefix(r.defaults, "`") {
			// Described, not a value: it must be the unset zero value.
			if !v.IsZero() {
				t.Errorf("README.md:%d: %s: default %q is prose, but the code's default is %s", r.line, key, r.defaults, show(v))
			}
			continue
		}
		spans := codeSpans(r.defaults)
		want := spans[0]
		if keys := byRow[r.line]; len(keys) > 1 && len(spans) == len(keys) {
			// The row's keys, in the order README.md lists them.
			order := codeSpans(strings.Split(readmeLine(t, r.line), "|")[1])
			want = spans[slices.Index(order, key[strings.LastIndexByte(key, '.')+1:])]
		}
		got, err := tomlValue(want, v.Type())
		if err != nil {
			t.Errorf("README.md:%d: %s: default `%s` is not a TOML value of the key's type: %v", r.line, key, want, err)
			continue
		}
		if !sameValue(got, v) {
			t.Errorf("README.md:%d: %s: README default `%s`, code default %s", r.line, key, want, show(v))
		}
	}
	for key, r := range rows {
		if _, ok := code[key]; !ok {
			t.Errorf("README.md:%d: %s is documented but is no key of Config", r.line, key)
		}
	}

	// The keys an override may set are UserPolicy's.
	var user []string
	walkKeys(reflect.ValueOf(&UserPolicy{}).Elem(), "", func(key string, _ reflect.Value) { user = append(user, key) })
	slices.Sort(user)
	slices.Sort(overridable)
	if !slices.Equal(overridable, user) {
		t.Errorf("README.md says an override may set %q; UserPolicy holds %q", overridable, user)
	}
}

func readmeLine(t *testing.T, n int) string {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")[n-1]
}

// tomlValue decodes a TOML value as the type of a key.
func tomlValue(s string, typ reflect.Type) (reflect.Value, error) {
	holder := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: typ, Tag: `toml:"v"`}}))
	if _, err := toml.Decode("v = "+s, holder.Interface()); err != nil {
		return reflect.Value{}, err
	}
	return holder.Elem().Field(0), nil
}

// sameValue compares two values of a key; an empty list is nil.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// show writes a default as README.md would.
func show(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	if m, ok := v.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		b, _ := m.MarshalText()
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprint(v.Interface())
}
