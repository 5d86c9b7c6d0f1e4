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
// the same load. Not part of the default run (-scenarios conc1k): it
// holds about 2,000 Dovecot processes at once.
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
			if err != nil {
				return s, err
			}
			if sys == sysGW && pid != 0 {
				time.Sleep(200 * time.Millisecond)
				rss1, _, _ := rssKiB(pid)
				s.RSSIdleKiB = float64(rss1-rss0) / float64(idle)
				resetHWM(pid)
				rss0 = rss1
			}
			s2, err := concurrent(e, sys, active, users, perSession)
			if err != nil {
				return s, err
			}
			s2.RSSIdleKiB = s.RSSIdleKiB
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
				conns[i] = p
				if err = p.login(users[i%len(users)], e.password); err == nil {
					_, err = p.cmd("STAT")
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
