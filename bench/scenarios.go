package main

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Systems compared side by side.
const (
	sysGW   = "gateway"
	sysIMAP = "imap"         // direct IMAP to the upstream
	sysPOP  = "dovecot-pop3" // Dovecot's own POP3 on the same store
	// Dovecot's own POP3-to-IMAP gateway: a second instance, POP3 only,
	// whose imapc storage logs in to the upstream's IMAP.
	sysImapc = "dovecot-imapc"
	// The gateway built from another revision (-baseline), run in the
	// same rounds: before/after figures of a change, side by side.
	sysBase = "baseline"
	// A bare byte relay in front of Dovecot's POP3 (relay.go): the floor
	// of a gateway process's CPU per GB.
	sysRelay = "relay"
)

// env is what the scenarios run against.
type env struct {
	gw       gateway
	imapAddr string
	popAddr  string // "" when there is no POP3 reference (memupstream)
	dovePGID int    // 0: upstream CPU not measurable
	doveBase int    // Dovecot's processes with no session open
	password string
	restart  func() error // a fresh gateway process (nil in-process)

	imapcAddr string // Dovecot's imapc POP3 gateway; "" when not running
	imapcPGID int
	imapcBase int // its processes with no session open

	base  gateway // the -baseline gateway; nil when not running
	relay gateway // the relay floor; nil when not running
}

// gatewayOf is the popbridge process sys measures: the baseline's for
// sysBase, else the gateway under test.
func (e *env) gatewayOf(sys string) gateway {
	if sys == sysBase && e.base != nil {
		return e.base
	}
	if sys == sysRelay && e.relay != nil {
		return e.relay
	}
	return e.gw
}

func (e *env) popFor(sys string) string {
	switch sys {
	case sysGW:
		return e.gw.Addr()
	case sysBase:
		return e.base.Addr()
	case sysRelay:
		return e.relay.Addr()
	case sysImapc:
		return e.imapcAddr
	}
	return e.popAddr
}

// has reports whether sys can run in this environment.
func (e *env) has(sys string) bool {
	switch sys {
	case sysPOP:
		return e.popAddr != ""
	case sysImapc:
		return e.imapcAddr != ""
	case sysBase:
		return e.base != nil
	case sysRelay:
		return e.relay != nil
	}
	return true
}

// sample is one measurement of one system in one round.
type sample struct {
	Value     float64 `json:"value"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	GWCPU     float64 `json:"gateway_cpu_s"`
	UpCPU     float64 `json:"upstream_cpu_s"`
	ClientCPU float64 `json:"client_cpu_s"`
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
	// conc1k, gateway only: RSS growth per idle session, and peak RSS
	// growth while the active sessions download.
	RSSIdleKiB    float64 `json:"rss_per_idle_kib,omitempty"`
	PeakGrowthMiB float64 `json:"peak_growth_mib,omitempty"`
	IdleSessions  int     `json:"idle_sessions,omitempty"`
}

// scenario is one line of comparisons.
type scenario struct {
	Name    string
	Desc    string
	Unit    string // "s" (lower is better) or a rate (higher is better)
	Higher  bool
	Systems []string
	// Targets maps "gateway/imap" or "gateway/dovecot-pop3" to the ratio
	// required: a minimum when Higher, else a maximum.
	Targets map[string]float64
	run     func(e *env, sys string) (sample, error)
}

// meter measures the CPU of the gateway under test (popbridge's process,
// or the imapc gateway's process group for sysImapc), the upstream's
// process group and this process around a measurement.
type meter struct {
	e                 *env
	gw                gateway // the popbridge process measured
	imapc             bool
	t0                time.Time
	gw0, up0, client0 float64
}

func startMeter(e *env, sys string) *meter {
	m := &meter{e: e, gw: e.gatewayOf(sys), imapc: sys == sysImapc && e.imapcPGID != 0}
	if m.imapc {
		settleGroup(e.imapcPGID, e.imapcBase)
		m.gw0 = groupCPU(e.imapcPGID)
	} else if pid := m.gw.PID(); pid != 0 {
		m.gw0, _ = procCPU(pid, false)
	}
	if e.dovePGID != 0 {
		settleGroup(e.dovePGID, e.doveBase)
		m.up0 = groupCPU(e.dovePGID)
	}
	m.client0 = selfCPU()
	m.t0 = time.Now()
	return m
}

// stop fills in s's CPU fields. Dovecot's per-connection processes are
// given a moment to exit and be reaped, so their time is counted.
func (m *meter) stop(s *sample) {
	s.ClientCPU = selfCPU() - m.client0
	// The imapc gateway's processes first: their upstream sessions end
	// when they exit.
	if m.imapc {
		settleGroup(m.e.imapcPGID, m.e.imapcBase)
		s.GWCPU = groupCPU(m.e.imapcPGID) - m.gw0
	} else if pid := m.gw.PID(); pid != 0 {
		g, _ := procCPU(pid, false)
		s.GWCPU = g - m.gw0
	}
	if m.e.dovePGID != 0 {
		settleGroup(m.e.dovePGID, m.e.doveBase)
		s.UpCPU = groupCPU(m.e.dovePGID) - m.up0
	}
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// listScenario: login to the end of LIST, k sessions in a row, mean time.
func listScenario(name, user string, k int) *scenario {
	return &scenario{
		Name: name, Unit: "s", Systems: []string{sysGW, sysBase, sysIMAP, sysPOP, sysImapc},
		Desc:    fmt.Sprintf("login to end of LIST (%s)", user),
		Targets: map[string]float64{sysGW + "/" + sysIMAP: 1.5},
		run: func(e *env, sys string) (sample, error) {
			var total time.Duration
			for range k {
				t0 := time.Now()
				if sys == sysIMAP {
					c, err := dialIMAP(e.imapAddr)
					if err != nil {
						return sample{}, err
					}
					if err := c.login(user, e.password); err != nil {
						return sample{}, err
					}
					if _, _, err := c.snapshot(); err != nil {
						return sample{}, err
					}
					total += time.Since(t0)
					c.logout()
					continue
				}
				p, err := dialPOP(e.popFor(sys))
				if err != nil {
					return sample{}, err
				}
				if err := p.login(user, e.password); err != nil {
					return sample{}, err
				}
				if _, err := p.cmd("STAT"); err != nil {
					return sample{}, err
				}
				if _, _, err := p.multiCmd("UIDL"); err != nil {
					return sample{}, err
				}
				if _, err := p.list(); err != nil {
					return sample{}, err
				}
				total += time.Since(t0)
				p.quit()
			}
			d := total / time.Duration(k)
			return sample{Value: d.Seconds(), Seconds: d.Seconds()}, nil
		},
	}
}

// downloadScenario: every message of user, depth RETRs (or UID FETCHes)
// in flight. Value in MB/s of message octets.
func downloadScenario(name, user string, depth int) *scenario {
	return &scenario{
		Name: name, Unit: "MB/s", Higher: true, Systems: []string{sysGW, sysBase, sysIMAP, sysPOP, sysImapc, sysRelay},
		Desc:    fmt.Sprintf("full download, %d in flight (%s)", depth, user),
		Targets: map[string]float64{sysGW + "/" + sysPOP: 0.9, sysGW + "/" + sysImapc: 2},
		run: func(e *env, sys string) (sample, error) {
			return download(e, sys, user, depth, "RETR", "BODY.PEEK[]")
		},
	}
}

// topScenario: TOP n 0 over the whole mailbox, one at a time, against
// BODY.PEEK[HEADER]. Value in messages per second.
func topScenario(name, user string) *scenario {
	return &scenario{
		Name: name, Unit: "msg/s", Higher: true, Systems: []string{sysGW, sysBase, sysIMAP, sysPOP},
		Desc:    fmt.Sprintf("TOP n 0 over the mailbox vs BODY.PEEK[HEADER] (%s)", user),
		Targets: map[string]float64{sysGW + "/" + sysIMAP: 0.8},
		run: func(e *env, sys string) (sample, error) {
			s, err := download(e, sys, user, 1, "TOP", "BODY.PEEK[HEADER]")
			if err == nil {
				s.Value = float64(s.Bytes) / s.Seconds // Bytes holds the message count here
			}
			return s, err
		},
	}
}

func download(e *env, sys, user string, depth int, popCmd, imapItem string) (sample, error) {
	var s sample
	m := startMeter(e, sys)
	var n int64
	var d time.Duration
	count := 0
	if sys == sysIMAP {
		c, err := dialIMAP(e.imapAddr)
		if err != nil {
			return s, err
		}
		if err := c.login(user, e.password); err != nil {
			return s, err
		}
		uids, _, err := c.snapshot()
		if err != nil {
			return s, err
		}
		t0 := time.Now()
		n, err = c.fetchAll(uids, imapItem, depth, nil)
		d = time.Since(t0)
		if err != nil {
			return s, err
		}
		count = len(uids)
		c.logout()
	} else {
		p, err := dialPOP(e.popFor(sys))
		if err != nil {
			return s, err
		}
		if err := p.login(user, e.password); err != nil {
			return s, err
		}
		sizes, err := p.list()
		if err != nil {
			return s, err
		}
		idx := make([]int, len(sizes))
		for i := range idx {
			idx[i] = i
		}
		cmd := "RETR"
		if popCmd == "TOP" {
			cmd = "TOP"
			// "TOP n 0": the message number is formatted by retrAll.
		}
		t0 := time.Now()
		n, err = p.retrAllCmd(cmd, idx, sizes, depth, nil)
		d = time.Since(t0)
		if err != nil {
			return s, fmt.Errorf("%s: %w", sys, err)
		}
		count = len(sizes)
		p.quit()
	}
	m.stop(&s)
	s.Seconds = d.Seconds()
	s.Bytes = n
	s.Value = float64(n) / 1e6 / d.Seconds()
	if popCmd == "TOP" {
		s.Bytes = int64(count)
	}
	return s, nil
}

// concScenario: n sessions at once, session i as users[i%len(users)]; each
// logs in, lists, and downloads its first perSession messages one RETR at
// a time. Value: aggregate MB/s; p50/p99 of the RETR latencies.
func concScenario(name string, n int, users []string, perSession int, target float64) *scenario {
	return &scenario{
		Name: name, Unit: "MB/s", Higher: true, Systems: []string{sysGW, sysBase, sysIMAP, sysPOP, sysRelay},
		Desc:    fmt.Sprintf("%d concurrent sessions, %d messages each", n, perSession),
		Targets: map[string]float64{sysGW + "/" + sysPOP: target},
		run: func(e *env, sys string) (sample, error) {
			return concurrent(e, sys, n, users, perSession)
		},
	}
}

// concurrent runs n sessions of concSession at once and measures them.
func concurrent(e *env, sys string, n int, users []string, perSession int) (sample, error) {
	var s sample
	m := startMeter(e, sys)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var total int64
	var firstErr error
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l []time.Duration
			b, err := concSession(e, sys, users[i%len(users)], perSession, start, &l)
			mu.Lock()
			defer mu.Unlock()
			total += b
			lat = append(lat, l...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	d := time.Since(t0)
	if firstErr != nil {
		return s, firstErr
	}
	m.stop(&s)
	s.Seconds, s.Bytes = d.Seconds(), total
	s.Value = float64(total) / 1e6 / d.Seconds()
	s.P50ms, s.P99ms = percentile(lat, 0.50), percentile(lat, 0.99)
	return s, nil
}

func concSession(e *env, sys, user string, k int, start <-chan struct{}, lat *[]time.Duration) (int64, error) {
	<-start
	if sys == sysIMAP {
		c, err := dialIMAP(e.imapAddr)
		if err != nil {
			return 0, err
		}
		defer c.logout()
		if err := c.login(user, e.password); err != nil {
			return 0, err
		}
		uids, _, err := c.snapshot()
		if err != nil {
			return 0, err
		}
		return c.fetchAll(uids[:min(k, len(uids))], "BODY.PEEK[]", 1, lat)
	}
	p, err := dialPOP(e.popFor(sys))
	if err != nil {
		return 0, err
	}
	defer p.quit()
	if err := p.login(user, e.password); err != nil {
		return 0, err
	}
	if _, err := p.cmd("STAT"); err != nil {
		return 0, err
	}
	if _, _, err := p.multiCmd("UIDL"); err != nil {
		return 0, err
	}
	sizes, err := p.list()
	if err != nil {
		return 0, err
	}
	idx := make([]int, min(k, len(sizes)))
	for i := range idx {
		idx[i] = i
	}
	return p.retrAllCmd("RETR", idx, sizes, 1, lat)
}

func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return float64(s[i]) / 1e6
}
