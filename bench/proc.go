package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ, 100 on every Linux platform Go supports.
const clkTck = 100

// procCPU returns utime+stime (and, with children, cutime+cstime) of pid
// in seconds.
func procCPU(pid int, children bool) (float64, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	// Fields after the command name: state is field 3 (index 0 here);
	// utime 14, stime 15, cutime 16, cstime 17.
	get := func(field int) float64 {
		v, _ := strconv.ParseFloat(f[field-3], 64)
		return v
	}
	t := get(14) + get(15)
	if children {
		t += get(16) + get(17)
	}
	return t / clkTck, nil
}

func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return strings.Fields(string(b[i+2:])), nil
}

// groupProcs counts the processes in process group pgid.
func groupProcs(pgid int) int {
	n := 0
	ents, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range ents {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		f, err := procStatFields(pid)
		if err != nil || len(f) < 15 {
			continue
		}
		if g, _ := strconv.Atoi(f[5-3]); g == pgid {
			n++
		}
	}
	return n
}

// settleGroup waits (up to 2 s) until process group pgid is back to at
// most base processes: the per-connection processes of finished sessions
// have exited and been reaped, so their CPU time is in the master's
// cutime and cstime (a zombie's own times may read as zero).
func settleGroup(pgid, base int) {
	deadline := time.Now().Add(2 * time.Second)
	for groupProcs(pgid) > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupCPU sums the CPU seconds of every process in process group pgid,
// including the reaped children accounted in each process's cutime and
// cstime. Dovecot's master reaps its per-connection processes, so their
// time is counted once, live or dead.
func groupCPU(pgid int) float64 {
	var total float64
	ents, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range ents {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		f, err := procStatFields(pid)
		if err != nil || len(f) < 15 {
			continue
		}
		// pgrp is field 5.
		if g, _ := strconv.Atoi(f[5-3]); g != pgid {
			continue
		}
		t, _ := procCPU(pid, true)
		total += t
	}
	return total
}

// rssKiB reads VmRSS and VmHWM of pid, in KiB.
func rssKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		var v int64
		switch {
		case strings.HasPrefix(l, "VmRSS:"):
			fmt.Sscan(strings.TrimPrefix(l, "VmRSS:"), &v)
			rss = v
		case strings.HasPrefix(l, "VmHWM:"):
			fmt.Sscan(strings.TrimPrefix(l, "VmHWM:"), &v)
			hwm = v
		}
	}
	return rss, hwm, nil
}

// resetHWM resets pid's peak RSS (VmHWM) to its current RSS.
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakSampler samples RSS every few milliseconds, as a cross-check of
// VmHWM (which clear_refs may not be allowed to reset).
type peakSampler struct {
	stop chan struct{}
	done chan int64
}

func samplePeak(pid int) *peakSampler {
	s := &peakSampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if r, _, err := rssKiB(pid); err == nil && r > peak {
				peak = r
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *peakSampler) end() int64 {
	close(s.stop)
	return <-s.done
}
