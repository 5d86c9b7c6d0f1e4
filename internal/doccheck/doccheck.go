// Package doccheck finds references in comments and docs that a fresh
// clone of the repository cannot resolve: a file or directory path that
// does not exist, a path outside the repository, an invariant number that
// docs/design.md does not define, and issue numbers (a comment states the
// requirement itself, not where it was asked for).
//
// Its test runs the check over the whole repository, so `go test ./...`
// fails, listing file:line, as soon as a comment or doc points nowhere.
// Go files are checked in their comments only; Markdown, TOML and the
// files under deploy/ line by line.
package doccheck

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Finding is one unresolved reference.
type Finding struct {
	File string // slash-separated, relative to the root
	Line int
	Msg  string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Msg) }

// DesignDoc defines the numbered invariants, under a heading that starts
// with "Invariants" ("1. **Name.** ..." items).
const DesignDoc = "docs/design.md"

var (
	// A path with a directory part or a checked extension, optionally
	// starting with ./ or ../ (tokens inside URLs are removed first).
	pathRe = regexp.MustCompile(`(?:\.{1,2}/)*[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*`)
	urlRe  = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://\S+|[a-z0-9-]+(?:\.[a-z0-9-]+)+\.(?:com|org|net|io|dev|email|example)/\S*`)
	extRe  = regexp.MustCompile(`\.(?:md|go|toml)$`)

	invRe   = regexp.MustCompile(`(?i)\binvariants?\s+(\d+(?:\s*(?:-|–|,|and|or|to)\s*\d+)*)`)
	numRe   = regexp.MustCompile(`\d+`)
	issueRe = regexp.MustCompile(`(?i)\bissue\s*#?\d+|#\d+\s*\(|\bthe issue(?:'s)?\b|\bissues?\s+say|\.\./shared|\bshared/docs\b|\bshared[ ]docs\b`)
)

// Check walks root and returns every unresolved reference, sorted by file
// and line. Directories named testdata, vendor or starting with "." are
// skipped (data, not references).
func Check(root string) ([]Finding, error) {
	inv, err := invariants(filepath.Join(root, filepath.FromSlash(DesignDoc)))
	if err != nil {
		return nil, err
	}
	c := &checker{root: root, inv: inv}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			n := d.Name()
			if rel != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".go"):
			return c.goFile(p, rel)
		case strings.HasSuffix(rel, ".md"), strings.HasSuffix(rel, ".toml"), strings.HasPrefix(rel, "deploy/"):
			return c.textFile(p, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(c.found, func(i, j int) bool {
		a, b := c.found[i], c.found[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return c.found, nil
}

// invariants reads the numbers defined in the design doc's invariants
// section. A missing doc defines none (every "invariant N" is then
// reported).
func invariants(path string) (map[int]bool, error) {
	inv := make(map[int]bool)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return inv, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	item := regexp.MustCompile(`^(\d+)\.\s`)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			h := strings.TrimLeft(l, "# ")
			in = strings.HasPrefix(strings.ToLower(h), "invariants") || strings.Contains(strings.ToLower(h), " invariants")
			continue
		}
		if m := item.FindStringSubmatch(l); in && m != nil {
			n, _ := strconv.Atoi(m[1])
			inv[n] = true
		}
	}
	return inv, sc.Err()
}

type checker struct {
	root  string
	inv   map[int]bool
	found []Finding
}

func (c *checker) add(rel string, line int, format string, args ...any) {
	c.found = append(c.found, Finding{File: rel, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) goFile(p, rel string) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, p, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	for _, g := range f.Comments {
		for _, cm := range g.List {
			line := fset.Position(cm.Pos()).Line
			for i, l := range strings.Split(cm.Text, "\n") {
				c.line(rel, line+i, l)
			}
		}
	}
	return nil
}

func (c *checker) textFile(p, rel string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	for i, l := range strings.Split(string(b), "\n") {
		c.line(rel, i+1, l)
	}
	return nil
}

// line checks one line of a comment or document.
func (c *checker) line(rel string, n int, l string) {
	for _, m := range issueRe.FindAllString(l, -1) {
		c.add(rel, n, "%q: state the requirement, not an issue or a document outside the repository", m)
	}
	for _, m := range invRe.FindAllStringSubmatch(l, -1) {
		for _, s := range numRe.FindAllString(m[1], -1) {
			if k, _ := strconv.Atoi(s); !c.inv[k] {
				c.add(rel, n, "invariant %s is not defined in %s", s, DesignDoc)
			}
		}
	}
	l = urlRe.ReplaceAllString(l, " ")
	for _, loc := range pathRe.FindAllStringIndex(l, -1) {
		if loc[0] > 0 && strings.ContainsAny(l[loc[0]-1:loc[0]], "/~$@:%{*") {
			continue // absolute, home, variable, e-mail, host:path or glob
		}
		tok := strings.TrimRight(l[loc[0]:loc[1]], ".")
		if msg := c.path(rel, tok); msg != "" {
			c.add(rel, n, "%s", msg)
		}
	}
}

// path resolves one path-like token; it returns why it does not resolve,
// or "" when it does or is not a reference to check.
func (c *checker) path(rel, tok string) string {
	if strings.HasPrefix(tok, "../") {
		return fmt.Sprintf("%s: reference outside the repository", tok)
	}
	tok = strings.TrimPrefix(tok, "./")
	first, _, nested := strings.Cut(tok, "/")
	switch {
	case extRe.MatchString(tok):
		// A file: relative to the referring file's directory or the root.
	case nested && c.topLevel(first):
		// A directory or file under one of the repository's own
		// top-level directories; in "internal/oracle.Take" the path is
		// the package's.
		i := strings.LastIndex(tok, "/")
		if j := strings.Index(tok[i:], "."); j > 0 && i+j+1 < len(tok) && 'A' <= tok[i+j+1] && tok[i+j+1] <= 'Z' {
			tok = tok[:i+j]
		}
	default:
		return ""
	}
	for _, base := range []string{filepath.Dir(filepath.FromSlash(rel)), "."} {
		if _, err := os.Stat(filepath.Join(c.root, base, filepath.FromSlash(tok))); err == nil {
			return ""
		}
	}
	return fmt.Sprintf("%s: no such file or directory in the repository", tok)
}

func (c *checker) topLevel(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	fi, err := os.Stat(filepath.Join(c.root, name))
	return err == nil && fi.IsDir()
}
