package cc

import (
	"math"
	"testing"
	"time"
)

const testBeta = 717.0 / 1024

// wCubicRef is RFC 9438 eq. 1, computed independently of the controller.
func wCubicRef(t, k, wMax float64) float64 {
	return 0.4*math.Pow(t-k, 3) + wMax
}

// cubicAfterLoss returns a CUBIC controller in congestion avoidance right
// after a loss at cwnd wMax, with a full window spread over the next RTT.
func cubicAfterLoss(t *testing.T, wMax int, rtt time.Duration) (*Cubic, *flow) {
	c := NewCubic()
	f := newFlow(t, c, rtt)
	f.minRTT = rtt
	forceWindow(c, wMax, InfiniteSsthresh)
	c.OnCongestionEvent(f.now, wMax)
	c.OnRecoveryEnd(f.now)
	f.restart(rtt)
	return c, f
}

// After a loss at W_max, cwnd follows W_cubic(t) = C*(t-K)^3 + W_max through
// the concave region, the plateau and into the convex region. cwnd is an
// integer: it must stay within 1 packet of floor(W_cubic(t)).
func TestCubicCurve(t *testing.T) {
	const wMax = 1000
	const rtt = 100 * time.Millisecond
	c, f := cubicAfterLoss(t, wMax, rtt)
	if c.Cwnd() != 700 || c.Ssthresh() != 700 {
		t.Fatalf("beta reduction: cwnd %d ssthresh %d, want 700/700", c.Cwnd(), c.Ssthresh())
	}
	k := math.Cbrt(wMax * (1 - testBeta) / 0.4)
	var epoch time.Time
	maxErr, maxFracErr := 0.0, 0.0
	checked := 0
	f.onAck = func(rs *RateSample) {
		if epoch.IsZero() {
			epoch = f.now
		}
		tt := f.now.Sub(epoch).Seconds()
		want := wCubicRef(tt, k, wMax)
		d := float64(c.Cwnd()) - math.Floor(want)
		maxErr = max(maxErr, math.Abs(d))
		if math.Abs(d) > 1 {
			t.Fatalf("t=%.3fs: cwnd %d, W_cubic %.2f (K=%.3f)", tt, c.Cwnd(), want, k)
		}
		// The window with its carried fraction tracks the real-valued curve.
		if e := float64(c.Cwnd()) + c.frac - want; math.Abs(e) > 1 {
			t.Fatalf("t=%.3fs: cwnd+frac %.3f, W_cubic %.3f", tt, float64(c.Cwnd())+c.frac, want)
		} else {
			maxFracErr = max(maxFracErr, math.Abs(e))
		}
		checked++
	}
	f.runUntil(f.now.Add(time.Duration(k * float64(time.Second))))
	if c.Cwnd() < wMax-1 || c.Cwnd() > wMax+1 {
		t.Fatalf("at t=K cwnd %d, want plateau %d", c.Cwnd(), wMax)
	}
	f.runUntil(f.now.Add(time.Duration(0.8 * k * float64(time.Second))))
	if c.Cwnd() < 1100 {
		t.Fatalf("convex region: cwnd %d at t=1.8K", c.Cwnd())
	}
	t.Logf("K=%.3fs, %d ACKs checked, max |cwnd-floor(W_cubic(t))| = %.0f, max |cwnd+frac-W_cubic(t)| = %.3f packets, cwnd at 1.8K = %d",
		k, checked, maxErr, maxFracErr, c.Cwnd())
}

// Fast convergence: a loss below the previous W_max lowers the plateau to
// cwnd*(1+beta)/2; without it the plateau is the cwnd at the loss.
func TestCubicFastConvergence(t *testing.T) {
	const rtt = 100 * time.Millisecond
	for _, fc := range []bool{true, false} {
		c, f := cubicAfterLoss(t, 1000, rtt) // W_max 1000, cwnd 700
		c.FastConvergence = fc
		c.OnCongestionEvent(f.now, 700) // loss again before reaching 1000
		c.OnRecoveryEnd(f.now)
		f.restart(rtt)
		wMax := 700.0
		if fc {
			wMax = 700 * (1 + testBeta) / 2 // 595.07
		}
		epochCwnd := float64(700 * 717 / 1024) // 490
		if c.Cwnd() != int(epochCwnd) {
			t.Fatalf("fc=%v: cwnd %d", fc, c.Cwnd())
		}
		k := math.Cbrt((wMax - epochCwnd) / 0.4)
		var epoch time.Time
		f.onAck = func(rs *RateSample) {
			if epoch.IsZero() {
				epoch = f.now
			}
			tt := f.now.Sub(epoch).Seconds()
			if want := wCubicRef(tt, k, wMax); math.Abs(float64(c.Cwnd())-math.Floor(want)) > 1 {
				t.Fatalf("fc=%v t=%.3fs: cwnd %d, W_cubic %.2f", fc, tt, c.Cwnd(), want)
			}
		}
		f.runUntil(f.now.Add(time.Duration(k * float64(time.Second))))
		if math.Abs(float64(c.Cwnd())-wMax) > 1 {
			t.Fatalf("fc=%v: plateau cwnd %d want %.1f", fc, c.Cwnd(), wMax)
		}
		t.Logf("fast convergence %v: W_max %.2f, K %.3fs, cwnd at K %d", fc, wMax, k, c.Cwnd())
	}
}

// On a short-RTT path Reno's AIMD outgrows the cubic curve: cwnd follows
// W_est = W_max*beta + alpha*t/RTT (alpha = 3(1-beta)/(1+beta)), and +1 per
// RTT once W_est passed the window before the loss (RFC 9438 4.3).
func TestCubicRenoFriendly(t *testing.T) {
	const wMax = 100
	const rtt = 10 * time.Millisecond
	c, f := cubicAfterLoss(t, wMax, rtt)
	alpha := 3 * (1 - testBeta) / (1 + testBeta)
	k := math.Cbrt(wMax * (1 - testBeta) / 0.4)
	start := f.now
	est := 70.0
	for n := 1; n <= 100; n++ {
		f.runUntil(start.Add(time.Duration(n) * rtt))
		if est < wMax {
			est += alpha
		} else {
			est++
		}
		if d := float64(c.Cwnd()) - math.Floor(est); math.Abs(d) > 1 {
			t.Fatalf("round %d: cwnd %d, W_est %.2f", n, c.Cwnd(), est)
		}
		if n == 50 {
			wc := wCubicRef(float64(n)*rtt.Seconds(), k, wMax)
			if float64(c.Cwnd()) < wc+10 {
				t.Fatalf("Reno-friendly region does not dominate: cwnd %d, W_cubic %.1f", c.Cwnd(), wc)
			}
			t.Logf("after 50 RTTs: cwnd %d, W_est %.1f, W_cubic %.1f", c.Cwnd(), est, wc)
		}
	}
	// Without the Reno-friendly region, cwnd stays on the slower cubic curve.
	c2, f2 := cubicAfterLoss(t, wMax, rtt)
	c2.RenoFriendly = false
	f2.runUntil(f2.now.Add(50 * rtt))
	if wc := wCubicRef(0.5, k, wMax); math.Abs(float64(c2.Cwnd())-math.Floor(wc)) > 1 {
		t.Fatalf("RenoFriendly off: cwnd %d, W_cubic %.1f", c2.Cwnd(), wc)
	}
}

// HyStart++: slow start until the round's min RTT rises by the threshold,
// then CSS_ROUNDS rounds of conservative slow start (1/4 growth), then
// congestion avoidance with ssthresh = cwnd.
func TestHyStartPlusPlus(t *testing.T) {
	const base = 50 * time.Millisecond
	c := NewCubic()
	f := newFlow(t, c, base)
	// Packets sent from 175 ms on see 10 ms of queueing (> 50/8 = 6.25 ms).
	f.rtt = func(sent time.Time) time.Duration {
		if sent.Sub(t0) >= 175*time.Millisecond {
			return base + 10*time.Millisecond
		}
		return base
	}
	type obs struct {
		state string
		cwnd  int
		at    time.Duration
	}
	var trace []obs
	f.onAck = func(*RateSample) {
		st := c.HyStartState()
		if len(trace) == 0 || trace[len(trace)-1].state != st {
			trace = append(trace, obs{st, c.Cwnd(), f.now.Sub(t0)})
		}
	}
	f.runUntil(t0.Add(3 * time.Second))
	if len(trace) != 3 || trace[0].state != "ss" || trace[1].state != "css" || trace[2].state != "off" {
		t.Fatalf("phases %+v, want ss -> css -> off", trace)
	}
	t.Logf("phases: %+v", trace)
	// Slow start ran 4 rounds (10 -> 160) and exited on the 8th RTT sample of
	// the round with the higher RTT: cwnd 160 + 8.
	if got := trace[1].cwnd; got != 168 {
		t.Fatalf("CSS entered at cwnd %d, want 168", got)
	}
	// Five CSS rounds of 1/4 growth: roughly x1.25 per round.
	cssGrowth := float64(trace[2].cwnd) / float64(trace[1].cwnd)
	if cssGrowth < 1.25*1.25*1.25*1.25 || cssGrowth > math.Pow(1.25, 5)*1.1 {
		t.Fatalf("CSS growth x%.2f over %d rounds", cssGrowth, HyStartCSSRounds)
	}
	if c.Ssthresh() != trace[2].cwnd {
		t.Fatalf("ssthresh %d, want cwnd at CA entry %d", c.Ssthresh(), trace[2].cwnd)
	}
	// CSS lasted CSS_ROUNDS round trips of 60 ms.
	if d := trace[2].at - trace[1].at; d < 4*60*time.Millisecond || d > 6*60*time.Millisecond {
		t.Fatalf("CSS lasted %v", d)
	}
}

// HyStart++: when the RTT drops below the CSS baseline, the exit was
// spurious and slow start resumes.
func TestHyStartSpuriousCSS(t *testing.T) {
	const base = 50 * time.Millisecond
	c := NewCubic()
	f := newFlow(t, c, base)
	f.rtt = func(sent time.Time) time.Duration {
		if s := sent.Sub(t0); s >= 175*time.Millisecond && s < 250*time.Millisecond {
			return base + 10*time.Millisecond
		}
		return base
	}
	var states []string
	f.onAck = func(*RateSample) {
		st := c.HyStartState()
		if len(states) == 0 || states[len(states)-1] != st {
			states = append(states, st)
		}
	}
	f.runUntil(t0.Add(600 * time.Millisecond))
	if len(states) != 3 || states[0] != "ss" || states[1] != "css" || states[2] != "ss" {
		t.Fatalf("phases %v, want ss -> css -> ss", states)
	}
	if c.Ssthresh() != InfiniteSsthresh {
		t.Fatalf("ssthresh %d", c.Ssthresh())
	}
}

// A loss during slow start ends HyStart++ for good.
func TestHyStartOnlyInitialSlowStart(t *testing.T) {
	c := NewCubic()
	f := newFlow(t, c, 50*time.Millisecond)
	f.runUntil(t0.Add(100 * time.Millisecond))
	c.OnRTO(f.now, f.inFlight())
	if c.HyStartState() != "off" {
		t.Fatalf("HyStart++ still %s after RTO", c.HyStartState())
	}
}

// On a path with a deep buffer (4 BDP), HyStart++ sees the queueing delay
// and leaves slow start long before the buffer overflows. It cannot avoid
// loss altogether here: ACK-clocked slow-start bursts drain the queue between
// rounds until cwnd > BDP, so the RTT rise shows one round late (cwnd ~3 BDP),
// and the five CSS rounds at x1.25 still overflow the buffer, but with a
// fraction of plain slow start's overshoot losses.
func TestHyStartDeepBufferPath(t *testing.T) {
	cssAt := 0
	run := func(hystart bool) (drops int64, c *Cubic) {
		c = NewCubic()
		c.HyStart = hystart
		s := newPathSim(t, c, 1000, 50*time.Millisecond) // BDP 51 packets
		s.queueCap = 200
		s.onAck = func(*RateSample) {
			if cssAt == 0 && c.HyStartState() == "css" {
				cssAt = c.Cwnd()
			}
		}
		s.run(t0.Add(3 * time.Second))
		return s.drops, c
	}
	withDrops, c := run(true)
	withoutDrops, c2 := run(false)
	t.Logf("HyStart++ on: CSS at cwnd %d, %d drops, ssthresh %d; off: %d drops, ssthresh %d",
		cssAt, withDrops, c.Ssthresh(), withoutDrops, c2.Ssthresh())
	if cssAt == 0 || cssAt > 4*51 {
		t.Errorf("CSS entered at cwnd %d", cssAt)
	}
	if withDrops*3 > withoutDrops {
		t.Errorf("HyStart++ %d drops vs %d without", withDrops, withoutDrops)
	}
}

// The HyStart++ delay threshold is lastRoundMinRTT/8 clamped to [4 ms, 16 ms].
func TestHyStartThreshold(t *testing.T) {
	for _, tc := range []struct {
		base, rise time.Duration
		exit       bool
	}{
		{50 * time.Millisecond, 6 * time.Millisecond, false}, // 6.25 ms threshold
		{50 * time.Millisecond, 7 * time.Millisecond, true},
		{10 * time.Millisecond, 3 * time.Millisecond, false}, // 1.25 ms -> clamped to 4 ms
		{10 * time.Millisecond, 4 * time.Millisecond, true},
		{200 * time.Millisecond, 15 * time.Millisecond, false}, // 25 ms -> clamped to 16 ms
		{200 * time.Millisecond, 16 * time.Millisecond, true},
	} {
		c := NewCubic()
		f := newFlow(t, c, tc.base)
		f.rtt = func(sent time.Time) time.Duration {
			if sent.Sub(t0) >= 3*tc.base+tc.base/2 { // from the 4th round on
				return tc.base + tc.rise
			}
			return tc.base
		}
		f.runUntil(t0.Add(6 * tc.base))
		if got := c.HyStartState() == "css"; got != tc.exit {
			t.Errorf("base %v rise %v: CSS %v, want %v (cwnd %d)", tc.base, tc.rise, got, tc.exit, c.Cwnd())
		}
	}
}
