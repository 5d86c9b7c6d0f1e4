package doccheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// repoRoot walks up from the package directory to the directory holding
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = up
	}
}

// TestReferencesResolve fails, listing file:line, for every comment or
// document of the repository that names a missing file, a path outside
// the repository, an undefined invariant or an issue number.
func TestReferencesResolve(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, DesignDoc)); err != nil {
		t.Fatalf("%s: %v (it defines the invariants comments cite)", DesignDoc, err)
	}
	found, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
	if len(found) > 0 {
		t.Logf("got %d unresolved references, want 0", len(found))
	}
}

// TestCheckFindsPlanted runs the check over a small tree with one bad
// reference of each kind planted in it, and with good ones beside them.
func TestCheckFindsPlanted(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.test/x\n",
		"docs/design.md": "# Design\n\n## Invariants\n1. **One.** x\n2. **Two.** y\n\n" +
			"## Other\n3. not an invariant\n",
		"docs/servers.md": "See `docs/design.md` and design.md, invariants 1 and 2.\n" +
			"Also docs/missing.md and invariant 3.\n",
		"pkg/a.go": "// Package pkg: see b.go, pkg/b.go and docs/design.md, invariant 2.\n" +
			"package pkg\n\n" +
			"// Wrong: gone.go, docs/nothere.md, ../" + "shared/docs/x.md.\n" +
			"// Iss" + "ue 12 asked for it; see #4 " + "(below) and the issue's target.\n" +
			"var s = \"docs/ignored-in-strings.md\"\n",
		"pkg/b.go":      "package pkg\n\n// https://example.com/a/b.md and /etc/x/y.toml are not ours.\n",
		"cfg.toml":      "# see pkg/c.go\n",
		"deploy/unit":   "# documented in pkg/nowhere\n",
		"testdata/x.md": "skipped: docs/skipped.md\n",
		".hidden/y.md":  "skipped: docs/skipped.md\n",
		"README.md":     "Layout: `pkg/`, `deploy/unit`, ./pkg/a.go, pkg/sub.Func, `pkg/*_test.go`, deploy/x.conf; invariants 1-2.\n",
		"deploy/x.conf": "# x\n",
		"pkg/sub/c.go":  "package sub\n",
		"docs/extra.md": "The sha" + "red docs say so (invariants 1, 2 and 4).\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, f.String())
	}
	want := []string{
		`cfg.toml:1: pkg/c.go: no such file or directory in the repository`,
		`deploy/unit:1: pkg/nowhere: no such file or directory in the repository`,
		`docs/extra.md:1: "sha` + `red docs": state the requirement, not an issue or a document outside the repository`,
		`docs/extra.md:1: invariant 4 is not defined in docs/design.md`,
		`docs/servers.md:2: invariant 3 is not defined in docs/design.md`,
		`docs/servers.md:2: docs/missing.md: no such file or directory in the repository`,
		`pkg/a.go:4: "../shared": state the requirement, not an issue or a document outside the repository`,
		`pkg/a.go:4: gone.go: no such file or directory in the repository`,
		`pkg/a.go:4: docs/nothere.md: no such file or directory in the repository`,
		`pkg/a.go:4: ../` + `shared/docs/x.md: reference outside the repository`,
		`pkg/a.go:5: "Iss` + `ue 12": state the requirement, not an issue or a document outside the repository`,
		`pkg/a.go:5: "#4 ` + `(": state the requirement, not an issue or a document outside the repository`,
		`pkg/a.go:5: "the issue's": state the requirement, not an issue or a document outside the repository`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got findings:\n%s\nwant:\n%s", lines(got), lines(want))
	}
}

func lines(l []string) string {
	s := ""
	for _, x := range l {
		s += "\t" + x + "\n"
	}
	return s
}
