package cc

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// RateSample is what the engine tells a Controller about one ACK. All counts
// are in packets (segments), like Linux. Fields the engine cannot fill stay
// zero; every controller copes with zero values (see the field comments).
type RateSample struct {
	// Delivered is the number of packets delivered over Interval
	// (RFC draft-cheng-iccrg-delivery-rate-estimation, Linux tcp_rate.c).
	Delivered int64
	// Interval is the delivery-rate sampling interval: max(send elapsed,
	// ack elapsed) for the most recently sent packet this ACK delivered.
	Interval time.Duration
	// PriorDelivered is the connection's total delivered count at the time
	// the most recently sent packet acked by this ACK was sent. Controllers
	// use it to count round trips: a round ends when a packet sent after the
	// round began is delivered (PriorDelivered >= TotalDelivered at round start).
	PriorDelivered int64
	// TotalDelivered is the connection's total delivered count now
	// (after this ACK).
	TotalDelivered int64
	// RTT is the RTT sample from this ACK, 0 if none (Karn).
	RTT time.Duration
	// MinRTT is the connection's minimum RTT (windowed or not), 0 if unknown.
	MinRTT time.Duration
	// SRTT is the engine's smoothed RTT. Optional: when 0, controllers keep
	// their own RFC 6298 EWMA of the RTT samples (used for pacing only).
	SRTT time.Duration
	// AckedSacked is the number of packets newly cumulatively acked or
	// SACKed by this ACK.
	AckedSacked int
	// Losses is the number of packets newly marked lost while processing
	// this ACK.
	Losses int
	// PriorInFlight is the number of packets in flight before this ACK was
	// processed (it includes the packets this ACK delivers). Reno and CUBIC
	// only grow cwnd when the flow is cwnd-limited in the RFC 7661 sense,
	// 2*PriorInFlight >= cwnd. If the engine leaves it 0 while AckedSacked
	// > 0, the flow is assumed cwnd-limited.
	PriorInFlight int
	// InFlight is the number of packets in flight after this ACK (and after
	// loss marking).
	InFlight int
	// IsAppLimited is true when the delivery-rate sample was taken while the
	// application, not cwnd, limited sending.
	IsAppLimited bool
	// InRecovery is true while the engine is in fast recovery (entered via
	// OnCongestionEvent, left via OnRecoveryEnd). Reno and CUBIC do not grow
	// cwnd during fast recovery. It is false in the RTO loss state: after
	// OnRTO the window slow-starts from 1 again.
	InRecovery bool

	// The following fields serve model-based controllers (BBR); loss-based
	// controllers ignore them. Left zero, BBR never sees a loss rate above
	// its 2 % threshold on ACKs (it still reacts to Losses once per round,
	// and to PacketLossObserver.OnPacketLost if the engine calls it).

	// TxInFlight is the number of packets that were in flight when the most
	// recently sent packet acked by this ACK was sent (Linux rs->tx_in_flight).
	TxInFlight int
	// LostSinceTx is the number of packets marked lost between the sending of
	// that packet and now (Linux rs->lost).
	LostSinceTx int64

	// CwndLimited, when CwndLimitedValid is set, is the engine's verdict on
	// whether the flow used its window enough for cwnd to grow (Linux
	// tcp_is_cwnd_limited: cwnd-limited sending in the current window, or
	// in slow start cwnd < 2 * the most packets out in the window). Reno
	// and CUBIC use it instead of the 2*PriorInFlight >= cwnd test.
	CwndLimited      bool
	CwndLimitedValid bool
}

// Controller is a congestion-control algorithm for one connection. It is a
// plain value: no goroutines, locks or clocks; time comes in as arguments.
// cwnd and ssthresh are in packets.
//
// Call order expected from the engine:
//
//	Init once when the connection becomes established (MSS known).
//	OnAck on every ACK that delivers data (cumulative or SACK), after loss marking.
//	OnCongestionEvent on entering fast recovery (3 dupacks, SACK/RACK loss).
//	OnRecoveryEnd when fast recovery ends (ACK covers the recovery point), and
//	  also when RTO recovery ends (BBR restores its cwnd; Reno/CUBIC ignore it).
//	OnRTO when the retransmission timer fires (every expiry; a repeat without
//	  delivery in between keeps ssthresh).
//	Undo when the last reduction proves spurious (DSACK, F-RTO, Eifel).
//	OnIdleRestart before sending when nothing is in flight and the
//	  application was the limit (restart after idle), with the idle time and
//	  the current RTO; pass rto = 0 when net.ipv4.tcp_slow_start_after_idle
//	  is off (Reno/CUBIC then do nothing, BBR still needs the event).
//	OnECE on an ACK with ECE, at most once per window of data (like CWR).
//
// NOTE (contract change): OnRTO takes the packets in flight and
// OnIdleRestart takes the idle time and current RTO, which the team contract
// did not have; the controller cannot know them otherwise.
type Controller interface {
	// Name returns the registry name ("cubic", "reno", ...).
	Name() string
	// Init resets the controller: cwnd = initial window (10, RFC 6928),
	// ssthresh = infinity.
	Init(mss int, now time.Time)
	// OnAck processes one ACK that delivered data.
	OnAck(now time.Time, rs *RateSample)
	// OnCongestionEvent enters fast recovery: ssthresh is cut and cwnd set to
	// the new ssthresh (engines may run PRR, see PRR). inFlight is the number
	// of packets in flight (RFC 5681 FlightSize) when loss was detected.
	OnCongestionEvent(now time.Time, inFlight int)
	// OnRecoveryEnd leaves fast recovery (Reno/CUBIC: cwnd = ssthresh) or
	// RTO recovery.
	OnRecoveryEnd(now time.Time)
	// OnRTO handles a retransmission timeout: ssthresh is cut and cwnd = 1
	// (the RFC 5681 loss window). inFlight as for OnCongestionEvent.
	OnRTO(now time.Time, inFlight int)
	// Undo restores cwnd and ssthresh saved at the last OnCongestionEvent,
	// OnRTO or OnECE (cwnd = max(cwnd, prior), ssthresh = max(ssthresh,
	// prior)). No-op if nothing was saved.
	Undo()
	// OnIdleRestart is called before sending after the connection was idle
	// (nothing in flight, nothing sent) for idle; rto is the current RTO, or
	// 0 if slow start after idle is disabled. Reno/CUBIC: if idle > rto > 0,
	// cwnd is halved once per RTO of idle time but not below the restart
	// window min(IW, cwnd) (RFC 5681 4.1, RFC 7661, Linux tcp_cwnd_restart);
	// otherwise nothing; CUBIC also takes the idle time out of its cubic
	// epoch, whatever rto is. BBR: see BBR.OnIdleRestart.
	OnIdleRestart(now time.Time, idle, rto time.Duration)
	// OnECE reacts to an ECN echo like a congestion event (RFC 3168), using
	// the last known flight size, once per reduction (BBR: a congestion
	// signal for the round).
	OnECE(now time.Time)
	// Cwnd returns the congestion window in packets.
	Cwnd() int
	// Ssthresh returns the slow-start threshold in packets (InfiniteSsthresh
	// before the first reduction).
	Ssthresh() int
	// PacingRate returns the pacing rate in bytes per second, 0 = do not
	// pace. BBR always paces. Reno and CUBIC return 0 unless pacing was
	// enabled with SetPacing(true) (see Pacer); the Linux-style rate they
	// would use is always available from LinuxPacingRate (for tcp_info).
	PacingRate() int64
}

// PacketLossObserver is implemented by controllers that want the per-packet
// loss step (BBR's HandleLostPacket): the engine calls OnPacketLost for each
// packet it marks lost, before the OnAck of the ACK that revealed the loss.
type PacketLossObserver interface {
	OnPacketLost(now time.Time, p LostPacket)
}

// Pacer is implemented by controllers whose pacing the engine can switch on
// or off (Linux paces Reno/CUBIC only with the fq qdisc or SO_MAX_PACING_RATE;
// ustack paces them only when asked).
type Pacer interface {
	SetPacing(enabled bool)
}

const (
	// InitialWindow is the initial congestion window in packets (RFC 6928,
	// Linux TCP_INIT_CWND).
	InitialWindow = 10
	// InfiniteSsthresh is the initial ssthresh (Linux TCP_INFINITE_SSTHRESH).
	InfiniteSsthresh = 0x7fffffff
	// MinCwnd is the smallest window after a reduction other than RTO.
	MinCwnd = 2
	// LossWindow is cwnd after an RTO (RFC 5681).
	LossWindow = 1
)

// Linux pacing ratios (net.ipv4.tcp_pacing_ss_ratio / tcp_pacing_ca_ratio),
// in percent.
const (
	PacingSSRatio = 200
	PacingCARatio = 120
)

// LinuxPacingRate returns the pacing rate in bytes per second that Linux
// computes for non-BBR controllers (tcp_update_pacing_rate):
//
//	rate = mss * max(cwnd, inFlight) / srtt * ratio
//
// with ratio = PacingSSRatio (200 %) while cwnd < ssthresh/2 (the window can
// still double) and PacingCARatio (120 %) otherwise. It returns 0 (no pacing)
// when srtt or mss is unknown.
func LinuxPacingRate(cwnd, inFlight, ssthresh, mss int, srtt time.Duration) int64 {
	if srtt <= 0 || mss <= 0 {
		return 0
	}
	ratio := int64(PacingCARatio)
	if cwnd < ssthresh/2 {
		ratio = PacingSSRatio
	}
	w := int64(max(cwnd, inFlight))
	// bytes/s = mss*w*ratio/100 / (srtt/1e9 s)
	num := int64(mss) * w * ratio * int64(time.Second/100)
	return num / int64(srtt)
}

// ErrUnknown is returned (wrapped) by New for names it does not know.
var ErrUnknown = errors.New("unknown congestion control")

// DefaultName is the controller New("") returns (Linux default).
const DefaultName = "cubic"

var registry = map[string]func() Controller{
	"reno":  func() Controller { return NewReno() },
	"cubic": func() Controller { return NewCubic() },
	"bbr":   func() Controller { return NewBBR() },
}

// New returns a fresh controller by name; "" means DefaultName. The
// controller still needs Init. Unknown names give an error wrapping
// ErrUnknown that lists the available names.
//
// Controllers may implement optional interfaces: Pacer (Reno, CUBIC) and
// PacketLossObserver (BBR).
func New(name string) (Controller, error) {
	if name == "" {
		name = DefaultName
	}
	mk, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("cc: %w %q (available: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return mk(), nil
}

// Names returns the registered controller names, sorted.
func Names() []string {
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// cwndLimited reports whether the flow used enough of cwnd for growth to be
// justified (RFC 7661: the window is validated if pipeACK >= cwnd/2).
func cwndLimited(cwnd int, rs *RateSample) bool {
	if rs.CwndLimitedValid {
		return rs.CwndLimited
	}
	if rs.PriorInFlight == 0 {
		return true // not filled in by the engine
	}
	return 2*rs.PriorInFlight >= cwnd
}

// rttEWMA keeps an RFC 6298 smoothed RTT for pacing when the engine does
// not pass RateSample.SRTT.
type rttEWMA struct{ srtt time.Duration }

func (r *rttEWMA) update(rs *RateSample) {
	switch {
	case rs.SRTT > 0:
		r.srtt = rs.SRTT
	case rs.RTT <= 0:
	case r.srtt == 0:
		r.srtt = rs.RTT
	default:
		r.srtt += (rs.RTT - r.srtt) / 8
	}
}
