package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// copyrightFile writes /usr/share/doc/popbridge/copyright (Debian policy
// section 12.5): popbridge itself, then every Go module linked into bin
// (as `go version -m` lists them) and the Go standard library, with its
// license. Apache-2.0 texts are referred to in /usr/share/common-licenses,
// as policy asks; the others are copied.
func copyrightFile(bin string, when time.Time) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "popbridge\n\nCopyright: %d the popbridge authors\nSource: %s\n\n", when.Year(), homepage)
	b.WriteString("The popbridge authors have not published popbridge under a license yet;\n" +
		"until they do, all rights are reserved.\n\n")
	b.WriteString("/usr/bin/popbridge is statically linked with the Go modules below; each\n" +
		"is distributed under the license that follows it.\n")

	mods, err := linkedModules(bin)
	if err != nil {
		return nil, err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	mods = append([]module{{path: "Go standard library", version: runtime.Version(),
		dir: strings.TrimSpace(string(goroot))}}, mods...)
	for _, m := range mods {
		text, err := licenseText(m.dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.path, err)
		}
		fmt.Fprintf(&b, "\n-------------------------------------------------------------------------------\n%s %s\n\n", m.path, m.version)
		if strings.Contains(text, "Apache License") && strings.Contains(text, "Version 2.0") {
			if notice, err := os.ReadFile(filepath.Join(m.dir, "NOTICE")); err == nil {
				b.Write(notice)
				b.WriteString("\n")
			}
			b.WriteString("Licensed under the Apache License, Version 2.0; on Debian systems its\n" +
				"full text is in /usr/share/common-licenses/Apache-2.0.\n")
			continue
		}
		b.WriteString(text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteString("\n")
		}
	}
	return b.Bytes(), nil
}

type module struct{ path, version, dir string }

// linkedModules lists the dependency modules recorded in a Go binary,
// with their directories in the module cache.
func linkedModules(bin string) ([]module, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("go version -m: %w", err)
	}
	var mods []module
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "dep" {
			continue
		}
		dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", f[1]).Output()
		if err != nil {
			return nil, fmt.Errorf("go list -m %s: %w", f[1], err)
		}
		mods = append(mods, module{path: f[1], version: f[2], dir: strings.TrimSpace(string(dir))})
	}
	return mods, sc.Err()
}

// licenseText reads a module's license file.
func licenseText(dir string) (string, error) {
	for _, n := range []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENCE"} {
		if data, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			return string(data), nil
		}
	}
	return "", fmt.Errorf("no license file in %s", dir)
}
