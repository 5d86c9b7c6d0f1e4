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
	lay := layout{listReps1k: 1, med: 3, conc64Msgs: 2}
	scs := buildScenarios(lay, selected("list1k,retr1,retr16,top0,conc8,conc64"), users[1:], users[1:])
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
	if !strings.Contains(out.String(), "gateway/IMAP") {
		t.Errorf("no table:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := res.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	t.Log(fmt.Sprintf("\n%s", out.String()))
}
