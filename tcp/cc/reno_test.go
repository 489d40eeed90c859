package cc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNewNames(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "bbr,cubic,reno" {
		t.Fatalf("Names() = %q", got)
	}
	for name, want := range map[string]string{"": "cubic", "cubic": "cubic", "reno": "reno", "bbr": "bbr"} {
		c, err := New(name)
		if err != nil || c.Name() != want {
			t.Fatalf("New(%q) = %v, %v; want %s", name, c, err, want)
		}
		c.Init(1460, t0)
		if c.Cwnd() != 10 || c.Ssthresh() != InfiniteSsthresh {
			t.Fatalf("%s after Init: cwnd %d ssthresh %d", want, c.Cwnd(), c.Ssthresh())
		}
	}
	_, err := New("vegas")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "bbr, cubic, reno") {
		t.Fatalf("New(vegas) error = %v", err)
	}
}

// Slow start doubles cwnd every RTT from the initial window of 10.
func TestSlowStartDoubling(t *testing.T) {
	for _, c := range []Controller{NewReno(), NewCubic()} {
		const rtt = 100 * time.Millisecond
		f := newFlow(t, c, rtt)
		want := 10
		for k := 1; k <= 6; k++ {
			f.runUntil(t0.Add(time.Duration(k) * rtt))
			want *= 2
			if c.Cwnd() != want {
				t.Fatalf("%s: cwnd after %d RTTs = %d, want %d", c.Name(), k, c.Cwnd(), want)
			}
		}
	}
}

// Reno: loss halves the window (from FlightSize), then +1 packet per RTT.
func TestRenoHalvingAndLinearGrowth(t *testing.T) {
	const rtt = 50 * time.Millisecond
	r := NewReno()
	f := newFlow(t, r, rtt)
	f.runUntil(t0.Add(3 * rtt)) // cwnd 80, 80 in flight
	if r.Cwnd() != 80 || f.inFlight() != 80 {
		t.Fatalf("cwnd %d inflight %d", r.Cwnd(), f.inFlight())
	}
	r.OnCongestionEvent(f.now, f.inFlight())
	if r.Ssthresh() != 40 || r.Cwnd() != 40 {
		t.Fatalf("after loss: cwnd %d ssthresh %d, want 40/40", r.Cwnd(), r.Ssthresh())
	}
	// No growth in recovery.
	f.inRec = true
	f.runUntil(f.now.Add(rtt))
	if r.Cwnd() != 40 {
		t.Fatalf("cwnd grew in recovery: %d", r.Cwnd())
	}
	f.inRec = false
	r.OnRecoveryEnd(f.now)
	f.q = f.q[:0]
	start := f.now
	for k := 1; k <= 20; k++ {
		f.runUntil(start.Add(time.Duration(k) * rtt))
		if want := 40 + k; r.Cwnd() != want {
			t.Fatalf("CA round %d: cwnd %d want %d", k, r.Cwnd(), want)
		}
	}
	// Loss with a small flight: ssthresh never below 2.
	r.OnCongestionEvent(f.now, 3)
	if r.Ssthresh() != 2 || r.Cwnd() != 2 {
		t.Fatalf("min window: cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
}

// Appropriate byte counting with stretch ACKs: 2 packets per ACK still gives
// +1 per cwnd packets acked.
func TestRenoStretchAcks(t *testing.T) {
	r := NewReno()
	r.Init(1000, t0)
	r.OnCongestionEvent(t0, 20) // ssthresh 10
	r.OnRecoveryEnd(t0)
	total := 0
	for total < 10+11+12 {
		r.OnAck(t0, &RateSample{AckedSacked: 2, PriorInFlight: r.Cwnd()})
		total += 2
	}
	if r.Cwnd() != 13 {
		t.Fatalf("cwnd %d want 13", r.Cwnd())
	}
}

func TestRTOAndUndo(t *testing.T) {
	for _, c := range []Controller{NewReno(), NewCubic()} {
		const rtt = 50 * time.Millisecond
		f := newFlow(t, c, rtt)
		f.runUntil(t0.Add(3 * rtt)) // cwnd 80
		c.OnRTO(f.now, f.inFlight())
		wantSs := 40
		if c.Name() == "cubic" {
			wantSs = 80 * 717 / 1024 // 56
		}
		if c.Cwnd() != 1 || c.Ssthresh() != wantSs {
			t.Fatalf("%s after RTO: cwnd %d ssthresh %d, want 1/%d", c.Name(), c.Cwnd(), c.Ssthresh(), wantSs)
		}
		// Backed-off repeat without progress keeps ssthresh.
		c.OnRTO(f.now.Add(time.Second), 1)
		if c.Cwnd() != 1 || c.Ssthresh() != wantSs {
			t.Fatalf("%s after 2nd RTO: cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
		// Slow start from 1 after the RTO: 1, 2, 4, 8, ...
		f.q = f.q[:0]
		start := f.now
		for k, want := range []int{2, 4, 8, 16, 32, wantSs} {
			f.runUntil(start.Add(time.Duration(k+1) * rtt))
			if c.Cwnd() != want {
				t.Fatalf("%s: %d RTTs after RTO cwnd %d want %d", c.Name(), k+1, c.Cwnd(), want)
			}
		}
		// The RTO turns out spurious: restore.
		c.Undo()
		if c.Cwnd() != 80 || c.Ssthresh() != InfiniteSsthresh {
			t.Fatalf("%s after Undo: cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
		c.Undo() // nothing saved any more: no-op
		if c.Cwnd() != 80 {
			t.Fatalf("%s: second Undo changed cwnd to %d", c.Name(), c.Cwnd())
		}
		// Undo of a fast-recovery reduction.
		c.OnCongestionEvent(f.now, 80)
		c.Undo()
		if c.Cwnd() != 80 || c.Ssthresh() != InfiniteSsthresh {
			t.Fatalf("%s after Undo of recovery: cwnd %d ssthresh %d", c.Name(), c.Cwnd(), c.Ssthresh())
		}
	}
}

func TestIdleRestart(t *testing.T) {
	const rto = 200 * time.Millisecond
	for _, tc := range []struct {
		idle               time.Duration
		ssthresh           int
		wantCwnd, wantSsth int
	}{
		{idle: 150 * time.Millisecond, ssthresh: 40, wantCwnd: 80, wantSsth: 40}, // idle < RTO: nothing
		{idle: 300 * time.Millisecond, ssthresh: 40, wantCwnd: 40, wantSsth: 60}, // 1.5 RTO: one halving
		{idle: 500 * time.Millisecond, ssthresh: 40, wantCwnd: 20, wantSsth: 60}, // 2.5 RTO: two
		{idle: 700 * time.Millisecond, ssthresh: 100, wantCwnd: 10, wantSsth: 100},
		{idle: time.Hour, ssthresh: 40, wantCwnd: 10, wantSsth: 60}, // restart window min(IW, cwnd)
	} {
		for _, c := range []Controller{NewReno(), NewCubic()} {
			c.Init(1000, t0)
			forceWindow(c, 80, tc.ssthresh)
			c.OnIdleRestart(t0, tc.idle, rto)
			if c.Cwnd() != tc.wantCwnd || c.Ssthresh() != tc.wantSsth {
				t.Errorf("%s idle %v: cwnd %d ssthresh %d, want %d/%d", c.Name(), tc.idle, c.Cwnd(), c.Ssthresh(), tc.wantCwnd, tc.wantSsth)
			}
		}
	}
	// A window already below IW is not touched.
	r := NewReno()
	forceWindow(r, 4, 2)
	r.OnIdleRestart(t0, time.Hour, rto)
	if r.Cwnd() != 4 {
		t.Errorf("small window: cwnd %d", r.Cwnd())
	}
}

func forceWindow(c Controller, cwnd, ssthresh int) {
	switch x := c.(type) {
	case *Reno:
		x.w.cwnd, x.w.ssthresh = cwnd, ssthresh
	case *Cubic:
		x.w.cwnd, x.w.ssthresh = cwnd, ssthresh
	}
}

func TestNoGrowthWhenNotCwndLimited(t *testing.T) {
	r := NewReno()
	r.Init(1000, t0)
	for range 100 {
		r.OnAck(t0, &RateSample{AckedSacked: 1, PriorInFlight: 4})
	}
	if r.Cwnd() != 10 {
		t.Fatalf("app-limited flow grew cwnd to %d", r.Cwnd())
	}
	r.OnAck(t0, &RateSample{AckedSacked: 1, PriorInFlight: 5})
	if r.Cwnd() != 11 {
		t.Fatalf("half-used window did not grow: %d", r.Cwnd())
	}
}

func TestECE(t *testing.T) {
	r := NewReno()
	r.Init(1000, t0)
	forceWindow(r, 40, InfiniteSsthresh)
	r.OnAck(t0, &RateSample{AckedSacked: 1, PriorInFlight: 31, InFlight: 30})
	r.OnECE(t0)
	if r.Ssthresh() != 15 || r.Cwnd() != 15 {
		t.Fatalf("reno ECE: cwnd %d ssthresh %d", r.Cwnd(), r.Ssthresh())
	}
	r.OnECE(t0) // once per reduction
	if r.Ssthresh() != 15 {
		t.Fatalf("second ECE cut again: ssthresh %d", r.Ssthresh())
	}
	r.OnRecoveryEnd(t0)
	c := NewCubic()
	forceWindow(c, 100, InfiniteSsthresh)
	c.OnECE(t0)
	if c.Ssthresh() != 70 || c.Cwnd() != 70 {
		t.Fatalf("cubic ECE: cwnd %d ssthresh %d", c.Cwnd(), c.Ssthresh())
	}
	c.OnECE(t0)
	if c.Ssthresh() != 70 {
		t.Fatalf("cubic second ECE: ssthresh %d", c.Ssthresh())
	}
}

func TestPacingRate(t *testing.T) {
	// 10 packets of 1000 bytes per 100 ms = 100 kB/s; 200 % in slow start.
	if got := LinuxPacingRate(10, 0, InfiniteSsthresh, 1000, 100*time.Millisecond); got != 200000 {
		t.Fatalf("ss rate %d", got)
	}
	if got := LinuxPacingRate(10, 12, 15, 1000, 100*time.Millisecond); got != 144000 {
		t.Fatalf("ca rate %d", got) // max(cwnd, inflight)=12 at 120 %
	}
	if got := LinuxPacingRate(10, 0, 15, 1000, 0); got != 0 {
		t.Fatalf("no srtt: %d", got)
	}
	for _, c := range []Controller{NewReno(), NewCubic()} {
		c.Init(1000, t0)
		c.OnAck(t0, &RateSample{AckedSacked: 1, RTT: 100 * time.Millisecond, PriorInFlight: 10, InFlight: 9})
		if c.PacingRate() != 0 {
			t.Fatalf("%s paces without SetPacing", c.Name())
		}
		c.(Pacer).SetPacing(true)
		if got := c.PacingRate(); got != 11*1000*10*2 {
			t.Fatalf("%s pacing rate %d", c.Name(), got)
		}
	}
}

func TestPRR(t *testing.T) {
	// RFC 9937 example: 20 in flight, ssthresh 10, one packet lost; each
	// ACK delivers one packet: PRR sends one packet per two ACKs.
	var p PRR
	p.Start(10, 20)
	pipe := 19
	sent := 0
	for i := range 10 {
		pipe--
		n := p.OnAck(1, pipe, false)
		want := 0
		if i%2 == 0 {
			want = 1
		}
		if n != want {
			t.Fatalf("ack %d: sndcnt %d want %d", i, n, want)
		}
		p.OnSend(n)
		pipe += n
		sent += n
	}
	if sent != 5 || pipe != 14 {
		t.Fatalf("sent %d pipe %d", sent, pipe)
	}
	// Below ssthresh (heavy loss) the window grows back by at most what
	// was delivered (PRR-CRB), plus one on an ACK that advanced SND.UNA
	// without new loss (safeACK: PRR-SSRB).
	p.Start(10, 20)
	if n := p.OnAck(2, 4, false); n != 2 {
		t.Fatalf("CRB sndcnt %d want 2", n)
	}
	p.Start(10, 20)
	if n := p.OnAck(2, 4, true); n != 3 {
		t.Fatalf("SSRB sndcnt %d want 3", n)
	}
	// ... never beyond ssthresh.
	p.Start(10, 20)
	if n := p.OnAck(5, 9, true); n != 1 {
		t.Fatalf("sndcnt %d at pipe 9, ssthresh 10: want 1", n)
	}
}

// RFC 9937 RecoverFS leaves out what was SACKed before recovery: 20 out,
// 6 of them SACKed, 1 lost (pipe 13), ssthresh 10. The 14 packets recovery
// can deliver clock out 10 in proportion, so the pipe comes down to
// ssthresh smoothly as the last of them arrive; with RFC 6937's RecoverFS
// (all 20 out) it dropped to ssthresh after only 5 deliveries
// (13 12 12 11 10 ...), sending less early in the recovery.
func TestPRRRecoverFS(t *testing.T) {
	var p PRR
	p.Start(10, 20-6)
	pipe := 13
	var got []int
	for range 13 {
		pipe--
		n := p.OnAck(1, pipe, false)
		p.OnSend(n)
		pipe += n
		got = append(got, pipe)
	}
	if want := "[13 13 13 12 12 12 11 10 10 10 10 10 10]"; fmt.Sprint(got) != want {
		t.Fatalf("pipe after each ACK %v, want %s", got, want)
	}
}

// A stretch ACK that crosses ssthresh: the part above ssthresh counts
// towards congestion avoidance.
func TestSlowStartCrossingSsthresh(t *testing.T) {
	r := NewReno()
	forceWindow(r, 10, 12)
	r.OnAck(t0, &RateSample{AckedSacked: 5, PriorInFlight: 10})
	if r.Cwnd() != 12 || r.w.cwndCnt != 3 {
		t.Fatalf("cwnd %d cnt %d, want 12/3", r.Cwnd(), r.w.cwndCnt)
	}
	r.OnAck(t0, &RateSample{AckedSacked: 9, PriorInFlight: 12})
	if r.Cwnd() != 13 || r.w.cwndCnt != 0 {
		t.Fatalf("cwnd %d cnt %d, want 13/0", r.Cwnd(), r.w.cwndCnt)
	}
}

// Reno and CUBIC on a tail-drop bottleneck (1000 packets/s, 50 ms, 50
// packet queue: losses when cwnd exceeds ~101): the loss-driven sawtooth.
func TestSawtoothOnPath(t *testing.T) {
	type event struct {
		at       time.Duration
		ssthresh int
	}
	for _, c := range []Controller{NewReno(), NewCubic()} {
		s := newPathSim(t, c, 1000, 50*time.Millisecond)
		s.queueCap = 50
		var events []event
		inRec := false
		s.onAck = func(*RateSample) {
			if s.inRec && !inRec {
				events = append(events, event{s.now.Sub(t0), c.Ssthresh()})
			}
			inRec = s.inRec
		}
		s.run(t0.Add(60 * time.Second))
		util := float64(s.delivered) / 60000
		t.Logf("%s: %d congestion events, utilization %.3f, first events %v", c.Name(), len(events), util, events[:min(len(events), 6)])
		if len(events) < 4 {
			t.Fatalf("%s: only %d congestion events", c.Name(), len(events))
		}
		steady := events[2:] // after the slow-start overshoot has settled
		for i, e := range steady {
			switch c.Name() {
			case "reno": // half of a flight of ~BDP+queue = 101
				if e.ssthresh < 45 || e.ssthresh > 56 {
					t.Errorf("reno event %d: ssthresh %d", i+1, e.ssthresh)
				}
			case "cubic": // 0.7 of ~101
				if e.ssthresh < 65 || e.ssthresh > 75 {
					t.Errorf("cubic event %d: ssthresh %d", i+1, e.ssthresh)
				}
			}
			if i > 0 {
				gap := e.at - steady[i-1].at
				// Reno: ~50 packets at +1 per RTT (RTT 51..101 ms): ~4 s.
				// CUBIC: K = cbrt((101-70)/0.4) = 4.26 s; the loss comes when
				// cwnd reaches 101, ~0.9 s before the plateau: ~3.4 s.
				if gap < 2*time.Second {
					t.Errorf("%s: events %v apart", c.Name(), gap)
				}
			}
		}
		if util < 0.9 {
			t.Errorf("%s: utilization %.3f", c.Name(), util)
		}
	}
}
