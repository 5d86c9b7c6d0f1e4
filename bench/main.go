// Command bench measures the gateway against direct IMAP and against
// Dovecot's own POP3 on the same store, side by side:
//
//	go run ./bench                 # full run (root, Dovecot installed)
//	go run ./bench -quick          # a CI-sized run
//	go run ./bench -json out.json -rounds 7 -scenarios list1k,retr1
//
// It starts a private Dovecot with the test harness (internal/dovecottest),
// seeds deterministic mailboxes straight into Maildir, builds and runs the
// gateway from ./proxy as its own process (so its RSS and CPU time are its
// own), and runs each scenario for each system in turn, round after round
// (A B C A B C ...). It prints one table of per-round ratios (median, min,
// max) and writes the raw samples as JSON. See docs/performance.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

type options struct {
	quick     bool
	rounds    int
	jsonPath  string
	scenarios string
	big       bool // 100,000-message scenarios
	idle      int  // idle sessions for the memory scenario
	inproc    bool
	imapc     bool
	baseline  string
	relay     bool
	srvMsgs   int // messages per server in the servers scenario
	srvRounds int
	profile   string // directory for the gateway's profiles (profile.go)
	profSecs  int
	strace    bool
	warmup    bool
}

func main() {
	if relayMain() {
		return
	}
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short, CI-sized run: small mailboxes, 3 rounds, no 100k mailbox")
	flag.IntVar(&o.rounds, "rounds", 0, "interleaved rounds (default 5, 3 with -quick)")
	flag.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	flag.StringVar(&o.scenarios, "scenarios", "", "comma-separated scenarios to run (default all): "+strings.Join(allScenarioNames, ","))
	flag.BoolVar(&o.big, "100k", true, "seed the 100,000-message mailbox and run list100k (ignored with -quick)")
	flag.IntVar(&o.idle, "idle", 200, "idle authenticated sessions for the memory scenario")
	flag.BoolVar(&o.inproc, "inprocess", false, "run the gateway in this process (no RSS/CPU figures)")
	flag.BoolVar(&o.imapc, "imapc", true, "also measure Dovecot's imapc POP3 gateway (list1k, retr1, retr16) when it can start")
	flag.StringVar(&o.baseline, "baseline", "", "also run the gateway built from this git revision (HEAD~1, a branch, a commit) in the same rounds, for before/after ratios")
	flag.BoolVar(&o.relay, "relay", true, "also measure a bare byte relay in front of Dovecot's POP3 (the floor of a gateway's CPU per GB) in the download and concurrent scenarios")
	flag.IntVar(&o.srvMsgs, "server-msgs", 100, "messages (4 KB) in the servers scenario's mailbox on each server")
	flag.IntVar(&o.srvRounds, "server-rounds", 3, "interleaved rounds of the servers scenario")
	flag.StringVar(&o.profile, "profile", "", "after the rounds, profile the gateway (CPU, allocations) under each selected scenario into this directory")
	flag.IntVar(&o.profSecs, "profile-seconds", 15, "seconds of profile per scenario with -profile")
	flag.BoolVar(&o.strace, "profile-strace", false, "with -profile, also count the gateway's system calls over one run (strace -c -f)")
	flag.BoolVar(&o.warmup, "warmup", true, "run a discarded warm-up round first")
	flag.Parse()
	gatewayPprof = o.profile != ""
	if o.rounds == 0 {
		o.rounds = 5
		if o.quick {
			o.rounds = 3
		}
	}
	if o.quick {
		o.big = false
		if o.idle == 200 {
			o.idle = 40
		}
	}
	if err := runDovecot(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// imapcRecipe describes the imapc gateway in the results (see
// dovecottest.ImapcGateway).
const imapcRecipe = "second Dovecot instance, POP3 only: mail_location = imapc:~/imapc on the upstream's IMAP, " +
	"passdb imap (userdb_imapc_user=%u userdb_imapc_password=%w), imapc_features = rfc822.size, " +
	"pop3_no_flag_updates = yes, otherwise defaults"

var allScenarioNames = []string{"list1k", "list100k", "retr1", "retr16", "top0", "conc8", "conc64", "conc1k", "memory", "servers"}

// optInScenarios run only when named in -scenarios.
var optInScenarios = map[string]bool{"conc1k": true}

type logHost struct{ w io.Writer }

func (h logHost) Logf(format string, args ...any) { fmt.Fprintf(h.w, "dovecot: "+format+"\n", args...) }

const benchPassword = "bench-pw"

// sizes of the seeded mailboxes.
type layout struct {
	small1k, big1k int // 1,000 x 4 KB + 20 x 5 MB
	n100k          int
	medUsers, med  int // 8 users x 500 x 20-80 KB
	conc64         int // users for 64 sessions (hard links to the 8)
	conc64Msgs     int // messages each of the 64 sessions downloads
	listReps1k     int
	conc1kIdle     int // idle sessions beside conc1k's 64 active ones
}

func layoutFor(o options) layout {
	if o.quick {
		return layout{small1k: 200, big1k: 2, medUsers: 8, med: 50, conc64: 64, conc64Msgs: 10, listReps1k: 5, conc1kIdle: 136}
	}
	l := layout{small1k: 1000, big1k: 20, medUsers: 8, med: 500, conc64: 64, conc64Msgs: 100, listReps1k: 10, conc1kIdle: 936}
	if o.big {
		l.n100k = 100000
	}
	return l
}

func runDovecot(o options, out io.Writer) (err error) {
	lay := layoutFor(o)
	want := selected(o.scenarios)
	if lay.n100k == 0 {
		delete(want, "list100k")
	}
	if o.quick && o.scenarios == "" {
		delete(want, "servers") // real non-Dovecot servers: not in the CI-sized run
	}
	scs := buildScenarios(lay, want, nil, nil)
	if len(scs) == 0 && !want["memory"] {
		lay = layout{} // only the servers scenario: seed nothing else
	}
	users, med, c64 := benchUsers(lay)

	// Enough processes for 200 idle sessions through the gateway plus as
	// many to Dovecot's own POP3, and 64 concurrent sessions.
	extra := "default_process_limit = 1500\ndefault_client_limit = 6000\n"
	fmt.Fprintf(out, "starting Dovecot ...\n")
	d, stop, err := dovecottest.StartForBench(logHost{os.Stderr}, dovecottest.Options{ExtraConfig: extra}, users...)
	if err != nil {
		return err
	}
	defer stop()
	defer func() {
		// Harness failures after start arrive as panics carrying an error.
		if v := recover(); v != nil {
			e, ok := v.(error)
			if !ok {
				panic(v)
			}
			err = e
		}
	}()

	t0 := time.Now()
	srvMsgs := 0
	if want["servers"] {
		srvMsgs = o.srvMsgs
	}
	if err := seed(d, lay, med, c64, srvMsgs); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	seedTime := time.Since(t0)
	fmt.Fprintf(out, "seeded and indexed in %.1fs\n", seedTime.Seconds())

	e := &env{imapAddr: d.IMAPAddr(), popAddr: d.POP3Addr(), dovePGID: d.PID(), password: benchPassword}
	imapcNote, stopImapc := startImapc(o, want, d, e, out)
	defer stopImapc()
	// Dovecot's long-lived processes (master, log, config, anvil, auth,
	// stats ...), once the seeding's doveadm sessions are gone.
	time.Sleep(time.Second)
	e.doveBase = groupProcs(d.PID())
	if e.imapcPGID != 0 {
		e.imapcBase = groupProcs(e.imapcPGID)
	}
	newGW, cleanup, err := startGateways(o, d, e, out)
	defer cleanup()
	if err != nil {
		return err
	}
	defer func() { e.gw.Close() }()
	baseRev, stopBase, err := startBaseline(o, d, e, out)
	defer stopBase()
	if err != nil {
		return err
	}
	if o.relay && !o.inproc {
		r, err := startRelay(d.POP3Addr())
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		defer r.Close()
		e.relay = r
	}

	res := &results{
		Machine:   machine(),
		Rounds:    o.rounds,
		Quick:     o.quick,
		NoWarmup:  !o.warmup,
		SeedSecs:  seedTime.Seconds(),
		Mailboxes: describe(lay),
		Gateway:   map[bool]string{true: "in-process", false: "separate process built from ./proxy"}[o.inproc],
		Imapc:     imapcNote,
		Baseline:  baseRev,
	}
	if err := measure(o, e, d, lay, want, buildScenarios(lay, want, med, c64), res, newGW, out); err != nil {
		return err
	}
	res.finish()
	res.print(out)
	if o.jsonPath != "" {
		if err := res.writeJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", o.jsonPath)
	}
	return nil
}

// benchUsers are the mailboxes the layout needs: u1k and the servers
// user always, u100k for the large mailbox, and one per session of the
// concurrent scenarios (med, c64).
func benchUsers(lay layout) (users []dovecottest.User, med, c64 []string) {
	users = []dovecottest.User{{Name: "u1k", Password: benchPassword}, {Name: serversUser, Password: benchPassword}}
	if lay.n100k > 0 {
		users = append(users, dovecottest.User{Name: "u100k", Password: benchPassword})
	}
	for i := range lay.medUsers {
		med = append(med, fmt.Sprintf("m%d", i))
	}
	for i := range lay.conc64 {
		c64 = append(c64, fmt.Sprintf("c%d", i))
	}
	for _, u := range append(append([]string{}, med...), c64...) {
		users = append(users, dovecottest.User{Name: u, Password: benchPassword})
	}
	return users, med, c64
}

// startImapc starts Dovecot's imapc POP3 gateway for the scenarios that
// compare with it, into e; the note says how it was set up, or why it
// is not measured. stop is never nil.
func startImapc(o options, want map[string]bool, d *dovecottest.Dovecot, e *env, out io.Writer) (note string, stop func()) {
	stop = func() {}
	if !o.imapc || !(want["list1k"] || want["retr1"] || want["retr16"]) {
		return "", stop
	}
	g, stopImapc, err := dovecottest.StartImapcGatewayForBench(logHost{os.Stderr}, d, dovecottest.ImapcOptions{})
	if err != nil {
		fmt.Fprintf(out, "note: Dovecot's imapc POP3 gateway could not start, continuing without it: %v\n", err)
		return fmt.Sprintf("not measured: %v", err), stop
	}
	e.imapcAddr, e.imapcPGID = g.POP3Addr(), g.PID()
	fmt.Fprintf(out, "Dovecot imapc POP3 gateway on %s\n", g.POP3Addr())
	return imapcRecipe, stopImapc
}

// startGateways starts the gateway in front of d into e.gw (in process,
// or the binary built from ./proxy, which e.restart can restart) and
// returns how to start another one the same way. cleanup is never nil
// and runs after e.gw is closed.
func startGateways(o options, d *dovecottest.Dovecot, e *env, out io.Writer) (newGW func(name, upstream string) (gateway, error), cleanup func(), err error) {
	cleanup = func() {}
	if o.inproc {
		e.gw, err = startInprocGateway(d.IMAPAddr())
		newGW = func(_, upstream string) (gateway, error) { return startInprocGateway(upstream) }
		return newGW, cleanup, err
	}
	dir, err := os.MkdirTemp("", "pbbench")
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	fmt.Fprintf(out, "building ./proxy ...\n")
	bin, err := buildGateway(dir)
	if err != nil {
		return nil, cleanup, err
	}
	startGW := func() (gateway, error) { return startProcGateway(bin, dir, d.IMAPAddr()) }
	newGW = func(name, upstream string) (gateway, error) {
		sub, err := os.MkdirTemp(dir, name)
		if err != nil {
			return nil, err
		}
		return startProcGateway(bin, sub, upstream)
	}
	e.restart = func() error {
		e.gw.Close()
		g, err := startGW()
		if err != nil {
			return err
		}
		e.gw = g
		return nil
	}
	e.gw, err = startGW()
	return newGW, cleanup, err
}

// measure runs the selected scenarios round after round, then the
// profiles, memory and servers measurements, into res.
func measure(o options, e *env, d *dovecottest.Dovecot, lay layout, want map[string]bool, scs []*scenario, res *results, newGW func(name, upstream string) (gateway, error), out io.Writer) error {
	if len(scs) > 0 {
		first := 0
		if !o.warmup {
			first = 1
		}
		if err := runRoundsFrom(e, scs, first, o.rounds, res, out); err != nil {
			return err
		}
	}
	if o.profile != "" && len(scs) > 0 {
		if err := profileScenarios(e, scs, o.profile, o.profSecs, o.strace, out); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	if want["memory"] && !o.inproc {
		mem, err := measureMemory(e, "u1k", o.idle, lay.big1k, out)
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		res.Memory = mem
	}
	if want["servers"] {
		// Dovecot first, through the gateway already running in front of it.
		ts := []*serverTarget{{name: "dovecot", version: "Dovecot " + res.Machine["dovecot"], imapAddr: d.IMAPAddr(), login: serversUser, gw: e.gw}}
		fmt.Fprintf(out, "servers: starting mailutils, Cyrus, Courier ...\n")
		others, notRun, stopOthers := startOthers(o.srvMsgs, benchPassword, newGW, out)
		defer stopOthers()
		sr, err := runServers(append(ts, others...), o.srvRounds, benchPassword, out)
		if err != nil {
			return err
		}
		sr.NotRun = notRun
		res.Servers = sr
	}
	return nil
}

func selected(list string) map[string]bool {
	want := map[string]bool{}
	if list == "" {
		for _, n := range allScenarioNames {
			want[n] = !optInScenarios[n]
		}
		return want
	}
	for _, n := range strings.Split(list, ",") {
		want[strings.TrimSpace(n)] = true
	}
	return want
}

func buildScenarios(lay layout, want map[string]bool, med, c64 []string) []*scenario {
	var scs []*scenario
	add := func(s *scenario) {
		if want[s.Name] {
			scs = append(scs, s)
		}
	}
	add(listScenario("list1k", "u1k", lay.listReps1k))
	add(listScenario("list100k", "u100k", 1))
	add(downloadScenario("retr1", "u1k", 1))
	add(downloadScenario("retr16", "u1k", 16))
	add(topScenario("top0", "u1k"))
	add(concScenario("conc8", 8, med, lay.med, 0.8))
	add(concScenario("conc64", 64, c64, lay.conc64Msgs, 0.85))
	add(conc1kScenario("conc1k", lay.conc1kIdle, 64, c64, lay.conc64Msgs))
	return scs
}

func describe(l layout) string {
	if l == (layout{}) {
		return "" // only the servers scenario (its mailbox is described with it)
	}
	s := fmt.Sprintf("u1k: %d x 4 KB + %d x 5 MB; m0-m%d: %d x 20-80 KB each; c0-c%d: hard links to m*, %d messages downloaded per session",
		l.small1k, l.big1k, l.medUsers-1, l.med, l.conc64-1, l.conc64Msgs)
	if l.n100k > 0 {
		s += fmt.Sprintf("; u100k: %d x 4 KB", l.n100k)
	}
	return s
}

// seed writes the mailboxes straight into Maildir (cur/, sizes in the
// file names) and has Dovecot index them before anything is measured.
func seed(d *dovecottest.Dovecot, l layout, med, c64 []string, srvMsgs int) error {
	uid, gid := d.MailOwner()
	sink := func(user string) (*maildirSink, error) {
		dir, err := d.Maildir(user, "INBOX")
		if err != nil {
			return nil, err
		}
		return &maildirSink{dir: dir, uid: uid, gid: gid, prefix: fmt.Sprintf("%d", time.Now().Unix())}, nil
	}
	fill := func(spec mailboxSpec) (*maildirSink, error) {
		s, err := sink(spec.user)
		if err != nil {
			return nil, err
		}
		for i := range spec.count {
			if err := s.add(spec.gen(i)); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	specs := []mailboxSpec{spec1k("u1k", l.small1k, l.big1k)}
	if srvMsgs > 0 {
		specs = append(specs, mailboxSpec{user: serversUser, count: srvMsgs, gen: serverMessage})
	}
	if l.n100k > 0 {
		specs = append(specs, spec4k("u100k", l.n100k))
	}
	for i, u := range med {
		specs = append(specs, specMedium(u, i, l.med))
	}
	sinks := map[string]*maildirSink{}
	for _, sp := range specs {
		s, err := fill(sp)
		if err != nil {
			return err
		}
		sinks[sp.user] = s
	}
	for i, u := range c64 {
		src := sinks[med[i%len(med)]]
		s, err := sink(u)
		if err != nil {
			return err
		}
		ents, err := os.ReadDir(src.dir + "/cur")
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if err := s.link(src.dir + "/cur/" + ent.Name()); err != nil {
				return err
			}
		}
	}
	// Index every mailbox now, not during the first measured login.
	for _, u := range append(append([]string{"u1k", serversUser}, med...), c64...) {
		d.Doveadm("mailbox", "status", "-u", u, "messages", "INBOX")
	}
	if l.n100k > 0 {
		d.Doveadm("mailbox", "status", "-u", "u100k", "messages", "INBOX")
	}
	return nil
}

// runRounds runs one warm-up round (discarded), then the rounds.
func runRounds(e *env, scs []*scenario, rounds int, res *results, out io.Writer) error {
	return runRoundsFrom(e, scs, 0, rounds, res, out)
}

// runRoundsFrom is runRounds, without the warm-up when first is 1.
func runRoundsFrom(e *env, scs []*scenario, first, rounds int, res *results, out io.Writer) error {
	for r := first; r <= rounds; r++ {
		label := fmt.Sprintf("round %d/%d", r, rounds)
		if r == 0 {
			label = "warm-up"
		}
		fmt.Fprintf(out, "%s:", label)
		for _, sc := range scs {
			for _, sys := range sc.Systems {
				if !e.has(sys) {
					continue
				}
				s, err := sc.run(e, sys)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", sc.Name, sys, err)
				}
				if r > 0 {
					res.add(sc, sys, r-1, s)
				}
			}
			fmt.Fprintf(out, " %s", sc.Name)
		}
		fmt.Fprintln(out)
		if r == first && e.dovePGID != 0 {
			// Dovecot's idle process count once auth and the like have
			// started: what settleGroup waits for.
			time.Sleep(time.Second)
			e.doveBase = groupProcs(e.dovePGID)
			if e.imapcPGID != 0 {
				e.imapcBase = groupProcs(e.imapcPGID)
			}
		}
	}
	return nil
}

func machine() map[string]string {
	m := map[string]string{
		"cpus":   fmt.Sprint(runtime.NumCPU()),
		"go":     runtime.Version(),
		"os":     runtime.GOOS + "/" + runtime.GOARCH,
		"kernel": strings.TrimSpace(readFirst("/proc/sys/kernel/osrelease")),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	if b, err := exec.Command("dovecot", "--version").Output(); err == nil {
		m["dovecot"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m["debian"] = strings.TrimSpace(string(b))
	}
	return m
}

func readFirst(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
