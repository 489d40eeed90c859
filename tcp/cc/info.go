package cc

import "time"

// Info is a controller's view of its own model, for `ss`-style connection
// info (Linux tcp_cc_info / INET_DIAG_BBRINFO) and simulator traces.
// Fields a controller has no notion of stay zero.
type Info struct {
	// Name is the controller's registry name ("bbr", "cubic", "reno").
	Name string
	// State is the controller's state machine state, upper case as Linux
	// and ss spell them: for BBR "STARTUP", "DRAIN", "PROBE_BW_DOWN",
	// "PROBE_BW_CRUISE", "PROBE_BW_REFILL", "PROBE_BW_UP", "PROBE_RTT".
	// Empty for controllers without one.
	State string
	// BwEstimate is the controller's bottleneck bandwidth estimate in
	// bytes/s (BBR: BBR.max_bw), 0 if it has none yet.
	BwEstimate int64
	// BwLo is BBR's short-term, loss-driven bandwidth bound
	// (BBR.bw_shortterm, Linux bw_lo) in bytes/s, 0 while unset
	// (infinite). The model paces at min(BwEstimate, BwLo) times the gain.
	BwLo int64
	// MinRTT is the controller's own windowed min RTT (BBR.min_rtt), 0 if
	// none.
	MinRTT time.Duration
	// PacingGain and CwndGain are the current gains (BBR), 0 if none.
	PacingGain, CwndGain float64
	// InflightHi and InflightLo are BBR's long-term and short-term
	// inflight bounds (inflight_longterm, inflight_shortterm) in packets,
	// 0 while unset (infinite).
	InflightHi, InflightLo int
}

// Inspector is implemented by controllers that can describe their model
// (BBR). The engine reads it for tcp.Info; it is cheap and does not
// change the controller.
type Inspector interface {
	Inspect() Info
}

// Inspect returns c's Info: c.Inspect() when c is an Inspector, else just
// its name.
func Inspect(c Controller) Info {
	if c == nil {
		return Info{}
	}
	if in, ok := c.(Inspector); ok {
		return in.Inspect()
	}
	return Info{Name: c.Name()}
}
