package main

// The "servers" scenario: the same mailbox on Dovecot and on
// each of GNU Mailutils imap4d, Cyrus IMAP and Courier-IMAP that can start
// (internal/upstreams), a gateway in front of each, and per server the
// time of a full download one RETR at a time, 16 RETRs in flight, and a
// naive direct IMAP client that sends one UID FETCH per message and waits
// for each. The non-Dovecot servers stall about 43 ms per FETCH round trip
// with a client that delays ACKs (server-side Nagle); the gateway keeps
// fetches in flight so that a download does not pay it per message.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/popbridge/popbridge/internal/upstreams"
)

// Modes measured per server.
const (
	modeGW1  = "gateway-retr1"  // one RETR at a time through the gateway
	modeGW16 = "gateway-retr16" // 16 RETRs in flight through the gateway
	modeIMAP = "imap-fetch1"    // direct IMAP, one UID FETCH (BODY.PEEK[]) at a time
)

var serverModes = []string{modeGW1, modeGW16, modeIMAP}

// serversUser is the account seeded on every server.
const serversUser = "srv"

// The non-Dovecot servers, in table order after Dovecot.
var otherServers = []string{"mailutils", "cyrus", "courier"}

// serverMessage is message i of the servers scenario's mailbox: the same
// deterministic 4 KB text messages on every server.
func serverMessage(i int) []byte { return textMessage(uint64(900000+i), 4096) }

// serverTarget is one upstream the servers scenario measures.
type serverTarget struct {
	name, version string
	imapAddr      string
	login         string // login name (mailutils: user@domain)
	gw            gateway
	log           func() string // what the server logged; nil for Dovecot
}

// serverResult is one server's line in the table and the JSON.
type serverResult struct {
	Server   string `json:"server"`
	Version  string `json:"version,omitempty"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"` // octets of one full download
	// Seconds: per mode, the download time of each round (first RETR or
	// FETCH sent to the last body read; login, LIST and the IMAP snapshot
	// are not timed).
	Seconds map[string][]float64 `json:"seconds"`
	Median  map[string]float64   `json:"median_seconds"`
	MsPer   map[string]float64   `json:"ms_per_message"`
	// Ratios: per round, gateway time / direct IMAP time (lower is better).
	Ratios map[string]stat `json:"ratios_to_imap"`
	// Slow: per mode, per round, how many RETRs or FETCHes took 30 ms or
	// more (from sent to last octet read): the round trips that stalled.
	// With 16 in flight a latency includes waiting behind the others, so
	// only the one-at-a-time modes count stalls.
	Slow map[string][]int `json:"slow_ops"`
}

// serversResult is the scenario's part of the results.
type serversResult struct {
	Messages int             `json:"messages"`
	Rounds   int             `json:"rounds"`
	Servers  []*serverResult `json:"servers"`
	NotRun   []string        `json:"not_run,omitempty"` // servers that could not start, and why
}

type prefixHost struct {
	w      io.Writer
	prefix string
}

func (h prefixHost) Logf(format string, args ...any) {
	fmt.Fprintf(h.w, h.prefix+format+"\n", args...)
}

// startOthers starts each non-Dovecot server that can start, seeds it
// with n messages by IMAP APPEND and starts a gateway in front of it with
// newGW. A server that cannot start is reported and left out. stop stops
// everything started.
func startOthers(n int, password string, newGW func(name, upstream string) (gateway, error), out io.Writer) (ts []*serverTarget, notRun []string, stop func()) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = serverMessage(i)
	}
	for _, name := range otherServers {
		t0 := time.Now()
		s, sstop, err := upstreams.StartForBench(prefixHost{os.Stderr, name + ": "}, name, upstreams.User{Name: serversUser, Password: password})
		if err != nil {
			why := fmt.Sprintf("%s: %v", name, err)
			fmt.Fprintf(out, "note: servers: %s cannot start, continuing without it: %v\n", name, firstLine(err.Error()))
			notRun = append(notRun, firstLine(why))
			continue
		}
		stops = append(stops, sstop)
		if err := s.AppendForBench(serversUser, "INBOX", msgs...); err != nil {
			fmt.Fprintf(out, "note: servers: seeding %s failed, continuing without it: %v\n", name, firstLine(err.Error()))
			notRun = append(notRun, firstLine(fmt.Sprintf("%s: seeding: %v", name, err)))
			continue
		}
		g, err := newGW(name, s.Addr())
		if err != nil {
			fmt.Fprintf(out, "note: servers: no gateway in front of %s, continuing without it: %v\n", name, firstLine(err.Error()))
			notRun = append(notRun, firstLine(fmt.Sprintf("%s: gateway: %v", name, err)))
			continue
		}
		stops = append(stops, g.Close)
		fmt.Fprintf(out, "servers: %s (%s) on %s, %d messages appended in %.1fs\n", name, s.Version, s.Addr(), n, time.Since(t0).Seconds())
		ts = append(ts, &serverTarget{name: name, version: s.Version, imapAddr: s.Addr(), login: s.Login(serversUser), gw: g, log: s.Log})
	}
	return ts, notRun, stop
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// slowOp is the latency from which a RETR or FETCH counts as stalled: a
// loopback round trip takes well under a millisecond, a delayed ACK about
// 40.
const slowOp = 30 * time.Millisecond

// measureServer runs one mode once against t: the download time, the
// octets and messages received, and each RETR's or FETCH's latency (sent
// to last octet read) in lat. Every RETR's size is checked against LIST.
func measureServer(t *serverTarget, mode, password string, lat *[]time.Duration) (time.Duration, int64, int, error) {
	if mode == modeIMAP {
		c, err := dialIMAP(t.imapAddr)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("connect: %w", err)
		}
		defer c.logout()
		if err := c.login(t.login, password); err != nil {
			return 0, 0, 0, fmt.Errorf("LOGIN: %w", err)
		}
		uids, _, err := c.snapshot()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("EXAMINE, UID FETCH 1:*: %w", err)
		}
		t0 := time.Now()
		n, err := c.fetchAll(uids, "BODY.PEEK[]", 1, lat)
		if err != nil {
			err = fmt.Errorf("UID FETCH one at a time: %w", err)
		}
		return time.Since(t0), n, len(uids), err
	}
	depth := 1
	if mode == modeGW16 {
		depth = 16
	}
	p, err := dialPOP(t.gw.Addr())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("connect: %w", err)
	}
	defer p.quit()
	if err := p.login(t.login, password); err != nil {
		return 0, 0, 0, fmt.Errorf("USER/PASS: %w", err)
	}
	sizes, err := p.list()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("LIST: %w", err)
	}
	idx := make([]int, len(sizes))
	for i := range idx {
		idx[i] = i
	}
	t0 := time.Now()
	n, err := p.retrAllCmd("RETR", idx, sizes, depth, lat)
	return time.Since(t0), n, len(sizes), err
}

// runServers measures every target, interleaved: in each round every
// server in turn, each in every mode. A warm-up round of the 16-deep
// gateway download comes first and is discarded.
func runServers(ts []*serverTarget, rounds int, password string, out io.Writer) (*serversResult, error) {
	res := &serversResult{Rounds: rounds}
	byName := map[string]*serverResult{}
	for _, t := range ts {
		r := &serverResult{Server: t.name, Version: t.version, Seconds: map[string][]float64{}, Slow: map[string][]int{}}
		byName[t.name] = r
		res.Servers = append(res.Servers, r)
	}
	for round := 0; round <= rounds; round++ {
		if round == 0 {
			fmt.Fprintf(out, "servers warm-up:")
		} else {
			fmt.Fprintf(out, "servers round %d/%d:", round, rounds)
		}
		for _, t := range ts {
			r := byName[t.name]
			modes := serverModes
			if round == 0 {
				modes = []string{modeGW16}
			}
			for _, mode := range modes {
				var lat []time.Duration
				d, n, count, err := measureServer(t, mode, password, &lat)
				if err != nil {
					if t.log != nil {
						err = fmt.Errorf("%w\n%s's log ends:\n%s", err, t.name, lastLines(t.log(), 15))
					}
					return nil, fmt.Errorf("servers: %s, %s: %w", t.name, mode, err)
				}
				if round == 0 {
					r.Messages, r.Bytes = count, n
					continue
				}
				if count != r.Messages || n != r.Bytes {
					return nil, fmt.Errorf("servers: %s, %s: %d messages, %d octets; the warm-up download had %d, %d",
						t.name, mode, count, n, r.Messages, r.Bytes)
				}
				r.Seconds[mode] = append(r.Seconds[mode], d.Seconds())
				slow := 0
				for _, l := range lat {
					if l >= slowOp {
						slow++
					}
				}
				r.Slow[mode] = append(r.Slow[mode], slow)
			}
			fmt.Fprintf(out, " %s", t.name)
		}
		fmt.Fprintln(out)
	}
	for _, r := range res.Servers {
		res.Messages = max(res.Messages, r.Messages)
		r.finish()
	}
	return res, nil
}

func (r *serverResult) finish() {
	r.Median, r.MsPer, r.Ratios = map[string]float64{}, map[string]float64{}, map[string]stat{}
	for mode, v := range r.Seconds {
		r.Median[mode] = median(v)
		if r.Messages > 0 {
			r.MsPer[mode] = r.Median[mode] * 1000 / float64(r.Messages)
		}
	}
	imap := r.Seconds[modeIMAP]
	for _, mode := range []string{modeGW1, modeGW16} {
		gw := r.Seconds[mode]
		var ratios []float64
		for i := range min(len(gw), len(imap)) {
			if imap[i] > 0 {
				ratios = append(ratios, gw[i]/imap[i])
			}
		}
		if len(ratios) > 0 {
			r.Ratios[mode] = stat{Median: median(ratios), Min: slices.Min(ratios), Max: slices.Max(ratios), N: len(ratios)}
		}
	}
}

// print writes the per-server table.
func (s *serversResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nservers: full download of %d x 4 KB through the gateway (1 or 16 RETRs in flight) and by direct IMAP "+
		"(one UID FETCH (BODY.PEEK[]) at a time, waiting for each); %d interleaved rounds after a warm-up; "+
		"download time (median), ms per message, gateway/direct IMAP time per round: median [min-max]; "+
		"stalled: RETRs (one at a time) or FETCHes that took 30 ms or more, median per download\n\n", s.Messages, s.Rounds)
	rows := [][]string{{"server", "gateway retr1", "gateway retr16", "direct IMAP", "retr1/IMAP", "retr16/IMAP", "stalled (retr1 / IMAP)"}}
	cell := func(r *serverResult, mode string) string {
		if _, ok := r.Median[mode]; !ok {
			return "-"
		}
		return fmt.Sprintf("%s (%.2f ms/msg)", fmtVal(r.Median[mode], "s"), r.MsPer[mode])
	}
	ratio := func(r *serverResult, mode string) string {
		st, ok := r.Ratios[mode]
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.3fx [%.3f-%.3f]", st.Median, st.Min, st.Max)
	}
	for _, r := range s.Servers {
		var slow []string
		for _, mode := range []string{modeGW1, modeIMAP} {
			v := make([]float64, len(r.Slow[mode]))
			for i, n := range r.Slow[mode] {
				v[i] = float64(n)
			}
			slow = append(slow, fmt.Sprintf("%g", median(v)))
		}
		rows = append(rows, []string{r.Server, cell(r, modeGW1), cell(r, modeGW16), cell(r, modeIMAP), ratio(r, modeGW1), ratio(r, modeGW16),
			strings.Join(slow, " / ")})
	}
	printTable(w, rows)
	for _, r := range s.Servers {
		if r.Version != "" {
			fmt.Fprintf(w, "%s: %s\n", r.Server, r.Version)
		}
	}
	for _, n := range s.NotRun {
		fmt.Fprintf(w, "not measured: %s\n", n)
	}
}

// printTable writes rows as aligned columns, the first row as a header.
func printTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, rw := range rows {
		for i, c := range rw {
			widths[i] = max(widths[i], len(c))
		}
	}
	for i, rw := range rows {
		var b strings.Builder
		for j, c := range rw {
			fmt.Fprintf(&b, "%-*s  ", widths[j], c)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if i == 0 {
			var sep strings.Builder
			for j := range rw {
				sep.WriteString(strings.Repeat("-", widths[j]) + "  ")
			}
			fmt.Fprintln(w, strings.TrimRight(sep.String(), " "))
		}
	}
}
