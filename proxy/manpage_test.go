package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestFlagsDocumented: every command-line flag is in the man page the
// Debian package installs and in the README, and -h exits 0.
func TestFlagsDocumented(t *testing.T) {
	man, err := os.ReadFile("../deploy/package/popbridge.8")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ := newFlagSet(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		// troff spells a literal hyphen \-.
		if troff := `\-` + strings.ReplaceAll(f.Name, "-", `\-`); !strings.Contains(string(man), troff) {
			t.Errorf("popbridge.8 does not document -%s (as %s)", f.Name, troff)
		}
		if !strings.Contains(string(readme), "-"+f.Name+" ") && !strings.Contains(string(readme), "-"+f.Name+"`") {
			t.Errorf("README.md does not document -%s", f.Name)
		}
	})
	if n == 0 {
		t.Fatal("no flags declared")
	}
	var usage strings.Builder
	if code := run([]string{"-h"}, &usage); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if !strings.HasPrefix(usage.String(), "Usage: popbridge ") {
		t.Errorf("-h prints %q, want a usage line", usage.String())
	}
}
