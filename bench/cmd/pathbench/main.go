//go:build linux

// Command pathbench measures TCP senders over an emulated path (package
// pathemu): by default the BBR issue's path, 100 Mbit/s, 10 ms one-way delay
// each direction, a 250-packet tail-drop queue, and random loss each way.
//
//	pathbench --duration 20s --loss 0,0.001,0.01,0.03 --cc bbr,cubic,reno
//	pathbench --ustack bbr,cubic --cc ''            # ustack senders only
//	pathbench --fair bbr+bbr,bbr+cubic --fair-duration 25s
//	pathbench --cc '' --fair ustack-bbr+ustack-bbr,ustack-bbr+ustack-cubic
//	pathbench --cc '' --netstack cubic,reno          # gVisor netstack senders
//
// A fairness pair is two Linux flows (bbr+cubic: iperf3 between the
// kernels of A and B) or two userspace flows (ustack-bbr+ustack-cubic,
// ustack-bbr+netstack-cubic: two stacks on side A, 10.201.0.1 and
// 10.201.0.3, each sending to its own discard server in B); pairs mixing
// Linux and userspace flows are not supported.
//
// Each run gets a fresh path (new namespaces). The table shows goodput at
// the receiver, sender retransmits, the bottleneck's mean and 99th
// percentile queueing delay (A->B) and its tail and random drops. Needs root.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ustack/ustack/bench/pathemu"
)

// Row is one run of the matrix.
type Row struct {
	Kind        string           `json:"kind"` // "single" or "fair"
	Loss        float64          `json:"loss"`
	Flows       []pathemu.Result `json:"flows"`
	Jain        float64          `json:"jain,omitempty"`
	QueueMean   float64          `json:"queue_delay_mean_ms"`
	QueueP50    float64          `json:"queue_delay_p50_ms"`
	QueueP99    float64          `json:"queue_delay_p99_ms"`
	QueueMax    float64          `json:"queue_delay_max_ms"`
	QueueDrops  uint64           `json:"queue_drops"`
	RandomDrops [2]uint64        `json:"random_drops"` // A->B, B->A
	Packets     [2]uint64        `json:"packets"`
	LateMean    float64          `json:"late_mean_ms"` // emulator delivery lateness (A->B)
	LateMax     float64          `json:"late_max_ms"`
	DevDrops    [2]uint64        `json:"tun_tx_drops"` // A, B: kernel drops into the TUN devices (emulator too slow)
	Error       string           `json:"error,omitempty"`
}

func main() {
	pathemu.MaybeServeDiscard()
	var (
		duration = flag.Duration("duration", 20*time.Second, "length of each single-flow run")
		lossList = flag.String("loss", "0,0.001,0.01,0.03", "random loss per direction, comma separated")
		ccList   = flag.String("cc", "bbr,cubic,reno", "Linux sender congestion controls ('' for none)")
		usList   = flag.String("ustack", "", "ustack sender congestion controls (e.g. bbr,cubic,reno)")
		nsList   = flag.String("netstack", "", "gVisor netstack sender congestion controls (cubic,reno)")
		fair     = flag.String("fair", "", "fairness runs at 0% loss: pairs like bbr+bbr,bbr+cubic (Linux flows) or ustack-bbr+ustack-cubic, ustack-bbr+netstack-cubic (userspace flows)")
		fairDur  = flag.Duration("fair-duration", 25*time.Second, "length of each fairness run")
		rate     = flag.Float64("rate", 100e6, "bottleneck rate, bits/s (e.g. 100e6)")
		delay    = flag.Duration("delay", 10*time.Millisecond, "one-way delay each direction")
		queue    = flag.Int("queue", 250, "bottleneck queue, packets")
		seed     = flag.Int64("seed", 1, "impairment seed")
		offload  = flag.Bool("offload", true, "TUN devices with TSO/checksum offload (fewer system calls)")
		jsonOut  = flag.Bool("json", false, "print JSON rows instead of a table")
		verbose  = flag.Bool("v", false, "also print each sender's final state (cwnd, pacing rate, RTT)")
		trace    = flag.Bool("trace", false, "ustack senders print their state every 250 ms to stderr")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "pathbench: needs root (network namespaces, TUN devices)")
		os.Exit(2)
	}
	losses, err := parseFloats(*lossList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pathbench: --loss:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	base := pathemu.Config{Delay: *delay, RateBps: int64(*rate), QueueLen: *queue, Seed: *seed, Offload: *offload}
	var rows []Row
	emit := func(r Row) {
		rows = append(rows, r)
		if !*jsonOut {
			fmt.Fprintf(os.Stderr, "done: %s\n", describe(r))
		}
	}
	for _, loss := range losses {
		for _, cc := range split(*ccList) {
			if ctx.Err() != nil {
				break
			}
			cfg := base
			cfg.Loss = loss
			emit(runOnce(ctx, cfg, "single", &pathemu.KernelFlow{CC: cc, Duration: *duration}))
		}
		for _, cc := range split(*usList) {
			if ctx.Err() != nil {
				break
			}
			cfg := base
			cfg.Loss = loss
			cfg.StackA = true
			f := &pathemu.UstackFlow{CC: cc, Duration: *duration}
			if *trace {
				f.Trace = os.Stderr
			}
			emit(runOnce(ctx, cfg, "single", f))
		}
		for _, cc := range split(*nsList) {
			if ctx.Err() != nil {
				break
			}
			cfg := base
			cfg.Loss = loss
			cfg.StackA = true
			emit(runOnce(ctx, cfg, "single", &pathemu.NetstackFlow{CC: cc, Duration: *duration}))
		}
	}
	for _, pair := range split(*fair) {
		if ctx.Err() != nil {
			break
		}
		cfg := base
		flows, stackA, err := fairFlows(pair, *fairDur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pathbench: --fair:", err)
			os.Exit(2)
		}
		cfg.StackA = stackA
		emit(runOnce(ctx, cfg, "fair", flows...))
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
		return
	}
	printTable(rows, int64(*rate), *delay, *queue, *verbose)
}

// fairFlows builds the flows of one fairness pair: "bbr+cubic" are Linux
// flows, "ustack-bbr+ustack-cubic" or "ustack-bbr+netstack-cubic"
// userspace flows from two stacks on side A.
func fairFlows(pair string, dur time.Duration) (flows []pathemu.Flow, stackA bool, err error) {
	names := strings.Split(pair, "+")
	us := 0
	for _, n := range names {
		if strings.HasPrefix(n, "ustack-") || strings.HasPrefix(n, "netstack-") {
			us++
		}
	}
	if us != 0 && us != len(names) {
		return nil, false, fmt.Errorf("pair %q mixes userspace and Linux flows", pair)
	}
	if us > 2 {
		return nil, false, fmt.Errorf("pair %q: at most two userspace flows", pair)
	}
	addrs := []netip.Addr{pathemu.AddrA, pathemu.AddrA2}
	for i, n := range names {
		if cc, ok := strings.CutPrefix(n, "netstack-"); ok {
			flows = append(flows, &pathemu.NetstackFlow{CC: cc, Port: 5301 + i, Addr: addrs[i], Duration: dur})
		} else if us > 0 {
			flows = append(flows, &pathemu.UstackFlow{CC: strings.TrimPrefix(n, "ustack-"), Port: 5301 + i, Addr: addrs[i], Duration: dur})
		} else {
			flows = append(flows, &pathemu.KernelFlow{CC: n, Port: 5201 + i, Duration: dur})
		}
	}
	return flows, us > 0, nil
}

func runOnce(ctx context.Context, cfg pathemu.Config, kind string, flows ...pathemu.Flow) Row {
	r := Row{Kind: kind, Loss: cfg.Loss}
	p, err := pathemu.New(cfg)
	if err != nil {
		r.Error = err.Error()
		for _, f := range flows {
			r.Flows = append(r.Flows, pathemu.Result{Name: f.Name(), Retransmits: -1})
		}
		return r
	}
	res, err := pathemu.RunFlows(ctx, p, flows...)
	ab, ba := p.Stats()
	if da, db, derr := p.DeviceTxDrops(); derr == nil {
		r.DevDrops = [2]uint64{da, db}
	}
	if cerr := p.Close(); cerr != nil && err == nil {
		err = cerr
	}
	r.Flows = res
	if err != nil {
		r.Error = err.Error()
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.QueueMean, r.QueueP50, r.QueueP99, r.QueueMax = ms(ab.MeanQueueDelay()), ms(ab.QueueDelayQuantile(0.5)), ms(ab.QueueDelayQuantile(0.99)), ms(ab.QueueDelayMax)
	r.QueueDrops = ab.QueueDropped + ba.QueueDropped
	r.RandomDrops = [2]uint64{ab.Dropped, ba.Dropped}
	r.Packets = [2]uint64{ab.Packets, ba.Packets}
	r.LateMean, r.LateMax = ms(ab.MeanLate()), ms(ab.LateMax)
	if len(res) > 1 {
		var rates []float64
		for _, x := range res {
			rates = append(rates, x.GoodputBps)
		}
		r.Jain = pathemu.Jain(rates...)
	}
	return r
}

func describe(r Row) string {
	var names []string
	for _, f := range r.Flows {
		names = append(names, fmt.Sprintf("%s %.1f Mbit/s", f.Name, f.GoodputBps/1e6))
	}
	s := fmt.Sprintf("loss %g%%: %s", 100*r.Loss, strings.Join(names, ", "))
	if r.Error != "" {
		s += " ERROR: " + r.Error
	}
	return s
}

func printTable(rows []Row, rate int64, delay time.Duration, queue int, verbose bool) {
	fmt.Printf("path: %g Mbit/s bottleneck, %v one-way delay each direction, %d-packet tail-drop queue\n\n", float64(rate)/1e6, delay, queue)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "loss\tsender\tgoodput Mbit/s\tretrans\tsrtt ms\tqdelay mean ms\tqdelay p99 ms\tqueue drops\trandom drops A>B/B>A\t")
	for _, r := range rows {
		if r.Kind != "single" {
			continue
		}
		for _, f := range r.Flows {
			fmt.Fprintf(w, "%g%%\t%s\t%.1f\t%d\t%.1f\t%.2f\t%.1f\t%d\t%d/%d\t%s\n", 100*r.Loss, f.Name, f.GoodputBps/1e6, f.Retransmits,
				f.MeanRTTms, r.QueueMean, r.QueueP99, r.QueueDrops, r.RandomDrops[0], r.RandomDrops[1], errNote(r))
		}
	}
	w.Flush()
	if verbose {
		fmt.Println()
		for _, r := range rows {
			for _, f := range r.Flows {
				fmt.Printf("%g%% %s: emulator lateness mean %.3f ms max %.1f ms, tun tx drops A/B %d/%d; %s\n", 100*r.Loss, f.Name, r.LateMean, r.LateMax, r.DevDrops[0], r.DevDrops[1], f.Note)
			}
		}
	}
	var fairRows []Row
	for _, r := range rows {
		if r.Kind == "fair" {
			fairRows = append(fairRows, r)
		}
	}
	if len(fairRows) == 0 {
		return
	}
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "fairness\tflow 1 Mbit/s\tflow 2 Mbit/s\tshare 1\tretrans 1/2\tJain\tqdelay mean ms\tqueue drops\t")
	for _, r := range fairRows {
		if len(r.Flows) != 2 {
			continue
		}
		a, b := r.Flows[0], r.Flows[1]
		share := 0.0
		if s := a.GoodputBps + b.GoodputBps; s > 0 {
			share = a.GoodputBps / s
		}
		fmt.Fprintf(w, "%s+%s\t%.1f\t%.1f\t%.0f%%\t%d/%d\t%.3f\t%.2f\t%d\t%s\n", a.Name, b.Name, a.GoodputBps/1e6, b.GoodputBps/1e6,
			100*share, a.Retransmits, b.Retransmits, r.Jain, r.QueueMean, r.QueueDrops, errNote(r))
	}
	w.Flush()
}

func errNote(r Row) string {
	if r.Error == "" {
		return ""
	}
	return "ERROR: " + r.Error
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range split(s) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
