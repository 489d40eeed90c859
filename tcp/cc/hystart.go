package cc

import "time"

// HyStart++ constants (RFC 9406 section 4.3).
const (
	HyStartMinRTTThresh     = 4 * time.Millisecond
	HyStartMaxRTTThresh     = 16 * time.Millisecond
	HyStartMinRTTDivisor    = 8
	HyStartNRTTSample       = 8
	HyStartCSSGrowthDivisor = 4
	HyStartCSSRounds        = 5
	// HyStartL limits slow-start growth per ACK for non-paced senders.
	HyStartL = 8
)

// hystart is HyStart++ (RFC 9406) state. Rounds are counted with delivery
// counts: a round ends when a packet sent after the round began is
// delivered (RateSample.PriorDelivered >= delivered count at round start).
type hystart struct {
	done      bool // HyStart++ no longer applies (after the initial slow start)
	started   bool // roundEnd is valid
	css       bool
	roundEnd  int64
	cssRounds int32
	samples   int32 // RTT samples in the current round
	cssAcked  int   // packets acked in CSS not yet turned into cwnd

	lastRoundMinRTT    time.Duration // 0 = infinity
	currentRoundMinRTT time.Duration // 0 = infinity
	cssBaselineMinRTT  time.Duration
}

func (h *hystart) reset(done bool) {
	*h = hystart{done: done}
}

func (h *hystart) active() bool { return !h.done }

// onAck runs one ACK through HyStart++ slow start / CSS. It grows w.cwnd and
// returns the packets left for congestion avoidance (non-zero only once
// HyStart++ ends and cwnd reached the new ssthresh).
func (h *hystart) onAck(w *window, rs *RateSample) int {
	// Round accounting.
	if !h.started || rs.PriorDelivered >= h.roundEnd {
		roundDone := h.started
		h.started = true
		h.roundEnd = rs.TotalDelivered
		h.lastRoundMinRTT = h.currentRoundMinRTT
		h.currentRoundMinRTT = 0
		h.samples = 0
		if roundDone && h.css {
			h.cssRounds++
			if h.cssRounds >= HyStartCSSRounds {
				// Enter congestion avoidance.
				w.ssthresh = w.cwnd
				h.done = true
				return rs.AckedSacked
			}
		}
	}
	if rs.RTT > 0 {
		if h.currentRoundMinRTT == 0 || rs.RTT < h.currentRoundMinRTT {
			h.currentRoundMinRTT = rs.RTT
		}
		h.samples++
	}
	n := min(rs.AckedSacked, HyStartL)
	if w.pacing {
		n = rs.AckedSacked
	}
	if !h.css {
		left := w.slowStart(n)
		if h.samples >= HyStartNRTTSample && h.currentRoundMinRTT > 0 && h.lastRoundMinRTT > 0 {
			thresh := min(max(h.lastRoundMinRTT/HyStartMinRTTDivisor, HyStartMinRTTThresh), HyStartMaxRTTThresh)
			if h.currentRoundMinRTT >= h.lastRoundMinRTT+thresh {
				h.cssBaselineMinRTT = h.currentRoundMinRTT
				h.css = true
				h.cssRounds = 0
				h.cssAcked = 0
			}
		}
		return left
	}
	// Conservative slow start: grow at 1/CSS_GROWTH_DIVISOR of slow start.
	h.cssAcked += n
	inc := h.cssAcked / HyStartCSSGrowthDivisor
	h.cssAcked -= inc * HyStartCSSGrowthDivisor
	if inc > 0 {
		w.slowStart(inc)
	}
	if h.samples >= HyStartNRTTSample && h.currentRoundMinRTT > 0 && h.currentRoundMinRTT < h.cssBaselineMinRTT {
		// The RTT increase was spurious: back to slow start.
		h.css = false
		h.cssBaselineMinRTT = 0
	}
	return 0
}
