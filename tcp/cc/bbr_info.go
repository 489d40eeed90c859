package cc

import "math"

// bbrStateSS are the state names `ss` uses for BBR (upper case, the
// ProbeBW phases joined by underscores, like Linux's bbr_mode
// names extended with the BBRv3 ProbeBW phases).
var bbrStateSS = [...]string{"STARTUP", "DRAIN", "PROBE_BW_DOWN", "PROBE_BW_CRUISE", "PROBE_BW_REFILL", "PROBE_BW_UP", "PROBE_RTT"}

// Inspect implements Inspector: the state, BBR.max_bw and BBR.bw_shortterm
// in bytes/s, BBR.min_rtt, the current gains and the inflight bounds.
func (b *BBR) Inspect() Info {
	in := Info{
		Name:       b.Name(),
		MinRTT:     b.MinRTT(),
		PacingGain: b.PacingGain(),
		CwndGain:   b.cwndGain,
		InflightHi: boundPkts(b.InflightLongterm()),
		InflightLo: boundPkts(b.InflightShortterm()),
	}
	if s := b.State(); int(s) < len(bbrStateSS) {
		in.State = bbrStateSS[s]
	} else {
		in.State = s.String()
	}
	if bw := b.MaxBw(); bw > 0 && !math.IsInf(bw, 0) && !math.IsNaN(bw) {
		in.BwEstimate = int64(bw * float64(b.mss))
	}
	if lo := b.BwShortterm(); lo > 0 && !math.IsInf(lo, 0) && !math.IsNaN(lo) {
		in.BwLo = int64(lo * float64(b.mss))
	}
	return in
}

// boundPkts turns an inflight bound in packets into an int, 0 for unset
// (+Inf) or nonsense values.
func boundPkts(v float64) int {
	if math.IsInf(v, 0) || math.IsNaN(v) || v <= 0 {
		return 0
	}
	if v > maxCwndPackets {
		return maxCwndPackets
	}
	return int(math.Round(v))
}
