package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

type results struct {
	Machine   map[string]string `json:"machine"`
	Rounds    int               `json:"rounds"`
	Quick     bool              `json:"quick"`
	NoWarmup  bool              `json:"no_warmup,omitempty"`
	SeedSecs  float64           `json:"seed_seconds"`
	Mailboxes string            `json:"mailboxes"`
	Gateway   string            `json:"gateway"`
	Imapc     string            `json:"dovecot_imapc,omitempty"` // how it ran, or why not
	Baseline  string            `json:"baseline,omitempty"`      // the -baseline revision, resolved
	Rows      []*row            `json:"rows"`
	Memory    *memResult        `json:"memory,omitempty"`
	Servers   *serversResult    `json:"servers,omitempty"`
	// Ceilings: per scenario, what a gateway costing no CPU would score
	// against Dovecot's POP3 on these shared cores (see ceilings).
	Ceilings map[string]ceiling `json:"ceilings,omitempty"`

	byName map[string]*row
}

// row is one line of the table: one metric for every system, and the
// per-round ratios of the gateway to the others.
type row struct {
	Name    string               `json:"name"`
	Desc    string               `json:"desc"`
	Unit    string               `json:"unit"`
	Higher  bool                 `json:"higher_is_better"`
	Samples map[string][]sample  `json:"samples,omitempty"`
	Values  map[string][]float64 `json:"values"`
	Median  map[string]float64   `json:"median"`
	Ratios  map[string]stat      `json:"ratios"`
	Targets map[string]float64   `json:"targets,omitempty"`
	Met     map[string]bool      `json:"met,omitempty"`
}

type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func (r *results) row(name, desc, unit string, higher bool, targets map[string]float64) *row {
	if r.byName == nil {
		r.byName = map[string]*row{}
	}
	if x := r.byName[name]; x != nil {
		return x
	}
	x := &row{Name: name, Desc: desc, Unit: unit, Higher: higher, Targets: targets,
		Samples: map[string][]sample{}, Values: map[string][]float64{}}
	r.byName[name] = x
	r.Rows = append(r.Rows, x)
	return x
}

func (x *row) put(sys string, round int, v float64) {
	vs := x.Values[sys]
	for len(vs) <= round {
		vs = append(vs, 0)
	}
	vs[round] = v
	x.Values[sys] = vs
}

// add records one sample, with the derived rows (CPU per GB, latencies).
func (r *results) add(sc *scenario, sys string, round int, s sample) {
	x := r.row(sc.Name, sc.Desc, sc.Unit, sc.Higher, sc.Targets)
	x.Samples[sys] = append(x.Samples[sys], s)
	x.put(sys, round, s.Value)
	if s.Bytes > 0 && sc.Unit == "MB/s" && (s.UpCPU > 0 || s.GWCPU > 0) {
		gb := float64(s.Bytes) / 1e9
		c := r.row(sc.Name+" cpu", "CPU s per GB served (gateway process + upstream processes) in "+sc.Name, "CPU s/GB", false, nil)
		c.put(sys, round, (s.GWCPU+s.UpCPU)/gb)
		if sys == sysGW || sys == sysBase || sys == sysRelay {
			g := r.row(sc.Name+" cpu-gw", "CPU s per GB of the gateway process alone in "+sc.Name, "CPU s/GB", false, nil)
			g.put(sys, round, s.GWCPU/gb)
			cl := r.row(sc.Name+" cpu-client", "CPU s per GB of the benchmark client in "+sc.Name, "CPU s/GB", false, nil)
			cl.put(sys, round, s.ClientCPU/gb)
		}
	}
	if s.Bytes > 0 && sc.Unit == "MB/s" && (sys == sysGW || sys == sysBase) && s.UpCPU > 0 {
		// What Dovecot spends serving the gateway: with the gateway at
		// zero cost, throughput on shared cores would be bounded by it.
		r.row(sc.Name+" cpu-up", "CPU s per GB of Dovecot's processes serving the gateway in "+sc.Name, "CPU s/GB", false, nil).
			put(sys, round, s.UpCPU/(float64(s.Bytes)/1e9))
	}
	if s.RSSIdleKiB != 0 {
		r.row(sc.Name+" rss/idle", "gateway RSS growth per idle logged-in session in "+sc.Name, "KiB", false, nil).put(sys, round, s.RSSIdleKiB)
	}
	if s.PeakGrowthMiB != 0 {
		r.row(sc.Name+" rss peak", "gateway peak RSS growth while the active sessions download in "+sc.Name, "MiB", false, nil).put(sys, round, s.PeakGrowthMiB)
	}
	if s.P50ms > 0 {
		var t map[string]float64
		if sc.Name == "conc8" {
			t = map[string]float64{sysGW + "/" + sysPOP: 1.5}
		}
		r.row(sc.Name+" p50", "median RETR/FETCH latency in "+sc.Name, "ms", false, t).put(sys, round, s.P50ms)
		r.row(sc.Name+" p99", "99th percentile RETR/FETCH latency in "+sc.Name, "ms", false, nil).put(sys, round, s.P99ms)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) finish() {
	defer r.ceilings()
	for _, x := range r.Rows {
		x.Median = map[string]float64{}
		x.Ratios = map[string]stat{}
		for sys, v := range x.Values {
			x.Median[sys] = median(v)
		}
		gw := x.Values[sysGW]
		for _, other := range []string{sysIMAP, sysPOP, sysImapc, sysBase, sysRelay} {
			ov := x.Values[other]
			var ratios []float64
			for i := range min(len(gw), len(ov)) {
				if ov[i] > 0 && gw[i] > 0 {
					ratios = append(ratios, gw[i]/ov[i])
				}
			}
			if len(ratios) == 0 {
				continue
			}
			key := sysGW + "/" + other
			x.Ratios[key] = stat{Median: median(ratios), Min: slices.Min(ratios), Max: slices.Max(ratios), N: len(ratios)}
			if t, ok := x.Targets[key]; ok {
				if x.Met == nil {
					x.Met = map[string]bool{}
				}
				m := x.Ratios[key].Median
				x.Met[key] = x.Higher && m >= t || !x.Higher && m <= t
			}
		}
	}
}

func fmtVal(v float64, unit string) string {
	switch {
	case v == 0:
		return "-"
	case unit == "s" && v < 1:
		return fmt.Sprintf("%.1f ms", v*1000)
	case unit == "s":
		return fmt.Sprintf("%.2f s", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func fmtRatio(x *row, key string) string {
	st, ok := x.Ratios[key]
	if !ok {
		return "-"
	}
	s := fmt.Sprintf("%.2fx [%.2f-%.2f]", st.Median, st.Min, st.Max)
	if t, ok := x.Targets[key]; ok {
		op := "<="
		if x.Higher {
			op = ">="
		}
		mark := "MET"
		if !x.Met[key] {
			mark = "MISSED"
		}
		s += fmt.Sprintf(" (%s%.1f %s)", op, t, mark)
	}
	return s
}

// print writes the one table of results.
func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\npopbridge benchmark: %s CPUs (%s), %s, %s, %s; gateway: %s\n",
		r.Machine["cpus"], r.Machine["cpu"], r.Machine["go"], "Dovecot "+r.Machine["dovecot"], "kernel "+r.Machine["kernel"], r.Gateway)
	if r.Mailboxes != "" {
		fmt.Fprintf(w, "mailboxes: %s\n", r.Mailboxes)
	}
	if len(r.Rows) == 0 && r.Memory == nil {
		if r.Servers != nil {
			r.Servers.print(w)
		}
		return
	}
	warm := "after a warm-up"
	if r.NoWarmup {
		warm = "without a warm-up"
	}
	fmt.Fprintf(w, "%d interleaved rounds %s; medians, ratios are per-round gateway/other: median [min-max]\n", r.Rounds, warm)
	if r.Imapc != "" {
		fmt.Fprintf(w, "Dovecot imapc: %s\n", r.Imapc)
	}
	if r.Baseline != "" {
		fmt.Fprintf(w, "baseline: the gateway built from %s, a separate process run in the same rounds\n", r.Baseline)
	}
	fmt.Fprintln(w)
	rows := [][]string{{"scenario", "unit", "gateway", "direct IMAP", "Dovecot POP3", "Dovecot imapc", "gateway/IMAP", "gateway/POP3", "gateway/imapc", "baseline", "gateway/baseline", "relay", "gateway/relay"}}
	imapc, base, relay := false, false, false
	for _, x := range r.Rows {
		unit := x.Unit
		if x.Higher {
			unit += " ^"
		} else {
			unit += " v"
		}
		imapc = imapc || len(x.Values[sysImapc]) > 0
		base = base || len(x.Values[sysBase]) > 0
		relay = relay || len(x.Values[sysRelay]) > 0
		rows = append(rows, []string{x.Name, unit,
			fmtVal(x.Median[sysGW], x.Unit), fmtVal(x.Median[sysIMAP], x.Unit), fmtVal(x.Median[sysPOP], x.Unit), fmtVal(x.Median[sysImapc], x.Unit),
			fmtRatio(x, sysGW+"/"+sysIMAP), fmtRatio(x, sysGW+"/"+sysPOP), fmtRatio(x, sysGW+"/"+sysImapc),
			fmtVal(x.Median[sysBase], x.Unit), fmtRatio(x, sysGW+"/"+sysBase),
			fmtVal(x.Median[sysRelay], x.Unit), fmtRatio(x, sysGW+"/"+sysRelay)})
	}
	if m := r.Memory; m != nil {
		rows = append(rows,
			[]string{"rss at rest", "MiB", fmt.Sprintf("%.1f", float64(m.RestKiB)/1024)},
			[]string{fmt.Sprintf("peak growth %dx%.0fMB", m.Streams, float64(m.StreamSizeBytes)/1e6), "MiB v",
				fmt.Sprintf("%.1f", float64(m.PeakGrowthMed)/1024), "", "", "", "", target(float64(m.PeakGrowthMed)/1024 <= 24, "<=24 MiB")},
			[]string{fmt.Sprintf("per idle session (%d)", m.IdleSessions), "KiB v",
				fmt.Sprintf("%.0f", m.PerIdleKiB), "", "", "", "", target(m.PerIdleKiB <= 256, "<=256 KiB")},
		)
	}
	for i, rw := range rows {
		for len(rw) < len(rows[0]) {
			rw = append(rw, "")
		}
		// Columns of systems that did not run are left out.
		kept := rw[:5:5]
		if imapc {
			kept = append(kept, rw[5])
		}
		kept = append(kept, rw[6:8]...)
		if imapc {
			kept = append(kept, rw[8])
		}
		if base {
			kept = append(kept, rw[9:11]...)
		}
		if relay {
			kept = append(kept, rw[11:13]...)
		}
		rows[i] = kept
	}
	printTable(w, rows)
	if len(r.Ceilings) > 0 {
		fmt.Fprintln(w, "\nCeiling on these shared cores: Dovecot POP3's CPU/GB over Dovecot's CPU/GB serving the gateway (a gateway costing nothing would reach this ratio to Dovecot POP3), per round:")
		for _, x := range r.Rows {
			if c, ok := r.Ceilings[x.Name]; ok {
				fmt.Fprintf(w, "  %-8s ceiling %.2fx [%.2f-%.2f]; gateway/POP3 is %.0f%% [%.0f-%.0f] of it\n", x.Name,
					c.Ceiling.Median, c.Ceiling.Min, c.Ceiling.Max, 100*c.Of.Median, 100*c.Of.Min, 100*c.Of.Max)
			}
		}
	}
	fmt.Fprintln(w, "\n^ higher is better, v lower is better. CPU rows: gateway = gateway process + Dovecot's processes; imapc = both Dovecot instances' processes; others = Dovecot's processes.")
	if relay {
		fmt.Fprintln(w, "relay: a bare byte relay process in front of Dovecot POP3 (reads and writes every octet, 128 KiB buffer, nothing else); its cpu-gw row is the floor of any POP3 gateway's own CPU per GB here.")
	}
	if r.Servers != nil {
		r.Servers.print(w)
	}
}

func target(ok bool, t string) string {
	if ok {
		return "(" + t + " MET)"
	}
	return "(" + t + " MISSED)"
}

func (r *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ceiling is, per round, Dovecot POP3's CPU per GB over what Dovecot's
// IMAP side spent per GB serving the gateway: with everything on the same
// cores and the cores the bottleneck, a gateway that cost nothing would
// reach that fraction of Dovecot POP3's throughput. Of is the gateway's
// measured gateway/POP3 ratio over the ceiling, per round.
type ceiling struct {
	Ceiling stat `json:"ceiling"`
	Of      stat `json:"gateway_share_of_ceiling"`
}

func (r *results) ceilings() {
	for _, x := range r.Rows {
		up, cpu := r.byName[x.Name+" cpu-up"], r.byName[x.Name+" cpu"]
		if up == nil || cpu == nil {
			continue
		}
		gu, pc, gw, pop := up.Values[sysGW], cpu.Values[sysPOP], x.Values[sysGW], x.Values[sysPOP]
		var cs, of []float64
		for i := range min(len(gu), len(pc), len(gw), len(pop)) {
			if gu[i] > 0 && pc[i] > 0 && pop[i] > 0 {
				c := pc[i] / gu[i]
				cs = append(cs, c)
				of = append(of, gw[i]/pop[i]/c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		if r.Ceilings == nil {
			r.Ceilings = map[string]ceiling{}
		}
		r.Ceilings[x.Name] = ceiling{Ceiling: statOf(cs), Of: statOf(of)}
	}
}

func statOf(v []float64) stat {
	return stat{Median: median(v), Min: slices.Min(v), Max: slices.Max(v), N: len(v)}
}
