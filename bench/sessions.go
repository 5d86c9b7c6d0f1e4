package main

import (
	"fmt"
	"sync"
	"time"
)

// conc1kScenario: idle+active sessions logged in at once, as an office of
// devices would keep them: the idle ones log in, STAT and wait; then the
// active ones download perSession messages each, one RETR at a time, as
// in concScenario. Value: the active sessions' aggregate MB/s, with p50
// and p99 RETR latency; for the gateway also its RSS per idle session
// and its peak RSS growth during the downloads. Dovecot's own POP3 gets
// the same load. The active sessions log in (and list) before the clock
// starts, 16 at a time like the idle ones: 64 simultaneous logins onto
// a Dovecot already running a thousand processes on a busy machine can
// exceed the gateway's 10 s connect timeout, which is not what this
// measures. Up to 5% of the idle logins may fail (counted). Not part of
// the default run (-scenarios conc1k): it holds about 2,000 Dovecot
// processes at once and takes minutes per round.
func conc1kScenario(name string, idle, active int, users []string, perSession int) *scenario {
	return &scenario{
		Name: name, Unit: "MB/s", Higher: true, Systems: []string{sysGW, sysPOP},
		Desc: fmt.Sprintf("%d sessions logged in, %d of them downloading %d messages each", idle+active, active, perSession),
		run: func(e *env, sys string) (sample, error) {
			var s sample
			if sys == sysGW && e.restart != nil {
				// A fresh process: RSS growth is then this run's alone.
				if err := e.restart(); err != nil {
					return s, err
				}
			}
			pid := e.gw.PID()
			var rss0 int64
			if sys == sysGW && pid != 0 {
				rss0, _, _ = rssKiB(pid)
			}
			conns, err := openIdle(e, sys, users, idle)
			defer func() {
				for _, p := range conns {
					p.quit()
				}
			}()
			if len(conns) < idle-idle/20 {
				return s, fmt.Errorf("%d of %d idle sessions logged in: %w", len(conns), idle, err)
			}
			if sys == sysGW && pid != 0 {
				time.Sleep(200 * time.Millisecond)
				rss1, _, _ := rssKiB(pid)
				s.RSSIdleKiB = float64(rss1-rss0) / float64(len(conns))
				resetHWM(pid)
				rss0 = rss1
			}
			act, err := openIdle(e, sys, users, active)
			defer func() {
				for _, p := range act {
					p.quit()
				}
			}()
			if err != nil {
				return s, fmt.Errorf("active sessions: %w", err)
			}
			s2, err := downloadAll(e, sys, act, perSession)
			if err != nil {
				return s, err
			}
			s2.RSSIdleKiB = s.RSSIdleKiB
			s2.IdleSessions = len(conns)
			if sys == sysGW && pid != 0 {
				if _, hwm, err := rssKiB(pid); err == nil {
					s2.PeakGrowthMiB = float64(hwm-rss0) / 1024
				}
			}
			return s2, nil
		},
	}
}

// openIdle logs n sessions in (STAT each), 16 at a time, and leaves them
// open. The sessions opened so far are returned even on error.
func openIdle(e *env, sys string, users []string, n int) ([]*popConn, error) {
	conns := make([]*popConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := dialPOP(e.popFor(sys))
			if err == nil {
				if err = p.login(users[i%len(users)], e.password); err == nil {
					_, err = p.cmd("STAT")
				}
				if err == nil {
					conns[i] = p
				} else {
					p.Close()
				}
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("idle session %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	open := conns[:0]
	for _, p := range conns {
		if p != nil {
			open = append(open, p)
		}
	}
	return open, firstErr
}

// downloadAll has every logged-in session list and download its first k
// messages one RETR at a time, all at once; the sample is the aggregate.
func downloadAll(e *env, sys string, ps []*popConn, k int) (sample, error) {
	type plan struct {
		idx   []int
		sizes []int64
	}
	plans := make([]plan, len(ps))
	for i, p := range ps {
		sizes, err := p.list()
		if err != nil {
			return sample{}, err
		}
		idx := make([]int, min(k, len(sizes)))
		for j := range idx {
			idx[j] = j
		}
		plans[i] = plan{idx, sizes}
	}
	var s sample
	m := startMeter(e, sys)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var total int64
	var firstErr error
	t0 := time.Now()
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l []time.Duration
			b, err := p.retrAllCmd("RETR", plans[i].idx, plans[i].sizes, 1, &l)
			mu.Lock()
			defer mu.Unlock()
			total += b
			lat = append(lat, l...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
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
