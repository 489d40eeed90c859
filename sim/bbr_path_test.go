package sim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	tcpcc "github.com/ustack/ustack/tcp/cc"
)

// pathResult is one bulk transfer over the bench's loss-sweep path.
type pathResult struct {
	goodput float64 // bit/s of in-order data the receiver read
	log     []string
}

// runBulkPath sends bulk data from A to B for dur of virtual time over the
// BBR issue's path (pathbench's default): 100 Mbit/s bottleneck with a 250-packet
// tail-drop queue and 10 ms one-way delay each way, random loss both ways.
func runBulkPath(t *testing.T, cc string, loss float64, dur time.Duration, seed uint64) pathResult {
	t.Helper()
	im := Impairment{Delay: 10 * time.Millisecond, Loss: loss, RateBps: 100_000_000, QueueLen: 250}
	if v := os.Getenv("PATH_JITTER"); v != "" {
		im.Jitter, _ = time.ParseDuration(v)
	}
	e := NewEnv(seed, im, im)
	e.A.Config.CongestionControl = cc
	e.B.Config.CongestionControl = cc
	var rx *Conn
	e.B.Listen(80, Handler{Name: "sink", OnOpen: func(c *Conn) { rx = c }})
	chunk := make([]byte, 256<<10)
	var given int64
	var tx *Conn
	tx = e.A.Dial(e.Server, Handler{Name: "bulk"})
	var res pathResult
	var top func()
	top = func() {
		for given-tx.BytesWritten < 2<<20 {
			tx.Write(chunk)
			given += int64(len(chunk))
		}
		e.Sim.After(5*time.Millisecond, top)
	}
	e.Sim.After(0, top)
	var lastRead int64
	var sample func()
	sample = func() {
		if tc := tx.Engine(); tc != nil && rx != nil {
			in := tc.Info()
			res.log = append(res.log, fmt.Sprintf("t=%6.2fs rx=%6.1fMbit/s cwnd=%4d inflight=%4d pacing=%6.1fMbit/s rate=%6.1fMbit/s minrtt=%v srtt=%v retrans=%d",
				e.Sim.Elapsed().Seconds(), float64(rx.BytesRead-lastRead)*8/0.25/1e6, in.SndCwnd, in.Unacked-in.Lost-in.Sacked+in.Retrans,
				float64(in.PacingRate)*8/1e6, float64(in.DeliveryRate)*8/1e6, in.MinRTT, in.RTT, in.TotalRetrans))
			if b, ok := tc.CongestionControl().(*tcpcc.BBR); ok {
				res.log[len(res.log)-1] += fmt.Sprintf(" ca=%v bbr=%v bw=%.1f bwlo=%.1f infhi=%.0f inflo=%.0f",
					in.CAState, b.State(), b.Bw()*1448*8/1e6, b.BwShortterm()*1448*8/1e6, b.InflightLongterm(), b.InflightShortterm())
			}
			lastRead = rx.BytesRead
		}
		e.Sim.Trace().Events = e.Sim.Trace().Events[:0] // not needed: keep memory flat
		e.Sim.After(250*time.Millisecond, sample)
	}
	e.Sim.After(0, sample)
	var start int64
	var startAt time.Duration
	e.Sim.At(time.Second, func() {
		if rx != nil {
			start, startAt = rx.BytesRead, e.Sim.Elapsed()
		}
	})
	if err := e.Sim.Run(dur); err != nil && rx == nil {
		t.Fatal(err)
	}
	if rx == nil {
		t.Fatal("no connection")
	}
	res.goodput = float64(rx.BytesRead-start) * 8 / (e.Sim.Elapsed() - startAt).Seconds()
	return res
}

// TestPathSweep logs the goodput of BBR and CUBIC at the bench's loss
// rates (set PATH_SWEEP=1; about a minute).
func TestPathSweep(t *testing.T) {
	if os.Getenv("PATH_SWEEP") == "" {
		t.Skip("set PATH_SWEEP=1 to run the loss sweep")
	}
	ccs := []string{"bbr", "cubic"}
	if v := os.Getenv("PATH_SWEEP"); v != "1" {
		ccs = strings.Split(v, ",")
	}
	for _, cc := range ccs {
		losses := []float64{0, 0.001, 0.01, 0.03}
		if v := os.Getenv("PATH_LOSS"); v != "" {
			losses = nil
			for _, f := range strings.Split(v, ",") {
				x, _ := strconv.ParseFloat(f, 64)
				losses = append(losses, x/100)
			}
		}
		for _, loss := range losses {
			var sum float64
			seeds := []uint64{1, 2, 3}
			if v := os.Getenv("PATH_SEED"); v != "" {
				n, _ := strconv.ParseUint(v, 10, 64)
				seeds = []uint64{n}
			}
			var all []string
			for _, seed := range seeds {
				r := runBulkPath(t, cc, loss, 10*time.Second, seed)
				if os.Getenv("BBR_PATH_LOG") != "" {
					for _, l := range r.log {
						t.Log(l)
					}
				}
				sum += r.goodput
				all = append(all, fmt.Sprintf("%.1f", r.goodput/1e6))
			}
			t.Logf("%-5s %4.1f%% loss: mean %.1f Mbit/s (seeds: %v)", cc, loss*100, sum/float64(len(seeds))/1e6, all)
		}
	}
}
