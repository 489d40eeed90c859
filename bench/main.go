// Command bench measures ustack against gVisor netstack and the Linux
// kernel's TCP (loopback, through Go's net package) in one process run on
// the same machine, and prints a table of medians with spreads and the
// ratios ustack/netstack and ustack/kernel.
//
//	cd bench && go run . [--runs 3] [--only throughput,rr,connrate,memory,impaired,loss] [--json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options are the command-line settings.
type Options struct {
	Runs        int
	Only        []string
	Systems     []string
	JSON        bool
	MTUs        []int
	BulkDur     time.Duration
	RRDur       time.Duration
	ConnDur     time.Duration
	ConnWorkers int
	MemConns    []int
	MemLimit    time.Duration
	MemRuns     int
	ImpairDur   time.Duration
	LossDur     time.Duration
	Losses      []float64
	CCs         []string
	Verbose     bool
	CPUProfile  string
}

// allBenches lists the benchmark groups in run order; loss is opt-in.
var allBenches = []string{"throughput", "rr", "connrate", "memory", "impaired", "loss"}

// benchAliases maps other names people use to benchmark groups (CPU per
// GB is measured around the throughput transfers).
var benchAliases = map[string]string{
	"cpu": "throughput", "bulk": "throughput", "connect": "connrate", "conn": "connrate",
	"mem": "memory", "heap": "memory", "impair": "impaired", "goodput": "impaired",
}

var defaultBenches = []string{"throughput", "rr", "connrate", "memory", "impaired"}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	rep := Run(o, makers(o.Systems))
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if o.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	rep.WriteTable(os.Stdout)
}

func parseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o Options
	var only, systems, mtus, memConns, losses, ccs string
	fs.IntVar(&o.Runs, "runs", 3, "runs per figure (the median and min-max are reported)")
	fs.StringVar(&only, "only", strings.Join(defaultBenches, ","), "benchmarks to run: "+strings.Join(allBenches, ","))
	fs.StringVar(&systems, "systems", "kernel,netstack,ustack", "systems to measure")
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of the table")
	fs.StringVar(&mtus, "mtus", "1500,9000,65000", "link MTUs for the throughput benchmark")
	fs.DurationVar(&o.BulkDur, "bulk-dur", time.Second, "duration of one bulk transfer")
	fs.DurationVar(&o.RRDur, "rr-dur", time.Second, "duration of one request/response run")
	fs.DurationVar(&o.ConnDur, "conn-dur", time.Second, "duration of one connection-rate run")
	fs.IntVar(&o.ConnWorkers, "conn-workers", 4, "concurrent clients in the connection-rate benchmark")
	fs.StringVar(&memConns, "mem-conns", "10000,100000", "idle connection counts for the memory benchmark")
	fs.DurationVar(&o.MemLimit, "mem-limit", 90*time.Second, "time limit to open the memory benchmark's connections")
	fs.IntVar(&o.MemRuns, "mem-runs", 1, "runs of the memory benchmark (heap per connection varies little; 0 = --runs)")
	fs.DurationVar(&o.ImpairDur, "impair-dur", 4*time.Second, "duration of one impaired-link transfer")
	fs.DurationVar(&o.LossDur, "loss-dur", 8*time.Second, "duration of one loss-sweep transfer")
	fs.StringVar(&losses, "losses", "0,0.1,1,3", "loss rates in percent for the loss sweep")
	fs.StringVar(&ccs, "ccs", "reno,cubic", "congestion controls for the loss sweep")
	fs.BoolVar(&o.Verbose, "v", false, "log each run to stderr")
	fs.IntVar(&pipeQueueLen, "pipe-queue", pipeQueueLen, "per-direction drop-tail queue of the in-memory link, in packets")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if pipeQueueLen < 1 {
		return o, fmt.Errorf("--pipe-queue must be at least 1")
	}
	if o.Runs < 1 {
		return o, fmt.Errorf("--runs must be at least 1")
	}
	for _, b := range splitList(only) {
		if a, ok := benchAliases[b]; ok {
			b = a
		}
		if !slices.Contains(o.Only, b) {
			o.Only = append(o.Only, b)
		}
	}
	for _, b := range o.Only {
		if !slices.Contains(allBenches, b) {
			return o, fmt.Errorf("unknown benchmark %q (have %s)", b, strings.Join(allBenches, ","))
		}
	}
	o.Systems = splitList(systems)
	for _, s := range o.Systems {
		if !slices.Contains([]string{"kernel", "netstack", "ustack"}, s) {
			return o, fmt.Errorf("unknown system %q", s)
		}
	}
	o.CCs = splitList(ccs)
	var err error
	if o.MTUs, err = parseInts(mtus); err != nil {
		return o, fmt.Errorf("--mtus: %w", err)
	}
	if o.MemConns, err = parseInts(memConns); err != nil {
		return o, fmt.Errorf("--mem-conns: %w", err)
	}
	for _, s := range splitList(losses) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 100 {
			return o, fmt.Errorf("--losses: bad value %q", s)
		}
		o.Losses = append(o.Losses, f/100)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad value %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func makers(names []string) []Maker {
	all := map[string]Maker{
		"kernel":   {Name: "kernel", New: newKernel, Unsupported: kernelUnsupported},
		"netstack": {Name: "netstack", New: newNetstack, Unsupported: func(string, NetConfig) string { return "" }},
		"ustack":   ustackMaker(),
	}
	var out []Maker
	for _, n := range names {
		out = append(out, all[n])
	}
	return out
}

// Report is the whole run's result.
type Report struct {
	Date     string    `json:"date"`
	GoVer    string    `json:"go"`
	CPUs     int       `json:"cpus"`
	Runs     int       `json:"runs"`
	Systems  []string  `json:"systems"`
	Figures  []*Figure `json:"figures"`
	Duration string    `json:"duration"`
	// LoadStart and LoadEnd are /proc/loadavg's first three fields.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// Figure is one measured quantity for every system.
type Figure struct {
	Bench  string             `json:"bench"`
	Case   string             `json:"case"`
	Metric string             `json:"metric"`
	Unit   string             `json:"unit"`
	Lower  bool               `json:"lower_is_better,omitempty"`
	Values map[string]*Series `json:"values"`
	// Ratios holds ustack/netstack and ustack/kernel of the medians.
	Ratios map[string]float64 `json:"ratios,omitempty"`
}

// Series is one system's samples of a Figure.
type Series struct {
	Samples []float64 `json:"samples,omitempty"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	NA      string    `json:"na,omitempty"` // why there is no value
	Errors  []string  `json:"errors,omitempty"`
}

func (s *Series) finish() {
	if len(s.Samples) == 0 {
		if s.NA == "" && len(s.Errors) > 0 {
			s.NA = s.Errors[0]
		}
		return
	}
	v := slices.Clone(s.Samples)
	slices.Sort(v)
	s.Min, s.Max = v[0], v[len(v)-1]
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
}
