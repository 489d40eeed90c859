package cc

import "time"

// Reno is NewReno congestion control (RFC 5681, RFC 6582 for the recovery
// part the engine runs) with a 10-packet initial window (RFC 6928).
type Reno struct {
	w window
}

// NewReno returns a Reno controller; call Init before use.
func NewReno() *Reno {
	r := &Reno{}
	r.w.init(1460)
	return r
}

// Name implements Controller.
func (r *Reno) Name() string { return "reno" }

// Init implements Controller.
func (r *Reno) Init(mss int, now time.Time) { r.w.init(mss) }

// OnAck implements Controller: slow start adds AckedSacked packets per ACK up
// to ssthresh, congestion avoidance adds one packet per cwnd packets acked.
// No growth in fast recovery or when not cwnd-limited.
func (r *Reno) OnAck(now time.Time, rs *RateSample) {
	w := &r.w
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

// OnCongestionEvent implements Controller: ssthresh = max(FlightSize/2, 2),
// cwnd = ssthresh (RFC 5681 eq. 4 and step 3 of fast retransmit, without
// the +3 inflation: the engine counts SACKed packets out of flight).
// inFlight must be FlightSize (packets sent and not cumulatively acked,
// SACKed ones included), not the RFC 6675 pipe: the pipe leaves out the
// packets whose SACKs revealed the loss and cut ssthresh too far.
func (r *Reno) OnCongestionEvent(now time.Time, inFlight int) {
	r.w.enterRecovery(r.w.flight(inFlight) / 2)
}

// OnRecoveryEnd implements Controller.
func (r *Reno) OnRecoveryEnd(now time.Time) { r.w.recoveryEnd() }

// OnRTO implements Controller: ssthresh = max(FlightSize/2, 2), cwnd = 1.
func (r *Reno) OnRTO(now time.Time, inFlight int) { r.w.enterLoss(r.w.flight(inFlight) / 2) }

// Undo implements Controller.
func (r *Reno) Undo() { r.w.undo() }

// OnIdleRestart implements Controller.
func (r *Reno) OnIdleRestart(now time.Time, idle, rto time.Duration) { r.w.idleRestart(idle, rto) }

// OnECE implements Controller. It does nothing while a reduction is already
// under way (fast recovery or CWR), like Linux tcp_enter_cwr.
func (r *Reno) OnECE(now time.Time) {
	if !r.w.inFastRecovery {
		r.w.enterRecovery(r.w.flight(r.w.lastInFlight) / 2)
	}
}

// Cwnd implements Controller.
func (r *Reno) Cwnd() int { return r.w.cwnd }

// Ssthresh implements Controller.
func (r *Reno) Ssthresh() int { return r.w.ssthresh }

// PacingRate implements Controller (0 unless SetPacing(true)).
func (r *Reno) PacingRate() int64 { return r.w.pacingRate() }

// SetPacing implements Pacer.
func (r *Reno) SetPacing(on bool) { r.w.pacing = on }
