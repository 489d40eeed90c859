package sim

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// The BBR issue's path in virtual time, shaped like bench/cmd/pathbench:
// 100 Mbit/s bottleneck, 10 ms one-way delay each way, a 250-packet
// tail-drop queue, random loss each way. Flows send bulk data for a fixed
// time and then close; goodput is what the receiver read from accept to
// EOF, as pathbench's discard server counts it.

// issuePath is the impairment of each direction of the issue's path.
func issuePath(loss float64) Impairment {
	return Impairment{Delay: 10 * time.Millisecond, RateBps: 100_000_000, QueueLen: 250, Loss: loss}
}

// pathFlowResult is one flow of a pathScenario.
type pathFlowResult struct {
	Name    string
	Goodput float64 // bit/s, receiver bytes from accept to EOF
	Retrans int
	SRTT    time.Duration // sender's smoothed RTT when it stopped writing
}

// pathScenarioResult is one run: its flows and the bottleneck (A->B).
type pathScenarioResult struct {
	Loss        float64
	Flows       []pathFlowResult
	QueueMean   time.Duration // mean queueing delay of the packets that entered the A->B queue
	QueueDrops  int
	RandomDrops [2]int // A->B, B->A
}

// queueMeter replays the A->B bottleneck's FIFO (link.Impairer: random
// loss before the queue, tail drop, serialization at the rate) from the
// packets offered to it, learning each packet's fate from the direction's
// counters at the next offer, and sums the queueing delay of the packets
// that entered the queue, as pathemu does.
type queueMeter struct {
	d         *direction
	rate      int64
	pend      bool
	pendAt    time.Duration
	pendSize  int
	drops     int
	busyUntil time.Duration
	sum       time.Duration
	n         int
}

func (m *queueMeter) observe(now time.Duration, size int) {
	m.settle()
	m.pend, m.pendAt, m.pendSize = true, now, size
	m.drops = m.d.Stats.Lost + m.d.Stats.QueueDropped
}

// settle accounts the pending packet once its fate is known.
func (m *queueMeter) settle() {
	if !m.pend || m.d.Stats.Lost+m.d.Stats.QueueDropped != m.drops {
		m.pend = false
		return
	}
	m.pend = false
	start := max(m.pendAt, m.busyUntil)
	m.sum += start - m.pendAt
	m.n++
	m.busyUntil = start + time.Duration(int64(m.pendSize)*8*int64(time.Second)/m.rate)
}

func (m *queueMeter) mean() time.Duration {
	m.settle()
	if m.n == 0 {
		return 0
	}
	return m.sum / time.Duration(m.n)
}

// runPathScenario runs one flow per entry of ccs ("bbr", "cubic", ...)
// from host A to host B over the issue's path with the given loss, all
// starting together, each writing for dur and then closing.
func runPathScenario(t *testing.T, ccs []string, loss float64, dur time.Duration, seed uint64) pathScenarioResult {
	t.Helper()
	return runPathScenarioStagger(t, ccs, loss, dur, 0, seed)
}

// pathTrace, when set, is called every pathTraceEvery of a path scenario
// with the senders still writing (nil before a flow starts and after it
// stops).
var (
	pathTrace      func(now time.Duration, tx []*Conn)
	pathTraceEvery = 100 * time.Millisecond
)

// runPathScenarioStagger is runPathScenario with flow i starting at
// i*stagger (pathbench starts its flows one after the other: each waits
// for its discard server).
func runPathScenarioStagger(t *testing.T, ccs []string, loss float64, dur, stagger time.Duration, seed uint64) pathScenarioResult {
	t.Helper()
	im := issuePath(loss)
	e := NewEnv(seed, im, im)
	meter := &queueMeter{d: e.Link.AB, rate: im.RateBps}
	e.Sim.AddDropRule(&DropRule{Name: "queue meter", From: "A", Match: func(p *Packet) bool {
		meter.observe(e.Sim.Elapsed(), len(p.Raw))
		return false
	}})
	type flow struct {
		tx          *Conn
		rx          *Conn
		acceptAt    time.Duration
		eofAt       time.Duration
		retrans     int
		srtt        time.Duration
		stopWriting bool
	}
	flows := make([]*flow, len(ccs))
	byPort := map[uint16]*flow{}
	e.B.Listen(80, Handler{Name: "discard",
		OnOpen: func(c *Conn) {
			if f := byPort[c.Tuple.Remote.Port()]; f != nil {
				f.rx, f.acceptAt = c, e.Sim.Elapsed()
			}
		},
		OnEOF: func(c *Conn) {
			if f := byPort[c.Tuple.Remote.Port()]; f != nil {
				f.eofAt = e.Sim.Elapsed()
			}
			c.CloseWrite()
		},
	})
	chunk := make([]byte, 256<<10)
	for i, cc := range ccs {
		f := &flow{}
		flows[i] = f
		start := time.Duration(i) * stagger
		e.Sim.At(start, func() {
			e.A.Config.CongestionControl = cc
			f.tx = e.A.Dial(e.Server, Handler{Name: "bulk-" + cc, OnEOF: func(c *Conn) { c.Close() }})
			byPort[f.tx.Tuple.Local.Port()] = f
		})
		var given int64
		var top func()
		top = func() {
			if f.stopWriting {
				return
			}
			for given-f.tx.BytesWritten < 2<<20 {
				f.tx.Write(chunk)
				given += int64(len(chunk))
			}
			e.Sim.After(5*time.Millisecond, top)
		}
		e.Sim.At(start+time.Millisecond, top)
		e.Sim.At(start+dur, func() {
			f.stopWriting = true
			if tc := f.tx.Engine(); tc != nil {
				in := tc.Info()
				f.retrans, f.srtt = in.TotalRetrans, in.RTT
			}
			f.tx.CloseWrite()
		})
	}
	if pathTrace != nil {
		var tick func()
		tick = func() {
			conns := make([]*Conn, len(flows))
			for i, f := range flows {
				if !f.stopWriting {
					conns[i] = f.tx
				}
			}
			pathTrace(e.Sim.Elapsed(), conns)
			if e.Sim.Elapsed() < dur+time.Duration(len(ccs)-1)*stagger {
				e.Sim.After(pathTraceEvery, tick)
			}
		}
		e.Sim.At(0, tick)
	}
	end := dur + time.Duration(len(ccs)-1)*stagger + 30*time.Second // bound the tail
	e.Sim.At(end, func() {})
	if err := e.Sim.Run(end); err != nil {
		t.Logf("sim: %v", err)
	}
	res := pathScenarioResult{Loss: loss, QueueMean: meter.mean(), QueueDrops: e.Link.AB.Stats.QueueDropped,
		RandomDrops: [2]int{e.Link.AB.Stats.Lost, e.Link.BA.Stats.Lost}}
	for i, f := range flows {
		r := pathFlowResult{Name: "ustack-" + ccs[i], Retrans: f.retrans, SRTT: f.srtt}
		if f.rx == nil || f.eofAt == 0 {
			t.Errorf("flow %d (%s) did not finish (rx %v, eof at %v)", i, ccs[i], f.rx != nil, f.eofAt)
		} else {
			r.Goodput = float64(f.rx.BytesRead) * 8 / (f.eofAt - f.acceptAt).Seconds()
		}
		res.Flows = append(res.Flows, r)
	}
	return res
}

// printPathSingles prints single-flow runs in pathbench's table shape.
func printPathSingles(w *strings.Builder, rows []pathScenarioResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "loss\tsender\tgoodput Mbit/s\tretrans\tsrtt ms\tqdelay mean ms\tqueue drops\trandom drops A>B/B>A\t")
	for _, r := range rows {
		for _, f := range r.Flows {
			fmt.Fprintf(tw, "%g%%\t%s\t%.1f\t%d\t%.1f\t%.2f\t%d\t%d/%d\t\n", 100*r.Loss, f.Name, f.Goodput/1e6, f.Retrans,
				float64(f.SRTT)/1e6, float64(r.QueueMean)/1e6, r.QueueDrops, r.RandomDrops[0], r.RandomDrops[1])
		}
	}
	tw.Flush()
}

// printPathPairs prints fairness runs in pathbench's table shape.
func printPathPairs(w *strings.Builder, rows []pathScenarioResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fairness\tflow 1 Mbit/s\tflow 2 Mbit/s\tshare 1\tretrans 1/2\tJain\tqdelay mean ms\tqueue drops\t")
	for _, r := range rows {
		a, b := r.Flows[0], r.Flows[1]
		share := 0.0
		if s := a.Goodput + b.Goodput; s > 0 {
			share = a.Goodput / s
		}
		fmt.Fprintf(tw, "%s+%s\t%.1f\t%.1f\t%.0f%%\t%d/%d\t%.3f\t%.2f\t%d\t\n", a.Name, b.Name, a.Goodput/1e6, b.Goodput/1e6,
			100*share, a.Retrans, b.Retrans, jain([]float64{a.Goodput, b.Goodput}), float64(r.QueueMean)/1e6, r.QueueDrops)
	}
	tw.Flush()
}

// TestBBRPath is the CI-sized check of BBR on the issue's path: one 5 s
// flow at 1 % loss each way (startup included) must reach Linux BBR's
// real-time goodput on that path (90.9 Mbit/s, Linux 6.18, 20 s). It gives
// 93.4; before the lossy-path changes of tcp/cc (doc.go) BBR cut its
// short-term model on random loss and stayed near 85 over 10 s.
func TestBBRPath(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation of a 5 s transfer")
	}
	r := runPathScenario(t, []string{"bbr"}, 0.01, 5*time.Second, 1)
	var b strings.Builder
	printPathSingles(&b, []pathScenarioResult{r})
	t.Logf("\n%s", b.String())
	if g := r.Flows[0].Goodput / 1e6; g < 90.9 {
		t.Errorf("BBR at 1%% loss: %.1f Mbit/s, want >= 90.9 (Linux BBR)", g)
	}
}

// TestBBRPathMatrix runs pathbench's default matrix in virtual time
// (BBR_PATH_MATRIX=1; about a minute): single ustack BBR and CUBIC flows
// at 0, 0.1, 1 and 3 % loss for 20 s, and the fairness pairs bbr+bbr and
// bbr+cubic at 0 % for 25 s. BBR_PATH_SEED picks the seed (default 1),
// BBR_PATH_STAGGER (e.g. 500ms) starts the second flow of a pair later.
// BBR_PATH_LOSS (percent, e.g. 0.1,1) replaces the loss list,
// BBR_PATH_ONLY_BBR=1 leaves out the CUBIC singles, BBR_PATH_NO_PAIRS=1 the
// pairs.
func TestBBRPathMatrix(t *testing.T) {
	if os.Getenv("BBR_PATH_MATRIX") == "" {
		t.Skip("set BBR_PATH_MATRIX=1 to run the simulated pathbench matrix")
	}
	seed := uint64(1)
	if v := os.Getenv("BBR_PATH_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	var singles, pairs []pathScenarioResult
	losses := []float64{0, 0.001, 0.01, 0.03}
	if v := os.Getenv("BBR_PATH_LOSS"); v != "" { // percent, comma-separated
		losses = nil
		for _, f := range strings.Split(v, ",") {
			var x float64
			fmt.Sscan(f, &x)
			losses = append(losses, x/100)
		}
	}
	singleCCs := []string{"bbr", "cubic"}
	if os.Getenv("BBR_PATH_ONLY_BBR") != "" {
		singleCCs = []string{"bbr"}
	}
	for _, loss := range losses {
		for _, cc := range singleCCs {
			singles = append(singles, runPathScenario(t, []string{cc}, loss, 20*time.Second, seed))
		}
	}
	stagger := time.Duration(0)
	if v := os.Getenv("BBR_PATH_STAGGER"); v != "" {
		stagger, _ = time.ParseDuration(v)
	}
	for _, pair := range [][]string{{"bbr", "bbr"}, {"bbr", "cubic"}, {"cubic", "cubic"}} {
		if os.Getenv("BBR_PATH_NO_PAIRS") != "" {
			break
		}
		pairs = append(pairs, runPathScenarioStagger(t, pair, 0, 25*time.Second, stagger, seed))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sim path: 100 Mbit/s bottleneck, 10ms one-way delay each direction, 250-packet tail-drop queue (seed %d)\n\n", seed)
	printPathSingles(&b, singles)
	b.WriteString("\n")
	printPathPairs(&b, pairs)
	t.Logf("\n%s", b.String())
}
