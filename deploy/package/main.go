// Command package builds popbridge's Debian package with nfpm, from the
// repository root:
//
//	go run ./deploy/package                 # dist/popbridge_VERSION_ARCH.deb
//	go run ./deploy/package -o /tmp/out -version 1.2.0
//
// It builds the daemon from ./proxy and packs it with the files in
// deploy/: the conffile /etc/popbridge/proxy.toml (a production starting
// point that -check-config refuses until upstream.address is set), the
// systemd unit (deploy/systemd with the packaged binary's path and a
// static system user instead of DynamicUser, for the vault's state
// directory), sysusers.d and tmpfiles.d entries for that user and
// /var/lib/popbridge, the fail2ban filter and jail example, the man page,
// README, changelog and copyright.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

const (
	name       = "popbridge"
	maintainer = "popbridge maintainers <maintainers@users.noreply.r-seed-cdfa98f2.example>"
	homepage   = "https://github.com/popbridge/popbridge"
)

func main() {
	out := flag.String("o", "dist", "output `directory`")
	version := flag.String("version", "", "package `version` (default: from git)")
	arch := flag.String("arch", runtime.GOARCH, "Go `architecture` to build for")
	flag.Parse()
	path, err := build(*out, *version, *arch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

func build(outDir, version, goarch string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	when, err := commitTime(root)
	if err != nil {
		return "", err
	}
	if version == "" {
		if version, err = gitVersion(root); err != nil {
			return "", err
		}
	}
	work, err := os.MkdirTemp("", "popbridge-package-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	src := func(p string) string { return filepath.Join(root, p) }
	gen := func(p string) string { return filepath.Join(work, p) }

	bin := gen("popbridge")
	if err := goBuild(root, bin, goarch); err != nil {
		return "", err
	}
	unit, err := packagedUnit(src("deploy/systemd/popbridge.service"))
	if err != nil {
		return "", err
	}
	man, err := os.ReadFile(src("deploy/package/popbridge.8"))
	if err != nil {
		return "", err
	}
	readme, err := os.ReadFile(src("README.md"))
	if err != nil {
		return "", err
	}
	copyright, err := copyrightFile(bin, when)
	if err != nil {
		return "", err
	}
	for p, data := range map[string][]byte{
		"popbridge.service": unit,
		"popbridge.8.gz":    gz(man),
		"README.md.gz":      gz(readme),
		"changelog.gz":      gz(changelog(version, when)),
		"copyright":         copyright,
	} {
		if err := os.WriteFile(gen(p), data, 0o644); err != nil {
			return "", err
		}
	}

	doc := "/usr/share/doc/popbridge/"
	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode, MTime: when}}
	}
	conffile := func(from, to string) *files.Content {
		c := file(from, to, 0o644)
		c.Type = files.TypeConfigNoReplace
		return c
	}
	info := &nfpm.Info{
		Name:          name,
		Arch:          goarch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "mail",
		Priority:      "optional",
		Maintainer:    maintainer,
		Homepage:      homepage,
		MTime:         when,
		Description: "POP3 front end for IMAP mailboxes\n" +
			"popbridge serves POP3 sessions from an upstream IMAP server, so what an\n" +
			"old POP3 device downloads and deletes shows up as server-side flags on\n" +
			"every other device. Deletions are applied by a successful QUIT only,\n" +
			"with a choice of policies (flag, keyword, trash, archive, expunge,\n" +
			"keep); it exposes Prometheus metrics and health endpoints.",
		Overridables: nfpm.Overridables{
			Depends:  []string{"libc6", "systemd"},
			Suggests: []string{"fail2ban"},
			Contents: files.Contents{
				file(bin, "/usr/bin/popbridge", 0o755),
				conffile(src("deploy/package/proxy.toml"), "/etc/popbridge/proxy.toml"),
				conffile(src("deploy/fail2ban/popbridge.conf"), "/etc/fail2ban/filter.d/popbridge.conf"),
				file(gen("popbridge.service"), "/usr/lib/systemd/system/popbridge.service", 0o644),
				file(src("deploy/package/sysusers.conf"), "/usr/lib/sysusers.d/popbridge.conf", 0o644),
				file(src("deploy/package/tmpfiles.conf"), "/usr/lib/tmpfiles.d/popbridge.conf", 0o644),
				file(gen("popbridge.8.gz"), "/usr/share/man/man8/popbridge.8.gz", 0o644),
				file(gen("README.md.gz"), doc+"README.md.gz", 0o644),
				file(gen("changelog.gz"), doc+"changelog.gz", 0o644),
				file(gen("copyright"), doc+"copyright", 0o644),
				file(src("deploy/fail2ban/popbridge.local"), doc+"examples/fail2ban-jail.local", 0o644),
				file(src("deploy/haproxy/haproxy.cfg"), doc+"examples/haproxy.cfg", 0o644),
				file(src("deploy/package/lintian-overrides"), "/usr/share/lintian/overrides/popbridge", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: src("deploy/package/postinst"),
				PreRemove:   src("deploy/package/prerm"),
				PostRemove:  src("deploy/package/postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	target := filepath.Join(outDir, deb.Default.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	info.Target = target
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", err
	}
	return target, f.Close()
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the popbridge repository")
	}
	return filepath.Dir(mod), nil
}

func git(root string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// commitTime is HEAD's commit time: every file's mtime and the
// changelog's date, so the same commit gives the same package.
func commitTime(root string) (time.Time, error) {
	s, err := git(root, "log", "-1", "--format=%ct")
	if err != nil {
		return time.Time{}, err
	}
	var sec int64
	if _, err := fmt.Sscan(s, &sec); err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}

// gitVersion is a tag's version (v1.2.0 gives 1.2.0) when HEAD is
// tagged, else a snapshot version that sorts before any release:
// 0.0~git20260101.abcdef0.
func gitVersion(root string) (string, error) {
	if tag, err := git(root, "describe", "--tags", "--exact-match"); err == nil {
		return strings.TrimPrefix(tag, "v"), nil
	}
	return git(root, "log", "-1", "--date=format:%Y%m%d", "--format=0.0~git%cd.%h")
}

// goBuild builds the daemon as Debian wants a binary: position
// independent, bound at load (BIND_NOW), no symbol tables, no paths of
// the build machine. Without cgo it needs no shared library, not even
// libc (net uses Go's own resolver, which reads /etc/nsswitch.conf and
// /etc/resolv.conf).
func goBuild(root, out, goarch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=pie",
		"-ldflags=-s -w -buildid= -bindnow", "-o", out, "./proxy")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// packagedUnit turns the hand-install unit into the packaged one: the
// binary in /usr/bin, and the static user popbridge (sysusers.conf)
// owning /var/lib/popbridge, where the vault keeps its state. Each
// replaced line must be found, so an edit of the unit cannot silently
// drop out of the package.
func packagedUnit(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	unit := string(data)
	// The install instructions at the top are for a hand install.
	if i := strings.Index(unit, "\n[Unit]"); i >= 0 {
		unit = "# popbridge POP3-to-IMAP gateway, as installed by its Debian package.\n" +
			"# Set [upstream] address in /etc/popbridge/proxy.toml, then:\n" +
			"#   systemctl enable --now popbridge\n" + unit[i:]
	}
	for _, r := range []struct{ old, new string }{
		{"/usr/local/bin/popbridge", "/usr/bin/popbridge"},
		{"# No state of its own: everything lives in the IMAP server.\nDynamicUser=yes\n",
			"# A static user (sysusers.d/popbridge.conf) owns the token vault's state.\n" +
				"User=popbridge\nGroup=popbridge\nStateDirectory=popbridge\nStateDirectoryMode=0750\n"},
		{"Documentation=file:///usr/share/doc/popbridge/README.md\n",
			"Documentation=man:popbridge(8) file:///usr/share/doc/popbridge/README.md.gz\n"},
	} {
		if !strings.Contains(unit, r.old) {
			return nil, fmt.Errorf("%s: expected %q, found none", path, r.old)
		}
		unit = strings.ReplaceAll(unit, r.old, r.new)
	}
	return []byte(unit), nil
}

// gz compresses as Debian's tools do (best compression, no name, no
// time stamp), so the package is reproducible.
func gz(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// changelog is a Debian changelog with one entry for this build. The
// package is native (no Debian revision): it is the upstream's own.
func changelog(version string, when time.Time) []byte {
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n"+
		"  * Package built from the popbridge repository; see its history for\n"+
		"    the changes.\n\n -- %s  %s\n",
		name, version, maintainer, when.Format(time.RFC1123Z))
}
