package tcp

import (
	"math/bits"
	"time"
)

// RTTEstimator computes the retransmission timeout from RTT samples as in
// RFC 6298:
//
//	first sample R:   SRTT = R, RTTVAR = R/2
//	later samples R:  RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, then SRTT = 7/8 SRTT + 1/8 R
//	RTO = SRTT + max(G, 4*RTTVAR), clamped to [MinRTO, MaxRTO]
//
// Linux adds tcp_rto_min to the smoothed RTT instead of only clamping the
// sum (its variance term is at least tcp_rto_min), so an RTO on a 10 ms path
// is 210 ms, not 200 ms. NewRTTEstimator gets that behaviour by setting the
// granularity term G to MinRTO; set Granularity to the clock granularity
// (e.g. 1 ms) for the plain RFC 6298 formula. Linux's slower decay of the
// variance when the RTT falls (mdev_max tracking per window) is not modelled.
//
// Karn's algorithm is the caller's job: only feed samples from segments that
// were not retransmitted, or from the timestamp option.
//
// Backoff doubles the effective RTO after each retransmission timeout (capped
// at MaxRTO); ResetBackoff restores it when new data is acknowledged.
//
// The zero value is not useful; use NewRTTEstimator.
type RTTEstimator struct {
	MinRTO      time.Duration // Config.RTOMin (tcp_rto_min_us)
	MaxRTO      time.Duration // Config.RTOMax (tcp_rto_max_ms)
	Granularity time.Duration // G of RFC 6298; NewRTTEstimator sets MinRTO

	srtt, rttvar time.Duration
	rto          time.Duration // base RTO, before backoff
	backoff      int
	hasSample    bool

	// SampleLinux state, in microseconds, scaled as Linux keeps it.
	lxSRTT8   int64  // 8 * SRTT
	lxMdev    int64  // 4 * mean deviation
	lxMdevMax int64  // largest lxMdev in the current window, at least MinRTO
	lxRTTVar  int64  // variance term added to SRTT, at least MinRTO
	lxRTTSeq  uint32 // window ends when SND.UNA passes this
}

// NewRTTEstimator returns an estimator with no sample yet, whose RTO is
// cfg.RTOInitial (1 s, RFC 6298 2.1).
func NewRTTEstimator(cfg *Config) RTTEstimator {
	return RTTEstimator{
		MinRTO:      cfg.RTOMin,
		MaxRTO:      cfg.RTOMax,
		Granularity: cfg.RTOMin,
		rto:         cfg.RTOInitial,
	}
}

// Sample feeds one RTT measurement. Samples below 1 µs count as 1 µs (Linux
// measures in microseconds and takes at least 1).
func (e *RTTEstimator) Sample(r time.Duration) {
	if r < time.Microsecond {
		r = time.Microsecond
	}
	if !e.hasSample {
		e.srtt = r
		e.rttvar = r / 2
		e.hasSample = true
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar += (d - e.rttvar) / 4
		e.srtt += (r - e.srtt) / 8
	}
	v := 4 * e.rttvar
	if v < e.Granularity {
		v = e.Granularity
	}
	e.rto = e.clamp(e.srtt + v)
}

// SampleLinux feeds one RTT measurement using Linux's estimator
// (tcp_rtt_estimator) instead of the RFC 6298 one, for RTOs that match
// Linux to the millisecond. sndUna is SND.UNA after this ACK was processed
// and sndNxt SND.NXT. Differences from Sample: a falling RTT shrinks the
// deviation 8 times slower; the variance term is the largest deviation seen
// in the last window of data (one RTT, ending when SND.UNA passes the
// SND.NXT recorded at its start), decaying by 1/4 per window toward it, and
// never below MinRTO; RTO = SRTT + that term, capped at MaxRTO and rounded
// up to whole milliseconds (jiffies with HZ=1000). Use either Sample or
// SampleLinux on one estimator, not both.
func (e *RTTEstimator) SampleLinux(r time.Duration, sndUna, sndNxt uint32) {
	m := r.Microseconds()
	if m < 0 {
		m = 0
	}
	rtoMin := e.MinRTO.Microseconds()
	srtt8 := e.lxSRTT8
	if e.hasSample && srtt8 != 0 {
		m -= srtt8 >> 3 // error of the estimate
		srtt8 += m      // SRTT += error/8
		if m < 0 {
			m = -m
			m -= e.lxMdev >> 2
			if m > 0 {
				m >>= 3 // RTT fell: grow the deviation only slowly
			}
		} else {
			m -= e.lxMdev >> 2
		}
		e.lxMdev += m // mdev += (|err| - mdev)/4
		if e.lxMdev > e.lxMdevMax {
			e.lxMdevMax = e.lxMdev
			if e.lxMdevMax > e.lxRTTVar {
				e.lxRTTVar = e.lxMdevMax
			}
		}
		if int32(sndUna-e.lxRTTSeq) > 0 {
			if e.lxMdevMax < e.lxRTTVar {
				e.lxRTTVar -= (e.lxRTTVar - e.lxMdevMax) >> 2
			}
			e.lxRTTSeq = sndNxt
			e.lxMdevMax = rtoMin
		}
	} else {
		srtt8 = m << 3
		e.lxMdev = m << 1 // 4 * RTTVAR with RTTVAR = R/2
		e.lxRTTVar = max(e.lxMdev, rtoMin)
		e.lxMdevMax = e.lxRTTVar
		e.lxRTTSeq = sndNxt
		e.hasSample = true
	}
	e.lxSRTT8 = max(1, srtt8)
	e.srtt = time.Duration(e.lxSRTT8>>3) * time.Microsecond
	e.rttvar = time.Duration(e.lxMdev>>2) * time.Microsecond
	rtoUs := e.lxSRTT8>>3 + e.lxRTTVar
	rto := time.Duration((rtoUs+999)/1000) * time.Millisecond
	if rto > e.MaxRTO {
		rto = e.MaxRTO
	}
	e.rto = rto
}

func (e *RTTEstimator) clamp(d time.Duration) time.Duration {
	if d < e.MinRTO {
		d = e.MinRTO
	}
	if d > e.MaxRTO {
		d = e.MaxRTO
	}
	return d
}

// HasSample reports whether at least one RTT sample was taken.
func (e *RTTEstimator) HasSample() bool { return e.hasSample }

// SRTT returns the smoothed RTT (0 before the first sample).
func (e *RTTEstimator) SRTT() time.Duration { return e.srtt }

// RTTVar returns the RTT variation (0 before the first sample).
func (e *RTTEstimator) RTTVar() time.Duration { return e.rttvar }

// BaseRTO returns the RTO without backoff.
func (e *RTTEstimator) BaseRTO() time.Duration { return e.rto }

// RTO returns the RTO to arm the retransmission timer with: the base RTO
// doubled once per Backoff, capped at MaxRTO (Linux inet_csk_rto_backoff).
func (e *RTTEstimator) RTO() time.Duration { return BackoffRTO(e.rto, e.backoff, e.MaxRTO) }

// Backoff records a retransmission timeout: the next RTO is doubled.
func (e *RTTEstimator) Backoff() { e.backoff++ }

// Backoffs returns the number of backoffs since the last ResetBackoff
// (Linux icsk_backoff).
func (e *RTTEstimator) Backoffs() int { return e.backoff }

// ResetBackoff drops the backoff, typically when an ACK acknowledges new
// data (RFC 6298 5.7 keeps the backed-off value until then).
func (e *RTTEstimator) ResetBackoff() { e.backoff = 0 }

// SetBaseRTO overrides the base RTO, e.g. with Config.RTOFallback (3 s) for
// data after a handshake whose SYN or SYN-ACK was retransmitted when no RTT
// sample exists (RFC 6298 5.7, Linux TCP_TIMEOUT_FALLBACK). It is not
// clamped to MinRTO; it is capped at MaxRTO.
func (e *RTTEstimator) SetBaseRTO(d time.Duration) {
	if d > e.MaxRTO {
		d = e.MaxRTO
	}
	e.rto = d
}

// BackoffRTO returns base doubled n times, capped at maxRTO (never overflows).
func BackoffRTO(base time.Duration, n int, maxRTO time.Duration) time.Duration {
	if base <= 0 {
		return base
	}
	if n < 0 {
		n = 0
	}
	if n >= 63 || base > maxRTO>>uint(n) {
		return maxRTO
	}
	d := base << uint(n)
	if d > maxRTO {
		return maxRTO
	}
	return d
}

// linuxRTOMax is TCP_RTO_MAX, which Linux's retries-to-time model uses.
const linuxRTOMax = 120 * time.Second

// RetriesToTime converts a retransmission count limit into the time Linux
// allows for it (tcp_model_timeout): the total of boundary+1 timeouts
// starting at rtoBase and doubling up to TCP_RTO_MAX (120 s), i.e.
//
//	thresh = ilog2(120 s / rtoBase)
//	boundary <= thresh: ((2 << boundary) - 1) * rtoBase
//	otherwise:          ((2 << thresh) - 1) * rtoBase + (boundary - thresh) * 120 s
//
// tcp_retries2=15 with rtoBase 200 ms (TCP_RTO_MIN) gives 924.6 s;
// tcp_syn_retries=6 with rtoBase 1 s gives 127 s.
func RetriesToTime(boundary int, rtoBase time.Duration) time.Duration {
	return RetriesToTimeMax(boundary, rtoBase, linuxRTOMax)
}

// RetriesToTimeMax is RetriesToTime with rtoMax in place of 120 s.
func RetriesToTimeMax(boundary int, rtoBase, rtoMax time.Duration) time.Duration {
	if boundary < 0 || rtoBase <= 0 {
		return 0
	}
	thresh := 0
	if q := uint64(rtoMax / rtoBase); q > 0 {
		thresh = bits.Len64(q) - 1
	}
	if boundary <= thresh {
		return time.Duration((int64(2)<<uint(boundary))-1) * rtoBase
	}
	return time.Duration((int64(2)<<uint(thresh))-1)*rtoBase + time.Duration(boundary-thresh)*rtoMax
}

// RetransmitsTimedOut reports whether a connection that has retransmitted
// (retransmits > 0) since retransStart has used up its budget at now, as
// Linux's retransmits_timed_out: the budget is userTimeout when non-zero
// (TCP_USER_TIMEOUT), otherwise RetriesToTime(boundary, rtoBase) where
// rtoBase is Config.RTOMin for established connections (boundary
// tcp_retries1 or tcp_retries2) and Config.RTOInitial in SYN states.
//
// retransStart is Linux's retrans_stamp: when the first retransmission of
// the current episode happens, the time the retransmitted segment was
// originally sent; cleared when the retransmitted data is acknowledged.
//
// Linux 6.x applies SYN and SYN-ACK limits as plain counts (retransmits >=
// tcp_syn_retries [+ tcp_syn_linear_timeouts]); with the default doubling
// schedule both views give 127 s for tcp_syn_retries=6.
func RetransmitsTimedOut(retransmits int, retransStart, now time.Time, boundary int, rtoBase, userTimeout time.Duration) bool {
	if retransmits <= 0 {
		return false
	}
	timeout := userTimeout
	if timeout == 0 {
		timeout = RetriesToTime(boundary, rtoBase)
	}
	return now.Sub(retransStart) >= timeout
}

// SynTimeout returns the retransmission timeout that follows the n-th
// transmission of an active-open SYN (n = 0 for the first SYN), as Linux
// schedules it: the first SynLinearTimeouts+1 timeouts are RTOInitial,
// then they double, capped at RTOMax. With the ustack default
// (SynLinearTimeouts 0) this is 1, 2, 4, 8, ... s; with Linux 6.5+'s 4 it
// is 1, 1, 1, 1, 1, 2, 4, ... s.
func SynTimeout(cfg *Config, n int) time.Duration {
	return BackoffRTO(cfg.RTOInitial, n-cfg.SynLinearTimeouts, cfg.RTOMax)
}

// SynMaxRetransmits returns how many times an unanswered SYN is
// retransmitted before connect fails with ETIMEDOUT: tcp_syn_retries plus
// tcp_syn_linear_timeouts (Linux 6.5+). The connection fails when the
// timeout after the last retransmission expires: 127 s with the defaults.
func SynMaxRetransmits(cfg *Config) int {
	return cfg.SynRetries + cfg.SynLinearTimeouts
}
