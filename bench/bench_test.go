package main

import (
	"bytes"
	"fmt"
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
	e := &env{gw: gw, imapAddr: srv.Addr(), password: benchPassword}
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
	}
	// conc1k has no direct-IMAP system: its gateway figures must be there.
	if r := res.byName["conc1k"]; r == nil || r.Median[sysGW] <= 0 {
		t.Errorf("conc1k: no gateway throughput: %+v", r)
	}
	if r := res.byName["conc1k p99"]; r == nil || r.Median[sysGW] <= 0 {
		t.Errorf("conc1k: no gateway p99 latency: %+v", r)
	}
	if !strings.Contains(out.String(), "gateway/IMAP") {
		t.Errorf("no table:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := res.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	t.Log(fmt.Sprintf("\n%s", out.String()))
}

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
