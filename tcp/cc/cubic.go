package cc

import "time"

// Cubic is CUBIC congestion control (RFC 9438) with HyStart++ (RFC 9406).
type Cubic struct {
	w window
}

// NewCubic returns a CUBIC controller with Linux defaults; call Init before use.
func NewCubic() *Cubic {
	c := &Cubic{}
	c.Init(1460, time.Time{})
	return c
}

// Name implements Controller.
func (c *Cubic) Name() string { return "cubic" }

// Init implements Controller.
func (c *Cubic) Init(mss int, now time.Time) { c.w.init(mss) }

// OnAck implements Controller.
func (c *Cubic) OnAck(now time.Time, rs *RateSample) {
	w := &c.w
	w.noteAck(rs)
	if rs.InRecovery || rs.AckedSacked <= 0 || !cwndLimited(w.cwnd, rs) {
		return
	}
	acked := rs.AckedSacked
	if w.cwnd < w.ssthresh {
		if acked = w.slowStart(acked); acked == 0 {
			return
		}
	}
	w.additiveIncrease(w.cwnd, acked)
}

// OnCongestionEvent implements Controller.
func (c *Cubic) OnCongestionEvent(now time.Time, inFlight int) {
	c.w.enterRecovery(c.w.cwnd * 717 / 1024)
}

// OnRecoveryEnd implements Controller.
func (c *Cubic) OnRecoveryEnd(now time.Time) { c.w.recoveryEnd() }

// OnRTO implements Controller.
func (c *Cubic) OnRTO(now time.Time, inFlight int) { c.w.enterLoss(c.w.cwnd * 717 / 1024) }

// Undo implements Controller.
func (c *Cubic) Undo() { c.w.undo() }

// OnIdleRestart implements Controller.
func (c *Cubic) OnIdleRestart(now time.Time, idle, rto time.Duration) {
	c.w.idleRestart(idle, rto)
}

// OnECE implements Controller.
func (c *Cubic) OnECE(now time.Time) { c.w.enterRecovery(c.w.cwnd * 717 / 1024) }

// Cwnd implements Controller.
func (c *Cubic) Cwnd() int { return c.w.cwnd }

// Ssthresh implements Controller.
func (c *Cubic) Ssthresh() int { return c.w.ssthresh }

// PacingRate implements Controller (0 unless SetPacing(true)).
func (c *Cubic) PacingRate() int64 { return c.w.pacingRate() }

// SetPacing implements Pacer.
func (c *Cubic) SetPacing(on bool) { c.w.pacing = on }
