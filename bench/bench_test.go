package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/internal/memupstream"
)

// TestSmoke runs the scenarios once, tiny, against the in-memory upstream
// and an in-process gateway (no Dovecot, so no "Dovecot POP3" column and
// no CPU or memory figures). It checks that the benchmark works, never how
// fast anything is.
func TestSmoke(t *testing.T) {
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	users := []string{"u1k", "m0", "m1"}
	for i, u := range users {
		if err := srv.AddUser(u, benchPassword); err != nil {
			t.Fatal(err)
		}
		n := 6
		for j := range n {
			msg := textMessage(uint64(i*100+j), 3000+j*500)
			if u == "u1k" && j == 3 {
				msg = bigMessage(uint64(j), 200<<10)
			}
			if err := srv.Append(u, "INBOX", msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	gw, err := startInprocGateway(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	// The baseline and the relay floor, as -baseline and -relay run them
	// (here in process: a second gateway, and the relay in front of it).
	base, err := startInprocGateway(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveRelay(ln, base.Addr())
	e := &env{gw: gw, imapAddr: srv.Addr(), password: benchPassword, base: base, relay: inprocRelay{ln}}
	lay := layout{listReps1k: 1, med: 3, conc64Msgs: 2, conc1kIdle: 5}
	scs := buildScenarios(lay, selected("list1k,retr1,retr16,top0,conc8,conc64,conc1k"), users[1:], users[1:])
	res := &results{Machine: machine(), Rounds: 1}
	var out bytes.Buffer
	if err := runRounds(e, scs, 1, res, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	res.finish()
	res.print(&out)
	for _, name := range []string{"list1k", "retr1", "retr16", "top0", "conc8", "conc64"} {
		r := res.byName[name]
		if r == nil {
			t.Fatalf("no row %s", name)
		}
		if _, ok := r.Ratios["gateway/imap"]; !ok {
			t.Errorf("%s: no gateway/imap ratio: %+v", name, r.Median)
		}
		if _, ok := r.Ratios["gateway/baseline"]; !ok {
			t.Errorf("%s: no gateway/baseline ratio: %+v", name, r.Median)
		}
		_, relayed := r.Ratios["gateway/relay"]
		if want := r.Unit == "MB/s"; relayed != want {
			t.Errorf("%s: gateway/relay ratio present %v, want %v: %+v", name, relayed, want, r.Median)
		}
	}
	// conc1k has no direct-IMAP system: its gateway figures must be there.
	if r := res.byName["conc1k"]; r == nil || r.Median[sysGW] <= 0 {
		t.Errorf("conc1k: no gateway throughput: %+v", r)
	}
	if r := res.byName["conc1k p99"]; r == nil || r.Median[sysGW] <= 0 {
		t.Errorf("conc1k: no gateway p99 latency: %+v", r)
	}
	if !strings.Contains(out.String(), "gateway/IMAP") || !strings.Contains(out.String(), "gateway/baseline") || !strings.Contains(out.String(), "gateway/relay") {
		t.Errorf("no table:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := res.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	t.Log(fmt.Sprintf("\n%s", out.String()))
}

// inprocRelay is the relay floor in this process (serveRelay on ln).
type inprocRelay struct{ ln net.Listener }

func (r inprocRelay) Addr() string { return r.ln.Addr().String() }
func (r inprocRelay) PID() int     { return 0 }
func (r inprocRelay) Close()       { r.ln.Close() }

// TestServersSmoke runs the servers scenario's rounds once, tiny, against
// the in-memory upstream (standing in for a real server) through an
// in-process gateway, and checks the table and the JSON fields.
func TestServersSmoke(t *testing.T) {
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddUser(serversUser, benchPassword); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := srv.Append(serversUser, "INBOX", serverMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := startInprocGateway(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	ts := []*serverTarget{{name: "memupstream", imapAddr: srv.Addr(), login: serversUser, gw: gw}}
	var out bytes.Buffer
	sr, err := runServers(ts, 1, benchPassword, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	sr.NotRun = []string{"cyrus: not installed"}
	res := &results{Machine: machine(), Rounds: 1, Servers: sr}
	res.print(&out)
	r := sr.Servers[0]
	if r.Messages != 20 || r.Bytes < 20*4000 {
		t.Errorf("%d messages, %d octets", r.Messages, r.Bytes)
	}
	for _, mode := range serverModes {
		if len(r.Seconds[mode]) != 1 || r.MsPer[mode] <= 0 {
			t.Errorf("%s: %v, %v ms/msg", mode, r.Seconds[mode], r.MsPer[mode])
		}
	}
	if _, ok := r.Ratios[modeGW1]; !ok {
		t.Errorf("no gateway/IMAP ratio: %+v", r.Ratios)
	}
	for _, want := range []string{"memupstream", "retr16/IMAP", "not measured: cyrus"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	if err := res.writeJSON(filepath.Join(t.TempDir(), "bench.json")); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}

// TestUntar: -baseline's extraction writes files and directories under
// its directory and refuses an entry that would leave it.
func TestUntar(t *testing.T) {
	build := func(names ...string) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755})
				continue
			}
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(n))})
			tw.Write([]byte(n))
		}
		tw.Close()
		return &b
	}
	dir := t.TempDir()
	if err := untar(build("proxy/", "proxy/main.go", "go.mod"), dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "proxy", "main.go")); err != nil || string(b) != "proxy/main.go" {
		t.Errorf("proxy/main.go: %q, %v", b, err)
	}
	if err := untar(build("../escape"), t.TempDir()); err == nil {
		t.Error("an entry leaving the directory was extracted")
	}
}
