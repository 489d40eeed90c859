package cc

import (
	"math"
	"testing"
	"time"
)

// bbrScript feeds BBR hand-made rate samples, one packet-timed round at a
// time: every ACK of a round reports the given delivery rate, the first
// one starts the round.
type bbrScript struct {
	t         *testing.T
	b         *BBR
	now       time.Time
	delivered int64
	rtt       time.Duration
	queue     time.Duration // queueing delay added to the RTT samples
	inflight  int           // InFlight reported; 0 = cwnd-1
	app       bool
}

func newBBRScript(t *testing.T, rtt time.Duration) *bbrScript {
	s := &bbrScript{t: t, b: NewBBR(), now: t0, rtt: rtt}
	s.b.Init(1000, t0)
	s.b.Seed(7)
	return s
}

// round acks n packets spread over one RTT, each reporting rate packets/s;
// mut may edit each sample.
func (s *bbrScript) round(n int, rate float64, mut func(i int, rs *RateSample)) {
	start := s.delivered
	for i := range n {
		s.now = s.now.Add(s.rtt / time.Duration(n))
		s.delivered++
		infl := s.inflight
		if infl == 0 {
			infl = s.b.Cwnd() - 1
		}
		rs := RateSample{
			Delivered:      int64(math.Round(rate * s.rtt.Seconds())),
			Interval:       s.rtt,
			PriorDelivered: start,
			TotalDelivered: s.delivered,
			RTT:            s.rtt + s.queue,
			MinRTT:         s.rtt,
			AckedSacked:    1,
			PriorInFlight:  infl + 1,
			InFlight:       infl,
			IsAppLimited:   s.app,
			TxInFlight:     infl + 1,
		}
		if mut != nil {
			mut(i, &rs)
		}
		s.b.OnAck(s.now, &rs)
	}
}

func (s *bbrScript) expect(want BBRState) {
	s.t.Helper()
	if got := s.b.State(); got != want {
		s.t.Fatalf("at %v: state %v, want %v", s.now.Sub(t0), got, want)
	}
}

// toCruise drives BBR from Startup to ProbeBW_CRUISE at 1000 packets/s,
// 100 ms (BDP 100).
func (s *bbrScript) toCruise() {
	for _, r := range []float64{100, 200, 400, 800, 1000, 1000, 1000, 1000} {
		s.round(20, r, nil)
	}
	s.expect(BBRDrain)
	s.inflight = 90 // below the BDP: Drain ends, DOWN ends
	s.round(20, 1000, nil)
	s.expect(BBRProbeBWCruise)
}

// Startup ends after three rounds without 25 % bandwidth growth.
func TestBBRStartupPlateau(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	for i, r := range []float64{100, 200, 400, 800, 900, 950, 990} {
		s.round(20, r, nil)
		want := BBRStartup
		if i == 6 {
			want = BBRDrain // 800, then 3 rounds below 1000 (= 800*1.25)
		}
		s.expect(want)
		if i < 6 && s.b.PacingGain() != 2.77 {
			t.Fatalf("startup pacing gain %v", s.b.PacingGain())
		}
	}
	if !s.b.FullBwReached() || s.b.PacingGain() != 0.5 {
		t.Fatalf("full_bw_reached %v, drain gain %v", s.b.FullBwReached(), s.b.PacingGain())
	}
	// Drain ends once in flight <= BDP (990 packets/s * 100 ms = 99).
	s.inflight = 150
	s.round(20, 990, nil)
	s.expect(BBRDrain)
	s.inflight = 95
	s.round(1, 990, nil)
	s.expect(BBRProbeBWCruise) // via DOWN: in flight is already below BDP with headroom
}

// Application-limited rounds do not count as a bandwidth plateau.
func TestBBRStartupAppLimited(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.round(20, 100, nil)
	s.app = true
	for range 10 {
		s.round(20, 100, nil)
	}
	s.expect(BBRStartup)
	// Drain also ends after 3 rounds even if in flight stays high.
	s.app = false
	for range 3 {
		s.round(20, 100, nil)
	}
	s.expect(BBRDrain)
	s.inflight = 500
	for range 4 {
		s.round(20, 100, nil)
	}
	s.expect(BBRProbeBWDown)
}

// Startup exits on sustained loss in fast recovery; undo returns to Startup.
func TestBBRStartupHighLoss(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.round(20, 100, nil)
	s.round(20, 200, nil)
	s.b.OnCongestionEvent(s.now, s.b.Cwnd())
	lossy := func(i int, rs *RateSample) {
		if i < 8 {
			rs.Losses = 1
			rs.LostSinceTx = int64(i + 1)
			rs.TxInFlight = 40
		}
	}
	s.round(20, 400, lossy)
	s.expect(BBRStartup) // recovery must last a full round first
	s.round(1, 400, lossy)
	s.expect(BBRDrain)
	s.round(19, 400, lossy)
	if math.IsInf(s.b.InflightLongterm(), 1) {
		t.Fatalf("inflight_longterm not set")
	}
	t.Logf("inflight_longterm after startup loss exit: %.1f", s.b.InflightLongterm())
	s.b.Undo()
	s.expect(BBRStartup)
	if s.b.FullBwReached() || !math.IsInf(s.b.InflightLongterm(), 1) {
		t.Fatalf("undo: full_bw_reached %v inflight_longterm %v", s.b.FullBwReached(), s.b.InflightLongterm())
	}
}

// CRUISE -> REFILL after the randomized 2-3 s wait, REFILL -> UP after one
// round, UP -> DOWN on a bandwidth plateau, DOWN -> CRUISE when in flight
// drops below the BDP.
func TestBBRProbeBWCycle(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	cruiseAt := s.now
	for s.b.State() == BBRProbeBWCruise {
		s.round(1, 1000, nil)
	}
	s.expect(BBRProbeBWRefill)
	wait := s.now.Sub(cruiseAt)
	if wait < 2*time.Second-200*time.Millisecond || wait > 3*time.Second+100*time.Millisecond {
		t.Fatalf("REFILL after %v in CRUISE", wait)
	}
	if s.b.PacingGain() != 1 {
		t.Fatalf("refill gain %v", s.b.PacingGain())
	}
	s.round(20, 1000, nil)
	s.expect(BBRProbeBWUp)
	if s.b.PacingGain() != 1.25 || s.b.cwndGain != 2.25 {
		t.Fatalf("up gains %v/%v", s.b.PacingGain(), s.b.cwndGain)
	}
	// Bandwidth does not grow: three rounds later, DOWN.
	s.inflight = 130
	for i := range 3 {
		s.round(20, 1000, nil)
		if i < 2 {
			s.expect(BBRProbeBWUp)
		}
	}
	s.expect(BBRProbeBWDown)
	if s.b.PacingGain() != 0.9 {
		t.Fatalf("down gain %v", s.b.PacingGain())
	}
	s.round(20, 1000, nil)
	s.expect(BBRProbeBWDown) // still 130 in flight > BDP 100
	s.inflight = 99
	s.round(1, 1000, nil)
	s.expect(BBRProbeBWCruise)
}

// Loss above 2 % while probing in UP: inflight_longterm is set, BBR goes
// DOWN; the next probe is precautionary. Undo restores and re-probes.
func TestBBRProbeUpLoss(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.queue = 30 * time.Millisecond // the losses come with a standing queue
	for s.b.State() != BBRProbeBWUp {
		s.round(20, 1000, nil)
	}
	s.inflight = 120
	s.b.OnCongestionEvent(s.now, 120)
	s.round(1, 1000, func(_ int, rs *RateSample) {
		rs.Losses = 4
		rs.TxInFlight = 125
		rs.LostSinceTx = 4 // 3.2 % > 2 %
	})
	s.expect(BBRProbeBWDown)
	if got := s.b.InflightLongterm(); got != 125 {
		t.Fatalf("inflight_longterm %v, want tx_in_flight 125", got)
	}
	if !s.b.prevProbeTooHigh {
		t.Fatalf("prev_probe_too_high not set")
	}
	// cwnd is capped by inflight_longterm in DOWN.
	s.round(20, 1000, nil)
	if s.b.Cwnd() > 125 {
		t.Fatalf("cwnd %d above inflight_longterm", s.b.Cwnd())
	}
	// The loss was spurious.
	s.b.Undo()
	s.expect(BBRProbeBWRefill)
	if !math.IsInf(s.b.InflightLongterm(), 1) {
		t.Fatalf("undo kept inflight_longterm %v", s.b.InflightLongterm())
	}
}

// Loss while not probing (CRUISE) lowers the short-term model once per
// round: bw_shortterm = max(bw_latest, 0.7*bw_shortterm).
func TestBBRCruiseLoss(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.queue = 30 * time.Millisecond
	s.round(20, 1000, func(i int, rs *RateSample) {
		if i == 5 {
			rs.Losses = 1
			rs.LostSinceTx = 1
		}
	})
	s.round(20, 600, nil) // loss round ends on this round's first ACK
	s.expect(BBRProbeBWCruise)
	if s.b.bwShortterm != 1000 || s.b.bw != 1000 {
		// max(bw_latest 1000, 0.7*1000): the round with the loss still delivered 1000/s.
		t.Fatalf("bw_shortterm %v bw %v", s.b.bwShortterm, s.b.bw)
	}
	s.round(20, 600, func(i int, rs *RateSample) {
		if i == 0 {
			rs.Losses = 1
			rs.LostSinceTx = 1
		}
	})
	s.round(1, 600, nil)
	if math.Abs(s.b.bwShortterm-700) > 1e-9 { // max(600, 0.7*1000)
		t.Fatalf("bw_shortterm %v, want 700", s.b.bwShortterm)
	}
	if want := 0.99 * 700 * 1000; math.Abs(float64(s.b.PacingRate())-want) > 1000 {
		t.Fatalf("pacing rate %d, want ~%.0f", s.b.PacingRate(), want)
	}
}

// ProbeRTT: 5 s without a lower RTT sample; cwnd drops to BDP/2 for at
// least 200 ms and a round, then returns; a lower sample postpones it.
func TestBBRProbeRTT(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	stamp := s.b.probeRTTMinStamp
	// A lower RTT sample at 3 s restarts the 5 s clock. The later samples
	// (100 ms) are 2 ms above it, beyond ustack's slack of
	// max(min_rtt/64, 250 us) = 1.53 ms, so they do not postpone ProbeRTT.
	for s.now.Sub(t0) < 3*time.Second {
		s.round(20, 1000, nil)
	}
	s.round(1, 1000, func(_ int, rs *RateSample) { rs.RTT = 98 * time.Millisecond })
	if s.b.probeRTTMinStamp == stamp || s.b.MinRTT() != 98*time.Millisecond {
		t.Fatalf("lower RTT did not refresh min_rtt")
	}
	refreshed := s.now
	prior := s.b.Cwnd()
	for s.b.State() != BBRProbeRTT {
		s.round(1, 1000, nil)
		if s.now.Sub(refreshed) > BBRProbeRTTInterval+s.rtt {
			t.Fatalf("no ProbeRTT %v after the last min RTT", s.now.Sub(refreshed))
		}
	}
	if d := s.now.Sub(refreshed); d <= BBRProbeRTTInterval {
		t.Fatalf("ProbeRTT after %v", d)
	}
	entered := s.now
	halfBDP := toPkts(0.5 * 1000 * 0.098)
	if s.b.Cwnd() > halfBDP {
		t.Fatalf("ProbeRTT cwnd %d, want <= %d", s.b.Cwnd(), halfBDP)
	}
	s.inflight = halfBDP - 1
	for s.b.State() == BBRProbeRTT {
		s.round(10, 1000, nil)
		if s.now.Sub(entered) > time.Second {
			t.Fatalf("stuck in ProbeRTT: probe cwnd %.1f bw %.1f minrtt %v inflight %d done %v", s.b.probeRTTCwnd(), s.b.bw, s.b.minRTT, s.b.inflight, s.b.probeRTTDoneStamp)
		}
	}
	if d := s.now.Sub(entered); d < BBRProbeRTTDuration {
		t.Fatalf("ProbeRTT lasted %v", d)
	}
	s.expect(BBRProbeBWCruise)
	if s.b.Cwnd() < prior {
		t.Fatalf("cwnd %d not restored to %d", s.b.Cwnd(), prior)
	}
}

// Restarting from idle in ProbeBW paces at exactly bw (minus the 1 % margin).
func TestBBRIdleRestart(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	for s.b.State() != BBRProbeBWUp {
		s.round(20, 1000, nil)
	}
	cwnd := s.b.Cwnd()
	s.b.OnIdleRestart(s.now.Add(time.Second), time.Second, 300*time.Millisecond)
	if got, want := s.b.PacingRate(), int64(0.99*1000*1000); got != want {
		t.Fatalf("pacing after idle %d, want %d", got, want)
	}
	if s.b.Cwnd() != cwnd {
		t.Fatalf("cwnd changed on idle restart")
	}
}

func TestWinMax(t *testing.T) {
	var m winMax
	m.reset(0, 5)
	if got := m.update(1, 3, 10); got != 5 {
		t.Fatalf("got %v", got)
	}
	if got := m.update(5, 4, 10); got != 5 {
		t.Fatalf("got %v", got)
	}
	// 5 expires after 10 rounds; the next best recent sample takes over.
	if got := m.update(11, 1, 10); got != 4 {
		t.Fatalf("after expiry got %v, want 4", got)
	}
	if got := m.update(12, 9, 10); got != 9 {
		t.Fatalf("got %v", got)
	}
}

// The per-packet loss step estimates the in-flight volume at which the loss
// rate crossed 2 % (InflightAtLoss).
func TestBBROnPacketLost(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.queue = 30 * time.Millisecond
	for s.b.State() != BBRProbeBWUp {
		s.round(20, 1000, nil)
	}
	var obs PacketLossObserver = s.b
	// 2 of 100 lost: not above the threshold.
	obs.OnPacketLost(s.now, LostPacket{TxInFlight: 100, LostSinceTx: 2})
	s.expect(BBRProbeBWUp)
	// 3 of 100: (0.02*99 - 2)/0.98 = -0.0204, so the threshold was crossed at
	// 98.98 packets in flight.
	obs.OnPacketLost(s.now, LostPacket{TxInFlight: 100, LostSinceTx: 3})
	s.expect(BBRProbeBWDown)
	if got, want := s.b.InflightLongterm(), 99-0.02/0.98; math.Abs(got-want) > 1e-9 {
		t.Fatalf("inflight_longterm %v, want %v", got, want)
	}
	// Only one reaction per probe.
	obs.OnPacketLost(s.now, LostPacket{TxInFlight: 50, LostSinceTx: 10})
	if s.b.InflightLongterm() < 98 {
		t.Fatalf("second loss lowered inflight_longterm to %v", s.b.InflightLongterm())
	}
}

// RTO: cwnd 1, the window floor of 4 on the next ACK, and the last known
// good cwnd back when recovery ends.
func TestBBRRTO(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	prior := s.b.Cwnd()
	s.b.OnRTO(s.now, 0)
	if s.b.Cwnd() != 1 {
		t.Fatalf("cwnd after RTO %d", s.b.Cwnd())
	}
	s.inflight = 1
	s.round(1, 1000, nil)
	if s.b.Cwnd() != bbrMinPipeCwnd {
		t.Fatalf("cwnd after first ACK %d, want MinPipeCwnd", s.b.Cwnd())
	}
	s.b.OnRecoveryEnd(s.now)
	if s.b.Cwnd() != prior {
		t.Fatalf("cwnd after recovery %d, want %d", s.b.Cwnd(), prior)
	}
	if s.b.Ssthresh() != InfiniteSsthresh {
		t.Fatalf("ssthresh %d", s.b.Ssthresh())
	}
	// With cwnd cut to 4, min(BDP, cwnd) = 4 rounds already justify a new
	// bandwidth probe (Reno-coexistence time scale).
	if s.b.State().String() != "ProbeBW_REFILL" {
		t.Fatalf("state %v", s.b.State())
	}
}

// Losses without a standing queue (the least RTT of the round within
// max(min_rtt/4, 4 ms) of min_rtt) are not congestion: random loss
// of 3 % neither lowers the short-term model in CRUISE nor ends a probe in
// UP. With 30 ms of queueing delay the same losses do.
func TestBBRRandomLossIgnored(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.queue = 24 * time.Millisecond // below min_rtt/4 = 25 ms
	lossy := func(i int, rs *RateSample) {
		if i%7 == 0 {
			rs.Losses = 1
			rs.LostSinceTx = 3 // 3 of 100: above the 2 % threshold
			rs.TxInFlight = 100
		}
	}
	for range 5 {
		s.round(20, 1000, lossy)
	}
	if !math.IsInf(s.b.bwShortterm, 1) || !math.IsInf(s.b.inflightShortterm, 1) {
		t.Fatalf("random loss lowered the short-term model: bw %v inflight %v", s.b.bwShortterm, s.b.inflightShortterm)
	}
	for s.b.State() != BBRProbeBWUp {
		s.round(20, 1000, nil)
	}
	s.round(20, 1000, lossy)
	s.expect(BBRProbeBWUp)
	if !math.IsInf(s.b.InflightLongterm(), 1) {
		t.Fatalf("random loss set inflight_longterm %v", s.b.InflightLongterm())
	}
	var obs PacketLossObserver = s.b
	obs.OnPacketLost(s.now, LostPacket{TxInFlight: 100, LostSinceTx: 3})
	s.expect(BBRProbeBWUp)
	// The same losses with a 30 ms standing queue end the probe.
	s.queue = 30 * time.Millisecond
	s.round(20, 1000, nil)
	s.round(20, 1000, lossy)
	s.expect(BBRProbeBWDown)
}
