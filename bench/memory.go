package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// memResult is the memory scenario: RSS of the gateway process in KiB.
type memResult struct {
	RestKiB         int64   `json:"rest_kib"`
	IdleSessions    int     `json:"idle_sessions"`
	IdleBeforeKiB   int64   `json:"idle_before_kib"`
	IdleAfterKiB    int64   `json:"idle_after_kib"`
	PerIdleKiB      float64 `json:"per_idle_session_kib"`
	Streams         int     `json:"streams"`
	StreamSizeBytes int64   `json:"stream_size_bytes"`
	PeakGrowthKiB   []int64 `json:"peak_growth_kib"` // per repeat, VmHWM - RSS before
	SampledKiB      []int64 `json:"sampled_growth_kib"`
	PeakGrowthMed   int64   `json:"peak_growth_median_kib"`
}

const settle = 500 * time.Millisecond

// measureMemory runs on fresh gateway processes: RSS at rest; RSS growth
// per authenticated idle session; peak RSS growth while 8 sessions each
// stream a 5 MB message at once.
func measureMemory(e *env, user string, idle, nbig int, out io.Writer) (*memResult, error) {
	fmt.Fprintf(out, "memory:")
	r := &memResult{IdleSessions: idle}
	if err := e.restart(); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	pid := e.gw.PID()
	r.RestKiB, _, _ = rssKiB(pid)

	// Which messages are big, from LIST; and a warm-up session.
	sizes, err := warmUp(e, user)
	if err != nil {
		return nil, err
	}
	var big []int
	for i, s := range sizes {
		if s > 1<<20 {
			big = append(big, i)
		}
	}

	// Idle sessions: logged in, snapshot taken, STAT answered.
	time.Sleep(settle)
	r.IdleBeforeKiB, _, _ = rssKiB(pid)
	conns := make([]*popConn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.quit()
		}
	}()
	for range idle {
		p, err := dialPOP(e.gw.Addr())
		if err != nil {
			return nil, err
		}
		conns = append(conns, p)
		if err := p.login(user, e.password); err != nil {
			return nil, err
		}
		if _, err := p.cmd("STAT"); err != nil {
			return nil, err
		}
	}
	time.Sleep(settle)
	r.IdleAfterKiB, _, _ = rssKiB(pid)
	r.PerIdleKiB = float64(r.IdleAfterKiB-r.IdleBeforeKiB) / float64(idle)
	for _, c := range conns {
		c.quit()
	}
	conns = conns[:0]
	fmt.Fprintf(out, " idle")

	// Concurrent large streams.
	streams := min(8, len(big))
	r.Streams = streams
	if streams > 0 {
		r.StreamSizeBytes = sizes[big[0]]
	}
	for rep := 0; rep < 3 && streams > 0; rep++ {
		if err := e.restart(); err != nil {
			return nil, err
		}
		pid := e.gw.PID()
		if _, err := warmUp(e, user); err != nil {
			return nil, err
		}
		time.Sleep(settle)
		before, _, _ := rssKiB(pid)
		hwmOK := resetHWM(pid) == nil
		sp := samplePeak(pid)
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := dialPOP(e.gw.Addr())
				if err != nil {
					errs <- err
					return
				}
				defer p.quit()
				if err := p.login(user, e.password); err != nil {
					errs <- err
					return
				}
				if _, err := p.retrAllCmd("RETR", []int{big[i]}, sizes, 1, nil); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		sampled := sp.end()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		_, hwm, _ := rssKiB(pid)
		if !hwmOK {
			hwm = sampled
		}
		r.PeakGrowthKiB = append(r.PeakGrowthKiB, hwm-before)
		r.SampledKiB = append(r.SampledKiB, sampled-before)
		fmt.Fprintf(out, " streams")
	}
	if len(r.PeakGrowthKiB) > 0 {
		s := slices.Clone(r.PeakGrowthKiB)
		slices.Sort(s)
		r.PeakGrowthMed = s[len(s)/2]
	}
	fmt.Fprintln(out)
	return r, nil
}

// warmUp runs one short session (LIST, RETR 1) and returns LIST's sizes.
func warmUp(e *env, user string) ([]int64, error) {
	p, err := dialPOP(e.gw.Addr())
	if err != nil {
		return nil, err
	}
	defer p.quit()
	if err := p.login(user, e.password); err != nil {
		return nil, err
	}
	sizes, err := p.list()
	if err != nil {
		return nil, err
	}
	_, err = p.retrAllCmd("RETR", []int{0}, sizes, 1, nil)
	return sizes, err
}
