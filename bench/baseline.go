package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

// The baseline: the gateway as built from another git revision, run as a
// fifth system in the same interleaved rounds as the gateway under test
// (-baseline REV). A change's before/after ratio is then measured side by
// side on the same machine, under the same load, instead of across two
// runs of a noisy machine.

// startBaseline builds and starts the -baseline gateway into e.base and
// returns the revision it was built from ("name (commit)"); nothing when
// -baseline is not set. stop, never nil, stops it and removes its files.
func startBaseline(o options, d *dovecottest.Dovecot, e *env, out io.Writer) (rev string, stop func(), err error) {
	stop = func() {}
	if o.baseline == "" {
		return "", stop, nil
	}
	if o.inproc {
		return "", stop, errors.New("-baseline needs the gateway as a separate process (no -inprocess)")
	}
	dir, err := os.MkdirTemp("", "pbbase")
	if err != nil {
		return "", stop, err
	}
	stop = func() { os.RemoveAll(dir) }
	fmt.Fprintf(out, "building ./proxy at %s ...\n", o.baseline)
	bin, commit, err := buildGatewayAt(o.baseline, dir)
	if err != nil {
		return "", stop, fmt.Errorf("-baseline: %w", err)
	}
	g, err := startProcGateway(bin, dir, d.IMAPAddr())
	if err != nil {
		return "", stop, fmt.Errorf("-baseline: %w", err)
	}
	e.base = g
	stop = func() { g.Close(); os.RemoveAll(dir) }
	return fmt.Sprintf("%s (%s)", o.baseline, commit), stop, nil
}

// buildGatewayAt extracts rev of the module's repository into dir (git
// archive: the working tree and the repository are left alone) and builds
// its ./proxy there.
func buildGatewayAt(rev, dir string) (bin, commit string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	c, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("git rev-parse %s: %v", rev, err)
	}
	commit = strings.TrimSpace(string(c))
	src := filepath.Join(dir, "src")
	arch := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	pipe, err := arch.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	if err := arch.Start(); err != nil {
		return "", "", err
	}
	xerr := untar(pipe, src)
	io.Copy(io.Discard, pipe)
	if err := arch.Wait(); err != nil {
		return "", "", fmt.Errorf("git archive %s: %v", commit, err)
	}
	if xerr != nil {
		return "", "", xerr
	}
	bin = filepath.Join(dir, "popbridge-baseline")
	build := exec.Command("go", "build", "-o", bin, "./proxy")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./proxy at %s: %v\n%s", commit, err, out)
	}
	return bin, commit, nil
}

// untar writes the regular files and directories of a tar stream under
// dir; names leaving dir are refused.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, dir+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
