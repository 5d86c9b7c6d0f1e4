package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Profiling the gateway process under a scenario (-profile DIR): the
// gateway is started with its [pprof] endpoint on loopback, and after the
// measured rounds each selected scenario's gateway run is repeated while
// a CPU profile and an allocation profile (delta over the same window)
// are taken; with -profile-strace, one more run under `strace -c -f`
// counts the gateway's system calls. Nothing of this enters the table.

// gatewayPprof makes startProcGatewayWith enable [pprof] listen.
var gatewayPprof bool

func profileScenarios(e *env, scs []*scenario, dir string, secs int, withStrace bool, out io.Writer) error {
	g, ok := e.gw.(*procGateway)
	if !ok || g.pprofAddr == "" {
		return fmt.Errorf("-profile needs the gateway built from ./proxy with [pprof] listen")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, sc := range scs {
		fmt.Fprintf(out, "profiling %s for %d s ...\n", sc.Name, secs)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+60)*time.Second)
		errs := make(chan error, 2)
		for _, p := range []string{"profile", "allocs"} {
			go func() {
				errs <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", g.pprofAddr, p, secs),
					filepath.Join(dir, sc.Name+"."+p+".pprof"))
			}()
		}
		time.Sleep(100 * time.Millisecond) // both profiles running
		end := time.Now().Add(time.Duration(secs) * time.Second)
		runs := 0
		var bytes int64
		cpu0, _ := procCPU(g.PID(), false)
		for time.Now().Before(end) {
			s, err := sc.run(e, sysGW)
			if err != nil {
				cancel()
				return err
			}
			runs++
			bytes += s.Bytes
		}
		cpu1, _ := procCPU(g.PID(), false)
		var ferr error
		for range 2 {
			if err := <-errs; err != nil && ferr == nil {
				ferr = err
			}
		}
		cancel()
		if ferr != nil {
			return ferr
		}
		fmt.Fprintf(out, "  %d runs, %.1f MB, gateway CPU %.2f s (%.2f s/GB); go tool pprof -top %s\n",
			runs, float64(bytes)/1e6, cpu1-cpu0, (cpu1-cpu0)/(float64(bytes)/1e9), filepath.Join(dir, sc.Name+".profile.pprof"))
		if withStrace {
			if err := straceRun(e, g, sc, filepath.Join(dir, sc.Name+".strace"), out); err != nil {
				fmt.Fprintf(out, "  strace: %v\n", err)
			}
		}
	}
	return nil
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// straceRun runs the scenario's gateway side once under strace -c -f
// (syscall counts of the gateway process, all threads).
func straceRun(e *env, g *procGateway, sc *scenario, path string, out io.Writer) error {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return fmt.Errorf("strace not installed")
	}
	cmd := exec.Command(bin, "-c", "-f", "-o", path, "-p", fmt.Sprint(g.PID()))
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(time.Second) // attached to every thread
	s, err := sc.run(e, sysGW)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  strace -c -f over one run (%.1f MB): %s\n", float64(s.Bytes)/1e6, path)
	return nil
}
