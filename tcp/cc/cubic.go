package cc

import (
	"math"
	"time"
)

// CUBIC parameters, Linux defaults (net/ipv4/tcp_cubic.c module parameters).
const (
	// CubicBetaNum/CubicBetaDen is the multiplicative decrease factor
	// beta_cubic, 717/1024 (~0.7).
	CubicBetaNum = 717
	CubicBetaDen = 1024
	// CubicC is the cubic scaling constant C in packets/s^3.
	CubicC = 0.4
)

// cubicBeta and cubicAlpha as float64 for the growth functions.
const (
	cubicBeta  = float64(CubicBetaNum) / CubicBetaDen
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta) // RFC 9438 eq. 4 (~0.529)
)

// Cubic is CUBIC congestion control (RFC 9438) with HyStart++ (RFC 9406)
// in the initial slow start.
type Cubic struct {
	w window
	// FastConvergence lowers W_max when a flow loses before regaining its
	// previous W_max (RFC 9438 4.7). On by default.
	FastConvergence bool
	// RenoFriendly enables the Reno-friendly region (RFC 9438 4.3, Linux
	// tcp_friendliness). On by default.
	RenoFriendly bool
	// HyStart enables HyStart++ in the initial slow start. On by default.
	HyStart bool

	wMax      float64   // window before the last reduction, after fast convergence
	cwndPrior float64   // cwnd before the last reduction (switches W_est's alpha to 1)
	epoch     time.Time // start of the current congestion-avoidance epoch, zero = none
	k         float64   // seconds to reach the plateau from epoch start
	origin    float64   // plateau of the cubic function
	wEst      float64   // Reno-friendly estimate
	frac      float64   // fractional cwnd growth carried between ACKs
	lastAck   time.Time
	minRTT    time.Duration

	saved struct{ wMax, cwndPrior float64 }

	hs hystart
}

// NewCubic returns a CUBIC controller with Linux defaults; call Init before use.
func NewCubic() *Cubic {
	c := &Cubic{FastConvergence: true, RenoFriendly: true, HyStart: true}
	c.Init(1460, time.Time{})
	return c
}

// Name implements Controller.
func (c *Cubic) Name() string { return "cubic" }

// Init implements Controller.
func (c *Cubic) Init(mss int, now time.Time) {
	c.w.init(mss)
	c.wMax, c.cwndPrior = 0, 0
	c.epoch, c.lastAck = time.Time{}, time.Time{}
	c.k, c.origin, c.wEst, c.frac = 0, 0, 0, 0
	c.minRTT = 0
	c.saved.wMax, c.saved.cwndPrior = 0, 0
	c.hs = hystart{}
	c.hs.reset(!c.HyStart)
}

// wCubic is W_cubic(t) = C*(t-K)^3 + origin, t in seconds (RFC 9438 eq. 1).
func (c *Cubic) wCubic(t float64) float64 {
	d := float64(t - c.k)
	return float64(CubicC*float64(d*d*d)) + c.origin
}

// OnAck implements Controller.
func (c *Cubic) OnAck(now time.Time, rs *RateSample) {
	w := &c.w
	w.noteAck(rs)
	if rs.MinRTT > 0 {
		c.minRTT = rs.MinRTT
	} else if rs.RTT > 0 && (c.minRTT == 0 || rs.RTT < c.minRTT) {
		c.minRTT = rs.RTT
	}
	last := c.lastAck
	c.lastAck = now
	if rs.InRecovery || rs.AckedSacked <= 0 {
		return
	}
	if !cwndLimited(w.cwnd, rs) {
		// Not using the window: freeze the cubic curve in time so that
		// W_cubic does not run ahead (RFC 9438 5.8, Linux shifts the
		// epoch on CA_EVENT_TX_START for the same reason).
		if !c.epoch.IsZero() && !last.IsZero() {
			c.epoch = c.epoch.Add(now.Sub(last))
		}
		return
	}
	acked := rs.AckedSacked
	if w.cwnd < w.ssthresh {
		if c.hs.active() {
			acked = c.hs.onAck(w, rs)
		} else {
			acked = w.slowStart(acked)
		}
		if acked == 0 {
			return
		}
	}
	c.congestionAvoidance(now, acked)
}

func (c *Cubic) congestionAvoidance(now time.Time, acked int) {
	w := &c.w
	if c.epoch.IsZero() {
		c.epoch = now
		c.frac = 0
		cw := float64(w.cwnd)
		if c.wMax <= cw {
			c.k, c.origin = 0, cw
		} else {
			c.k = math.Cbrt(float64((c.wMax - cw) / CubicC))
			c.origin = c.wMax
		}
		c.wEst = cw
	}
	cw := float64(w.cwnd)
	t := now.Sub(c.epoch).Seconds()
	if c.RenoFriendly {
		a := cubicAlpha
		if c.wEst >= c.cwndPrior {
			a = 1
		}
		c.wEst += float64(a*float64(acked)) / cw
		if c.wCubic(t) < c.wEst {
			// Reno-friendly region: cwnd follows W_est.
			if e := int(c.wEst); e > w.cwnd {
				w.cwnd = e
				c.frac = 0
			}
			return
		}
	}
	// Concave/convex region: move towards W_cubic(t+RTT), at most 1.5x per RTT.
	target := c.wCubic(t + c.minRTT.Seconds())
	target = min(max(target, cw), 1.5*cw)
	c.frac += float64((target-cw)*float64(acked)) / cw
	if c.frac >= 1 {
		n := int(c.frac)
		w.cwnd += n
		c.frac -= float64(n)
	}
}

func (c *Cubic) reduce() int {
	cw := float64(c.w.cwnd)
	c.saved.wMax, c.saved.cwndPrior = c.wMax, c.cwndPrior
	if c.FastConvergence && cw < c.wMax {
		c.wMax = cw * (1 + cubicBeta) / 2
	} else {
		c.wMax = cw
	}
	c.cwndPrior = cw
	c.epoch = time.Time{}
	c.hs.reset(true)
	return c.w.cwnd * CubicBetaNum / CubicBetaDen
}

// OnCongestionEvent implements Controller: W_max = cwnd (lowered by fast
// convergence), ssthresh = cwnd = max(cwnd*beta, 2). Like Linux, the
// reduction is based on cwnd, not on inFlight (RFC 9438 allows either).
func (c *Cubic) OnCongestionEvent(now time.Time, inFlight int) {
	c.w.enterRecovery(c.reduce())
}

// OnRecoveryEnd implements Controller.
func (c *Cubic) OnRecoveryEnd(now time.Time) { c.w.recoveryEnd() }

// OnRTO implements Controller: as a congestion event, then cwnd = 1. A
// repeated timeout without delivery in between keeps ssthresh and W_max.
func (c *Cubic) OnRTO(now time.Time, inFlight int) {
	if c.w.rtoPending {
		c.w.enterLoss(0)
		return
	}
	c.w.enterLoss(c.reduce())
}

// Undo implements Controller: cwnd, ssthresh, W_max and cwnd_prior return to
// their values before the last reduction (RFC 9438 4.9); a new epoch starts.
func (c *Cubic) Undo() {
	if c.w.undo() {
		c.wMax, c.cwndPrior = c.saved.wMax, c.saved.cwndPrior
		c.epoch = time.Time{}
	}
}

// OnIdleRestart implements Controller. The idle time does not count in the
// cubic epoch (RFC 9438 5.8; Linux shifts epoch_start on CA_EVENT_TX_START),
// whatever rto is. If the window is then reduced (idle > rto > 0), a new
// epoch starts.
func (c *Cubic) OnIdleRestart(now time.Time, idle, rto time.Duration) {
	if !c.epoch.IsZero() && idle > 0 {
		c.epoch = c.epoch.Add(idle)
		if c.epoch.After(now) {
			c.epoch = now
		}
	}
	c.lastAck = now // the per-ACK app-limited shift must not count it again
	if c.w.idleRestart(idle, rto) {
		c.epoch = time.Time{}
	}
}

// OnECE implements Controller. It does nothing while a reduction is already
// under way (fast recovery or CWR), like Linux tcp_enter_cwr.
func (c *Cubic) OnECE(now time.Time) {
	if !c.w.inFastRecovery {
		c.w.enterRecovery(c.reduce())
	}
}

// Cwnd implements Controller.
func (c *Cubic) Cwnd() int { return c.w.cwnd }

// Ssthresh implements Controller.
func (c *Cubic) Ssthresh() int { return c.w.ssthresh }

// PacingRate implements Controller (0 unless SetPacing(true)).
func (c *Cubic) PacingRate() int64 { return c.w.pacingRate() }

// SetPacing implements Pacer.
func (c *Cubic) SetPacing(on bool) { c.w.pacing = on }

// InSlowStart reports whether cwnd < ssthresh (slow start or HyStart++ CSS).
func (c *Cubic) InSlowStart() bool { return c.w.cwnd < c.w.ssthresh }

// HyStartState reports the HyStart++ phase: "ss", "css" or "off" (done or
// disabled).
func (c *Cubic) HyStartState() string {
	switch {
	case !c.hs.active():
		return "off"
	case c.hs.css:
		return "css"
	}
	return "ss"
}
