package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// metric is one quantity a benchmark case yields per run.
type metric struct {
	name, unit string
	lower      bool // lower is better
}

// benchCase is one row group of the table: a workload on one network.
type benchCase struct {
	bench, name string
	metrics     []metric
	cfg         func(run int) NetConfig
	limit       time.Duration // watchdog for one run
	runs        int           // runs of this case; 0 = Options.Runs
	run         func(sys System) (map[string]float64, error)
}

func cases(o Options) []benchCase {
	var cs []benchCase
	want := func(b string) bool {
		for _, x := range o.Only {
			if x == b {
				return true
			}
		}
		return false
	}
	plain := func(mtu int) func(int) NetConfig {
		return func(int) NetConfig { return NetConfig{MTU: mtu} }
	}
	if want("throughput") {
		for _, mtu := range o.MTUs {
			cs = append(cs, benchCase{
				bench: "throughput", name: fmt.Sprintf("1 conn, MTU %d", mtu),
				metrics: []metric{{"throughput", "Gbit/s", false}, {"cpu", "CPU s/GB", true}, {"link_dropped", "pipe drops/run", true}},
				cfg:     plain(mtu),
				limit:   o.BulkDur + 30*time.Second,
				run: func(sys System) (map[string]float64, error) {
					r, err := bulk(sys, o.BulkDur)
					if err != nil {
						return nil, err
					}
					return map[string]float64{"throughput": r.Gbps(), "cpu": r.CPUPerGB()}, nil
				},
			})
		}
	}
	if want("rr") {
		for _, n := range []int{1, 64} {
			cs = append(cs, benchCase{
				bench: "rr", name: fmt.Sprintf("1-byte ping-pong, %d conn", n),
				metrics: []metric{{"rate", "trans/s", false}, {"cpu", "CPU us/trans", true}},
				cfg:     plain(1500),
				limit:   o.RRDur + 40*time.Second,
				run: func(sys System) (map[string]float64, error) {
					v, c, err := rr(sys, n, o.RRDur)
					return map[string]float64{"rate": v, "cpu": c}, err
				},
			})
		}
	}
	if want("connrate") {
		cs = append(cs, benchCase{
			bench: "connrate", name: fmt.Sprintf("setup+teardown, %d clients", o.ConnWorkers),
			metrics: []metric{{"rate", "conns/s", false}, {"cpu", "CPU us/conn", true}},
			cfg:     plain(1500),
			limit:   o.ConnDur + 40*time.Second,
			run: func(sys System) (map[string]float64, error) {
				v, c, err := connRate(sys, o.ConnWorkers, o.ConnDur, 25000)
				return map[string]float64{"rate": v, "cpu": c}, err
			},
		})
	}
	if want("memory") {
		for _, n := range o.MemConns {
			cs = append(cs, benchCase{
				bench: "memory", name: fmt.Sprintf("%d idle conns (both ends)", n),
				metrics: []metric{
					{"heap_alloc", "HeapAlloc B/conn", true},
					{"heap_inuse", "HeapInuse B/conn", true},
				},
				cfg:   plain(1500),
				limit: o.MemLimit + 60*time.Second,
				runs:  o.MemRuns,
				run: func(sys System) (map[string]float64, error) {
					r, err := memory(sys, n, o.MemLimit)
					if err != nil {
						return nil, err
					}
					return map[string]float64{"heap_alloc": r.HeapAllocPerConn, "heap_inuse": r.HeapInusePerConn}, nil
				},
			})
		}
	}
	goodput := func(dur time.Duration) func(sys System) (map[string]float64, error) {
		return func(sys System) (map[string]float64, error) {
			r, err := bulk(sys, dur)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"goodput": r.Gbps() * 1000}, nil
		}
	}
	if want("impaired") {
		cs = append(cs, benchCase{
			bench: "impaired", name: "100Mbit/s 20ms RTT 1% loss, cubic",
			metrics: []metric{{"goodput", "Mbit/s", false}},
			cfg: func(run int) NetConfig {
				return NetConfig{MTU: 1500, Impair: impairedPath(0.01, int64(run+1)), CC: "cubic"}
			},
			limit: o.ImpairDur + 40*time.Second,
			run:   goodput(o.ImpairDur),
		})
	}
	if want("loss") {
		for _, cc := range o.CCs {
			for _, loss := range o.Losses {
				cs = append(cs, benchCase{
					bench: "loss", name: fmt.Sprintf("100Mbit/s 20ms %g%% loss, %s", loss*100, cc),
					metrics: []metric{{"goodput", "Mbit/s", false}},
					cfg: func(run int) NetConfig {
						return NetConfig{MTU: 1500, Impair: impairedPath(loss, int64(run+1)), CC: cc}
					},
					limit: o.LossDur + 40*time.Second,
					run:   goodput(o.LossDur),
				})
			}
		}
	}
	return cs
}

// Run measures every selected case on every system, o.Runs times each,
// interleaving the systems run by run.
func Run(o Options, ms []Maker) *Report {
	t0 := time.Now()
	rep := &Report{
		Date:      t0.UTC().Format(time.RFC3339),
		GoVer:     runtime.Version(),
		CPUs:      runtime.NumCPU(),
		Runs:      o.Runs,
		LoadStart: loadAvg(),
	}
	for _, m := range ms {
		rep.Systems = append(rep.Systems, m.Name)
	}
	for _, c := range cases(o) {
		figs := make([]*Figure, len(c.metrics))
		for i, m := range c.metrics {
			figs[i] = &Figure{Bench: c.bench, Case: c.name, Metric: m.name, Unit: m.unit, Lower: m.lower, Values: map[string]*Series{}}
			for _, s := range ms {
				figs[i].Values[s.Name] = &Series{}
			}
		}
		runs := o.Runs
		if c.runs > 0 {
			runs = c.runs
		}
		for run := range runs {
			for _, s := range ms {
				cfg := c.cfg(run)
				if why := s.Unsupported(c.bench, cfg); why != "" {
					for _, f := range figs {
						f.Values[s.Name].NA = why
					}
					continue
				}
				t1 := time.Now()
				vals, err := runOne(s, cfg, c)
				if o.Verbose {
					fmt.Fprintf(os.Stderr, "%-10s %-36s %-8s run %d (%.1fs): %v %v\n", c.bench, c.name, s.Name, run+1, time.Since(t1).Seconds(), vals, err)
				}
				for _, f := range figs {
					sr := f.Values[s.Name]
					if err != nil {
						sr.Errors = append(sr.Errors, err.Error())
						continue
					}
					v, ok := vals[f.Metric]
					if !ok {
						sr.NA = "no in-memory pipe"
						continue
					}
					sr.Samples = append(sr.Samples, v)
				}
			}
		}
		for _, f := range figs {
			for _, sr := range f.Values {
				sr.finish()
			}
			for _, other := range []string{"netstack", "kernel"} {
				u, v := f.Values["ustack"], f.Values[other]
				if u != nil && v != nil && len(u.Samples) > 0 && len(v.Samples) > 0 && v.Median != 0 {
					if f.Ratios == nil {
						f.Ratios = map[string]float64{}
					}
					f.Ratios["ustack/"+other] = u.Median / v.Median
				}
			}
			rep.Figures = append(rep.Figures, f)
		}
	}
	rep.Duration = time.Since(t0).Round(time.Second).String()
	rep.LoadEnd = loadAvg()
	return rep
}

// loadAvg returns the 1, 5 and 15 minute load averages: the benchmarks share
// the machine, and a loaded machine starves the latency-bound figures.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// runOne builds a fresh system, runs the case once and tears it down, with
// a watchdog: a run that does not finish within c.limit is reported as an
// error, and its system is closed to stop the run's loops (a run left going
// would skew the runs after it).
func runOne(m Maker, cfg NetConfig, c benchCase) (map[string]float64, error) {
	type res struct {
		v   map[string]float64
		err error
	}
	ch := make(chan res, 1)
	sysc := make(chan System, 1)
	go func() {
		sys, err := m.New(cfg)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		sysc <- sys
		v, err := c.run(sys)
		if ls, ok := sys.(linkStatser); ok && err == nil {
			sent, dropped := ls.LinkStats()
			v["link_sent"], v["link_dropped"] = float64(sent), float64(dropped)
		}
		sys.Close()
		ch <- res{v, err}
	}()
	t := time.NewTimer(c.limit)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
	}
	select {
	case sys := <-sysc:
		go sys.Close()
	default:
	}
	grace := time.NewTimer(10 * time.Second)
	defer grace.Stop()
	select {
	case <-ch:
	case <-grace.C:
	}
	return nil, fmt.Errorf("run did not finish within %v", c.limit)
}

// WriteTable prints the report as an aligned text table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "ustack bench  %s  %s  %d CPUs  median of %d runs [min-max] (memory: --mem-runs)  took %s  load average %s -> %s\n\n",
		r.Date, r.GoVer, r.CPUs, r.Runs, r.Duration, r.LoadStart, r.LoadEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := []string{"benchmark", "case", "unit"}
	hdr = append(hdr, r.Systems...)
	has := func(s string) bool {
		for _, x := range r.Systems {
			if x == s {
				return true
			}
		}
		return false
	}
	if has("ustack") && has("netstack") {
		hdr = append(hdr, "ustack/netstack")
	}
	if has("ustack") && has("kernel") {
		hdr = append(hdr, "ustack/kernel")
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, f := range r.Figures {
		row := []string{f.Bench, f.Case, f.Unit}
		for _, s := range r.Systems {
			row = append(row, f.Values[s].String())
		}
		if has("ustack") && has("netstack") {
			row = append(row, ratio(f.Values["ustack"], f.Values["netstack"]))
		}
		if has("ustack") && has("kernel") {
			row = append(row, ratio(f.Values["ustack"], f.Values["kernel"]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratios are ustack median / other median; for CPU s/GB and B/conn lower is better, so a ratio < 1 favours ustack there.")
	var notes []string
	seen := map[string]bool{}
	for _, f := range r.Figures {
		for _, s := range r.Systems {
			sr := f.Values[s]
			if sr.NA != "" && !seen[s+sr.NA] {
				seen[s+sr.NA] = true
				notes = append(notes, fmt.Sprintf("%s n/a in %s: %s", s, f.Bench, sr.NA))
			}
			if len(sr.Samples) > 0 && len(sr.Errors) > 0 {
				notes = append(notes, fmt.Sprintf("%s %s %s: %d of %d runs failed: %s", s, f.Bench, f.Case, len(sr.Errors), len(sr.Errors)+len(sr.Samples), sr.Errors[0]))
			}
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func (s *Series) String() string {
	if len(s.Samples) == 0 {
		if s.NA == "" {
			return "n/a"
		}
		why := s.NA
		if len(why) > 40 {
			why = why[:37] + "..."
		}
		return "n/a (" + why + ")"
	}
	if len(s.Samples) == 1 {
		return num(s.Median)
	}
	return fmt.Sprintf("%s [%s-%s]", num(s.Median), num(s.Min), num(s.Max))
}

func ratio(a, b *Series) string {
	if a == nil || b == nil || len(a.Samples) == 0 || len(b.Samples) == 0 || b.Median == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a.Median/b.Median)
}

// num formats v with about three significant digits.
func num(v float64) string {
	if v == float64(int64(v)) && abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	switch av := abs(v); {
	case av >= 100000:
		return fmt.Sprintf("%.0f", v)
	case av >= 100:
		return fmt.Sprintf("%.0f", v)
	case av >= 10:
		return fmt.Sprintf("%.1f", v)
	case av >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
