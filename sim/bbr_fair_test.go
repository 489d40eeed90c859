package sim

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp/cc"
)

// runBBRPair runs two ustack BBR flows over the path (no random
// loss), the second starting stagger after the first, each sending for
// dur, and returns the result and Jain's index of their goodputs.
func runBBRPair(t *testing.T, dur, stagger time.Duration, seed uint64) (pathScenarioResult, float64) {
	t.Helper()
	r := runPathScenarioStagger(t, []string{"bbr", "bbr"}, 0, dur, stagger, seed)
	var b strings.Builder
	printPathPairs(&b, []pathScenarioResult{r})
	t.Logf("stagger %v, %v each, seed %d\n%s", stagger, dur, seed, b.String())
	return r, jain([]float64{r.Flows[0].Goodput, r.Flows[1].Goodput})
}

// TestBBRStaggerFairnessExplore (BBR_FAIR=1) runs the staggered pair with
// BBR_FAIR_STAGGER, BBR_FAIR_DUR and BBR_FAIR_SEED (defaults 300ms, 25s,
// 1); BBR_FAIR_TRACE=1 logs both flows' BBR models every 100 ms.
func TestBBRStaggerFairnessExplore(t *testing.T) {
	if os.Getenv("BBR_FAIR") == "" {
		t.Skip("set BBR_FAIR=1")
	}
	stagger, dur := 300*time.Millisecond, 25*time.Second
	if v := os.Getenv("BBR_FAIR_STAGGER"); v != "" {
		stagger, _ = time.ParseDuration(v)
	}
	if v := os.Getenv("BBR_FAIR_DUR"); v != "" {
		dur, _ = time.ParseDuration(v)
	}
	if os.Getenv("BBR_FAIR_TRACE") != "" {
		pathTrace = bbrTrace(t)
		defer func() { pathTrace = nil }()
	}
	seed := uint64(1)
	if v := os.Getenv("BBR_FAIR_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	runBBRPair(t, dur, stagger, seed)
}

// bbrTrace logs each BBR sender's model (BBR_FAIR_TRACE=1).
func bbrTrace(t *testing.T) func(now time.Duration, tx []*Conn) {
	return func(now time.Duration, tx []*Conn) {
		var b strings.Builder
		fmt.Fprintf(&b, "%6.2fs", now.Seconds())
		for i, c := range tx {
			if c == nil || c.Engine() == nil {
				continue
			}
			bb, ok := c.Engine().CongestionControl().(*cc.BBR)
			if !ok {
				continue
			}
			in := c.Engine().Info()
			fmt.Fprintf(&b, " | f%d %-14s bw %5.1f maxbw %5.1f bwst %5.1f cwnd %4d ilt %5.0f ist %5.0f rtt %4.1f retr %d", i, bb.State(),
				bb.Bw()*1448*8/1e6, bb.MaxBw()*1448*8/1e6, min(bb.BwShortterm(), 1e9)*1448*8/1e6, bb.Cwnd(), min(bb.InflightLongterm(), 99999),
				min(bb.InflightShortterm(), 99999), float64(in.RTT)/1e6, in.TotalRetrans)
		}
		t.Log(b.String())
	}
}

// TestBBRStaggerFairness: two ustack BBR flows on the path (no
// random loss), the second starting 300 ms after the first, each sending
// for 25 s (about 7 s of CPU), must share the link: Jain's index at least
// 0.88 (measured 0.910: 62.7 / 32.7 Mbit/s). Before inflight_longterm could
// grow again from a fractional value (tcp/cc cwndAtLongterm) the late flow
// stayed near 16 Mbit/s (79.5 / 15.7, Jain 0.690). Over 10 s it is still
// converging (73.2 / 22.5, 0.781). BBR_FAIR=1 TestBBRStaggerFairnessExplore
// runs other staggers.
func TestBBRStaggerFairness(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation of two 25 s transfers")
	}
	if _, j := runBBRPair(t, 25*time.Second, 300*time.Millisecond, 1); j < 0.88 {
		t.Errorf("Jain %.3f, want >= 0.88", j)
	}
}
