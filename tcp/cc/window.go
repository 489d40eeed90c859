package cc

import "time"

// window is the state shared by the loss-based controllers (Reno, CUBIC):
// cwnd/ssthresh bookkeeping, the saved values for Undo, pacing.
type window struct {
	mss      int
	cwnd     int
	ssthresh int
	// cwndCnt counts packets acked towards the next +1 in congestion
	// avoidance (Linux snd_cwnd_cnt).
	cwndCnt int

	priorCwnd     int
	priorSsthresh int
	undoValid     bool

	inFastRecovery bool // between OnCongestionEvent/OnECE and OnRecoveryEnd
	rtoPending     bool // OnRTO seen, no delivery since: a repeated RTO keeps ssthresh
	pacing         bool
	lastInFlight   int // InFlight of the last rate sample (for OnECE)

	rtt rttEWMA
}

func (w *window) init(mss int) {
	*w = window{mss: mss, cwnd: InitialWindow, ssthresh: InfiniteSsthresh, pacing: w.pacing}
}

// slowStart grows cwnd by acked packets but not beyond ssthresh and returns
// the packets left over for congestion avoidance (RFC 5681 with RFC 3465
// L = unlimited, as Linux).
func (w *window) slowStart(acked int) int {
	room := w.ssthresh - w.cwnd
	if acked <= room {
		w.cwnd += acked
		return 0
	}
	if room > 0 {
		w.cwnd += room
		acked -= room
	}
	return acked
}

// additiveIncrease adds one packet to cwnd for every per packets acked,
// carrying the remainder in cwndCnt (RFC 5681 congestion avoidance with
// appropriate byte counting, in packets).
func (w *window) additiveIncrease(per, acked int) {
	if per < 1 {
		per = 1
	}
	if w.cwndCnt >= per { // per shrank since the last ACK
		w.cwndCnt = 0
		w.cwnd++
	}
	w.cwndCnt += acked
	if w.cwndCnt >= per {
		n := w.cwndCnt / per
		w.cwndCnt -= n * per
		w.cwnd += n
	}
}

func (w *window) save() {
	w.priorCwnd = w.cwnd
	w.priorSsthresh = w.ssthresh
	w.undoValid = true
}

func (w *window) noteAck(rs *RateSample) {
	w.rtt.update(rs)
	w.lastInFlight = rs.InFlight
	if rs.AckedSacked > 0 {
		w.rtoPending = false
	}
}

// enterRecovery is the common part of a fast-recovery / ECE reduction.
func (w *window) enterRecovery(ssthresh int) {
	w.save()
	w.ssthresh = max(ssthresh, MinCwnd)
	w.cwnd = w.ssthresh
	w.cwndCnt = 0
	w.inFastRecovery = true
}

// enterLoss is the common part of an RTO. It returns false on a repeated
// timeout (no delivery since the last one), when ssthresh is held (RFC 5681
// section 3.1) and only cwnd is reset.
func (w *window) enterLoss(ssthresh int) bool {
	first := !w.rtoPending
	if first {
		w.save()
		w.ssthresh = max(ssthresh, MinCwnd)
	}
	w.cwnd = LossWindow
	w.cwndCnt = 0
	w.inFastRecovery = false
	w.rtoPending = true
	return first
}

func (w *window) recoveryEnd() {
	if w.inFastRecovery {
		w.inFastRecovery = false
		if w.ssthresh < InfiniteSsthresh {
			w.cwnd = w.ssthresh
		}
	}
}

func (w *window) undo() bool {
	if !w.undoValid {
		return false
	}
	w.cwnd = max(w.cwnd, w.priorCwnd)
	w.ssthresh = max(w.ssthresh, w.priorSsthresh)
	w.undoValid = false
	w.inFastRecovery = false
	w.rtoPending = false
	return true
}

// idleRestart implements RFC 5681 4.1 / RFC 7661 as Linux tcp_cwnd_restart.
// It reports whether it changed anything.
func (w *window) idleRestart(idle, rto time.Duration) bool {
	if rto <= 0 || idle <= rto {
		return false
	}
	// Remember the old window in ssthresh (RFC 2861, Linux tcp_current_ssthresh).
	w.ssthresh = max(w.ssthresh, w.cwnd*3/4)
	restart := min(InitialWindow, w.cwnd)
	c := w.cwnd
	for idle -= rto; idle > 0 && c > restart; idle -= rto {
		c /= 2
	}
	w.cwnd = max(c, restart)
	w.cwndCnt = 0
	return true
}

func (w *window) flight(inFlight int) int {
	if inFlight <= 0 {
		return w.cwnd
	}
	return inFlight
}

func (w *window) pacingRate() int64 {
	if !w.pacing {
		return 0
	}
	return LinuxPacingRate(w.cwnd, w.lastInFlight, w.ssthresh, w.mss, w.rtt.srtt)
}
