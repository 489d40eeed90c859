package sim

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
)

// lossOpts are the non-default settings a loss-path run may use.
type lossOpts struct {
	inflate bool          // sender: tcp.Config.SACKRecoveryInflate (netstack's recovery window)
	delack  time.Duration // receiver: tcp.Config.DelAckMin, 0 = default (40 ms)
	noSACK  bool          // both: SACK off (NewReno recovery)
}

// lossRun is one bulk transfer over the loss-sweep path of `bench --only
// loss`: 100 Mbit/s, 10 ms each way, a 2-BDP (332-packet) tail-drop queue
// and random loss in both directions (ACKs too).
type lossRun struct {
	goodput  float64 // bit/s the receiver read after warm-up (from 1 s)
	goodput0 float64 // bit/s the receiver read from the start, like the bench
	// Time averages over the measured part, sampled every millisecond.
	cwnd, ssthresh, pipe float64 // packets (ssthresh once set)
	recovery             float64 // share of the time in fast recovery
	lossState            float64 // share of the time in RTO recovery
	c, rx                tcp.Counters
}

func runLossPath(t *testing.T, cc string, loss float64, dur time.Duration, seed uint64, o lossOpts) lossRun {
	t.Helper()
	im := Impairment{Delay: 10 * time.Millisecond, Loss: loss, RateBps: 100_000_000, QueueLen: 332}
	e := NewEnv(seed, im, im)
	e.A.Config.CongestionControl = cc
	e.B.Config.CongestionControl = cc
	e.A.Config.SACKRecoveryInflate = o.inflate
	if o.noSACK {
		e.A.Config.SACK, e.B.Config.SACK = false, false
	}
	if o.delack > 0 {
		e.B.Config.DelAckMin = o.delack
	}
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
	var r lossRun
	var n, nss float64
	var sample func()
	sample = func() {
		if tc := tx.Engine(); tc != nil && e.Sim.Elapsed() >= time.Second {
			in := tc.Info()
			n++
			r.cwnd += float64(in.SndCwnd)
			if in.SndSsthresh < 1<<20 {
				r.ssthresh += float64(in.SndSsthresh)
				nss++
			}
			r.pipe += float64(in.Unacked - in.Lost - in.Sacked + in.Retrans)
			switch in.CAState {
			case tcp.CARecovery:
				r.recovery++
			case tcp.CALoss:
				r.lossState++
			}
		}
		e.Sim.Trace().Events = e.Sim.Trace().Events[:0] // keep memory flat
		e.Sim.After(time.Millisecond, sample)
	}
	e.Sim.After(0, sample)
	// Goodput counts from 1 s on, after the handshake and the first slow
	// start; goodput0 from the start, as the bench's 8 s runs do.
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
	r.goodput = float64(rx.BytesRead-start) * 8 / (e.Sim.Elapsed() - startAt).Seconds()
	r.goodput0 = float64(rx.BytesRead) * 8 / e.Sim.Elapsed().Seconds()
	if n > 0 {
		r.cwnd, r.pipe, r.recovery, r.lossState = r.cwnd/n, r.pipe/n, r.recovery/n, r.lossState/n
	}
	if nss > 0 {
		r.ssthresh /= nss
	}
	r.c, r.rx = e.A.Counters, e.B.Counters
	return r
}

// lossSweep runs seeds 1..seeds and returns the means (counters summed).
func lossSweep(t *testing.T, cc string, loss float64, seeds int, o lossOpts) lossRun {
	var m lossRun
	for seed := 1; seed <= seeds; seed++ {
		r := runLossPath(t, cc, loss, 8*time.Second, uint64(seed), o)
		if r.goodput <= 0 {
			t.Errorf("%s %g%% seed %d: no goodput", cc, loss*100, seed)
		}
		m.goodput += r.goodput
		m.goodput0 += r.goodput0
		m.cwnd += r.cwnd
		m.ssthresh += r.ssthresh
		m.pipe += r.pipe
		m.recovery += r.recovery
		m.lossState += r.lossState
		for _, p := range []struct{ sum, v *tcp.Counters }{{&m.c, &r.c}, {&m.rx, &r.rx}} {
			p.sum.RetransSegs += p.v.RetransSegs
			p.sum.TCPFastRetrans += p.v.TCPFastRetrans
			p.sum.TCPSlowStartRetrans += p.v.TCPSlowStartRetrans
			p.sum.TCPTimeouts += p.v.TCPTimeouts
			p.sum.TCPLossProbes += p.v.TCPLossProbes
			p.sum.TCPSACKRecovery += p.v.TCPSACKRecovery
			p.sum.TCPRenoRecovery += p.v.TCPRenoRecovery
			p.sum.TCPSpuriousRTOs += p.v.TCPSpuriousRTOs
			p.sum.TCPLostRetransmit += p.v.TCPLostRetransmit
			p.sum.TCPDSACKUndo += p.v.TCPDSACKUndo
			p.sum.DelayedACKs += p.v.DelayedACKs
			p.sum.OutSegs += p.v.OutSegs
		}
	}
	k := float64(seeds)
	m.goodput, m.goodput0 = m.goodput/k, m.goodput0/k
	m.cwnd, m.ssthresh, m.pipe = m.cwnd/k, m.ssthresh/k, m.pipe/k
	m.recovery, m.lossState = m.recovery/k, m.lossState/k
	return m
}

func logLossHeader(t *testing.T) {
	t.Logf("%-6s %5s %7s %7s %5s %5s %5s %4s %4s | %5s %5s %5s %5s %5s %5s %5s | %6s %6s",
		"cc", "loss", "Mbit/s", "from0", "cwnd", "ssth", "pipe", "rec", "rto", "retx", "RTOs", "TLPs", "SACKr", "lostR", "undo", "spurR", "rxACKs", "delACK")
}

func logLossRow(t *testing.T, name string, loss float64, m lossRun) {
	t.Logf("%-6s %4.1f%% %7.2f %7.2f %5.1f %5.1f %5.1f %3.0f%% %3.0f%% | %5d %5d %5d %5d %5d %5d %5d | %6d %6d",
		name, loss*100, m.goodput/1e6, m.goodput0/1e6, m.cwnd, m.ssthresh, m.pipe, m.recovery*100, m.lossState*100,
		m.c.RetransSegs, m.c.TCPTimeouts, m.c.TCPLossProbes, m.c.TCPSACKRecovery, m.c.TCPLostRetransmit,
		m.c.TCPDSACKUndo, m.c.TCPSpuriousRTOs, m.rx.OutSegs, m.rx.DelayedACKs)
}

// TestLossGoodput measures ustack Reno and CUBIC on the bench's loss path
// in virtual time and logs a table: goodput from 1 s and from the start
// (the bench's measure), time averages of cwnd, ssthresh and pipe, the
// share of time in fast recovery and RTO recovery, the sender's counters
// (retransmissions, RTOs, loss probes, SACK recoveries, lost
// retransmissions, D-SACK undos, spurious RTOs) and the receiver's ACKs
// and delayed ACKs. The figures are deterministic (fixed seeds), so they
// are asserted with a tolerance: a change that moves them is a behaviour
// change to look at, not noise.
//
// Mathis et al. (MSS/RTT*1.22/sqrt(p)) give 7.07 Mbit/s at 1 % and 4.08
// at 3 % for 1448-byte segments and 20 ms. Where ustack Reno stood and
// what moved it (20 seeds, Mbit/s from 1 s, 1 % / 3 %):
//
//   - 7.03 / 3.50 (6 seeds): ssthresh was pipe/2 instead of FlightSize/2
//     (RFC 5681 eq. 4): the pipe leaves out the SACKed packets that
//     revealed the loss, so each reduction cut about one packet too many
//     at cwnd 5-10 (mean ssthresh 7.1 / 3.9 against 8.0 / 4.6 after).
//   - 7.38 / 3.75 (6 seeds), 6.94 / 3.78 (20 seeds) with FlightSize/2.
//   - 7.01 / 3.83 (20 seeds) with RFC 9937 PRR (RecoverFS without the
//     packets SACKed before recovery; PRR-SSRB only on safe ACKs).
//
// Time is not lost to timeouts (no RTO at 1 %, 3 in 20 x 8 s at 3 %),
// loss probes, lost retransmissions (RACK finds them) or growth refused
// as not cwnd-limited (none). What remains against gVisor netstack are
// two behaviours that neither the RFCs nor Linux have (see
// TestLossGoodputOptIn): netstack's receiver ACKs every segment (no
// delayed ACK), and its SACK recovery keeps cwnd = ssthresh+3.
func TestLossGoodput(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	// want: the mean over seeds 1-3 from 1 s, recorded 2026-11-24.
	rows := []struct {
		cc   string
		loss float64
		want float64 // Mbit/s
	}{
		{"reno", 0, 96.53}, {"reno", 0.001, 23.21}, {"reno", 0.01, 7.52}, {"reno", 0.03, 4.02},
		{"cubic", 0, 96.53}, {"cubic", 0.001, 25.97}, {"cubic", 0.01, 7.15}, {"cubic", 0.03, 3.56},
	}
	logLossHeader(t)
	for _, r := range rows {
		m := lossSweep(t, r.cc, r.loss, 3, lossOpts{})
		logLossRow(t, r.cc, r.loss, m)
		if r.loss > 0 && m.c.TCPSACKRecovery == 0 {
			t.Errorf("%s %g%%: no SACK recovery episode counted", r.cc, r.loss*100)
		}
		if got := m.goodput / 1e6; got < 0.75*r.want {
			t.Errorf("%s %g%%: %.2f Mbit/s, recorded %.2f: more than 25%% lower", r.cc, r.loss*100, got, r.want)
		}
	}
}

// TestLossGoodputOptIn measures Reno at 1 % and 3 % loss with the
// non-default behaviours of gVisor netstack, one at a time and together:
// the sender's tcp.Config.SACKRecoveryInflate (cwnd = ssthresh+3 in SACK
// recovery, not RFC) and a receiver that ACKs practically every segment
// (DelAckMin 1 ms instead of 40 ms: the odd segment at the end of a
// flight is ACKed at once instead of with the next flight, one RTT later,
// which at windows of 5-9 packets holds back about one packet per RTT).
// With both, ustack's Reno moves past the Mathis figure as netstack's
// does. Each must not lose goodput against the default at 3 %.
// Set LOSS_SEEDS to average over more seeds (default 6).
func TestLossGoodputOptIn(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	seeds := 6
	if v, err := strconv.Atoi(os.Getenv("LOSS_SEEDS")); err == nil && v > 0 {
		seeds = v
	}
	logLossHeader(t)
	variants := []struct {
		name string
		o    lossOpts
	}{
		{"reno", lossOpts{}},
		{"+infl", lossOpts{inflate: true}},
		{"+ack", lossOpts{delack: time.Millisecond}},
		{"+both", lossOpts{inflate: true, delack: time.Millisecond}},
	}
	for _, loss := range []float64{0.01, 0.03} {
		var base float64
		for i, v := range variants {
			m := lossSweep(t, "reno", loss, seeds, v.o)
			logLossRow(t, v.name, loss, m)
			if i == 0 {
				base = m.goodput
			} else if loss == 0.03 && m.goodput < base {
				t.Errorf("%s at %g%%: %.2f Mbit/s, below the default's %.2f", v.name, loss*100, m.goodput/1e6, base/1e6)
			}
		}
	}
}

// TestLossGoodputNewReno runs Reno without SACK (NewReno recovery, RFC
// 6582) on the loss path. PRR counts each duplicate ACK as one packet
// delivered, as Linux does; when it counted none, recovery sent nothing
// but the fast retransmission until a partial ACK, and more losses ended
// in RTOs (seeds 1-6, 1 % / 3 %: 6.70 / 3.04 Mbit/s, 20 / 44 RTOs).
func TestLossGoodputNewReno(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	logLossHeader(t)
	for _, r := range []struct{ loss, want float64 }{{0.01, 7.56}, {0.03, 3.47}} {
		m := lossSweep(t, "reno", r.loss, 6, lossOpts{noSACK: true})
		logLossRow(t, "newreno", r.loss, m)
		if m.c.TCPRenoRecovery == 0 || m.c.TCPSACKRecovery != 0 {
			t.Errorf("%g%%: %d NewReno and %d SACK recoveries", r.loss*100, m.c.TCPRenoRecovery, m.c.TCPSACKRecovery)
		}
		if got := m.goodput / 1e6; got < 0.75*r.want {
			t.Errorf("%g%%: %.2f Mbit/s, recorded %.2f: more than 25%% lower", r.loss*100, got, r.want)
		}
	}
}

// TestLossSweep logs any controllers and loss rates over more seeds
// (LOSS_SWEEP=reno,cubic LOSS_RATES=1,3 LOSS_SEEDS=20).
func TestLossSweep(t *testing.T) {
	v := os.Getenv("LOSS_SWEEP")
	if v == "" {
		t.Skip("set LOSS_SWEEP=reno,cubic (LOSS_RATES in percent, LOSS_SEEDS)")
	}
	rates := []float64{0, 0.1, 1, 3}
	if s := os.Getenv("LOSS_RATES"); s != "" {
		rates = nil
		for _, f := range strings.Split(s, ",") {
			x, _ := strconv.ParseFloat(f, 64)
			rates = append(rates, x)
		}
	}
	seeds := 6
	if s, err := strconv.Atoi(os.Getenv("LOSS_SEEDS")); err == nil && s > 0 {
		seeds = s
	}
	logLossHeader(t)
	for _, cc := range strings.Split(v, ",") {
		for _, r := range rates {
			logLossRow(t, cc, r/100, lossSweep(t, cc, r/100, seeds, lossOpts{}))
		}
	}
}
