package sim

import (
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
)

// lossRun is one bulk transfer over the loss-sweep path of `bench --only
// loss`: 100 Mbit/s, 10 ms each way, a 2-BDP (332-packet) tail-drop queue
// and random loss in both directions (ACKs too).
type lossRun struct {
	goodput float64      // bit/s the receiver read after warm-up
	c       tcp.Counters // sender's counters
}

func runLossPath(t *testing.T, cc string, loss float64, dur time.Duration, seed uint64) lossRun {
	t.Helper()
	im := Impairment{Delay: 10 * time.Millisecond, Loss: loss, RateBps: 100_000_000, QueueLen: 332}
	e := NewEnv(seed, im, im)
	e.A.Config.CongestionControl = cc
	e.B.Config.CongestionControl = cc
	var rx *Conn
	e.B.Listen(80, Handler{Name: "sink", OnOpen: func(c *Conn) { rx = c }})
	tx := e.A.Dial(e.Server, Handler{Name: "bulk"})
	chunk := make([]byte, 256<<10)
	var given int64
	var top func()
	top = func() {
		for given-tx.BytesWritten < 2<<20 {
			tx.Write(chunk)
			given += int64(len(chunk))
		}
		e.Sim.After(5*time.Millisecond, top)
	}
	e.Sim.After(0, top)
	// Goodput counts from 1 s on, like the bench's warm-up-free 8 s runs
	// minus the handshake and the first slow start.
	var start int64
	var startAt time.Duration
	e.Sim.At(time.Second, func() {
		if rx != nil {
			start, startAt = rx.BytesRead, e.Sim.Elapsed()
		}
	})
	if err := e.Sim.Run(dur); err != nil {
		t.Fatal(err)
	}
	if rx == nil {
		t.Fatal("no connection")
	}
	return lossRun{
		goodput: float64(rx.BytesRead-start) * 8 / (e.Sim.Elapsed() - startAt).Seconds(),
		c:       e.A.Counters,
	}
}

// TestLossGoodput measures ustack Reno and CUBIC on the bench's loss path
// in virtual time and logs a table. The figures are deterministic (fixed
// seed), so they are asserted with a tolerance: a change that moves them
// is a behaviour change to look at, not noise.
//
// On this path the engine spends its losses in SACK recovery (RACK), not
// in timeouts: no RTO at 0.1 and 1 %, at most a few per 8 s at 3 %. Why
// gVisor netstack's Reno beats ustack's at 3 % in the real-time bench
// (3.74 vs 2.92 Mbit/s, 2026-11-24): netstack sets cwnd = ssthresh + 3 on
// entering SACK recovery and sends while its RFC 6675 pipe is below that,
// three packets more than RFC 6675 (cwnd = ssthresh) and PRR (RFC 6937,
// what ustack and Linux do) allow. At 3 % loss cwnd is 5-8 packets and a
// recovery starts every few RTTs, so the extra three are worth about 12 %
// (the same engine with netstack's rule gives 4.10 instead of 3.66 Mbit/s
// in this simulation, measured from the handshake over 6 seeds); the rest
// of the real-time gap is the runtime's share of the RTT under CPU load
// (22.5 ms measured vs 20 ms). The kernel, with PRR, measures like ustack
// (2.65 vs 2.67 Mbit/s in bench/README.md).
func TestLossGoodput(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	const dur = 8 * time.Second
	// want: the mean over seeds 1-3 when recorded (2026-11-24). The
	// Mathis et al. bound MSS/RTT*1.22/sqrt(p) is 7.1 Mbit/s at 1 % and
	// 4.1 Mbit/s at 3 %.
	rows := []struct {
		cc   string
		loss float64
		want float64 // Mbit/s
	}{
		{"reno", 0, 96.53}, {"reno", 0.001, 22.41}, {"reno", 0.01, 6.97}, {"reno", 0.03, 3.60},
		{"cubic", 0, 96.53}, {"cubic", 0.001, 25.95}, {"cubic", 0.01, 7.10}, {"cubic", 0.03, 3.55},
	}
	t.Logf("%-6s %6s %9s %6s %6s %6s %6s %6s %6s %6s %6s", "cc", "loss", "Mbit/s", "retx", "fast", "ssRetx", "RTOs", "TLPs", "SACKr", "Renor", "spurRTO")
	for _, r := range rows {
		var sum float64
		var c tcp.Counters
		const seeds = 3
		for seed := uint64(1); seed <= seeds; seed++ {
			res := runLossPath(t, r.cc, r.loss, dur, seed)
			if res.goodput <= 0 {
				t.Errorf("%s %g%% seed %d: no goodput", r.cc, r.loss*100, seed)
			}
			sum += res.goodput
			c.RetransSegs += res.c.RetransSegs
			c.TCPFastRetrans += res.c.TCPFastRetrans
			c.TCPSlowStartRetrans += res.c.TCPSlowStartRetrans
			c.TCPTimeouts += res.c.TCPTimeouts
			c.TCPLossProbes += res.c.TCPLossProbes
			c.TCPSACKRecovery += res.c.TCPSACKRecovery
			c.TCPRenoRecovery += res.c.TCPRenoRecovery
			c.TCPSpuriousRTOs += res.c.TCPSpuriousRTOs
		}
		t.Logf("%-6s %5.1f%% %9.2f %6d %6d %6d %6d %6d %6d %6d %6d", r.cc, r.loss*100, sum/seeds/1e6,
			c.RetransSegs, c.TCPFastRetrans, c.TCPSlowStartRetrans, c.TCPTimeouts, c.TCPLossProbes,
			c.TCPSACKRecovery, c.TCPRenoRecovery, c.TCPSpuriousRTOs)
		if r.loss > 0 && c.TCPSACKRecovery == 0 {
			t.Errorf("%s %g%%: no SACK recovery episode counted", r.cc, r.loss*100)
		}
		if got := sum / seeds / 1e6; got < 0.75*r.want {
			t.Errorf("%s %g%%: %.2f Mbit/s, recorded %.2f: more than 25%% lower", r.cc, r.loss*100, got, r.want)
		}
	}
}
