package tcp

import (
	"time"

	"github.com/ustack/ustack/tcp/cc"
)

// Counters are MIB counters with Linux names (/proc/net/snmp "Tcp:" and
// /proc/net/netstat "TcpExt:"). A stack shares one Counters among its
// connections with SetCounters; the engine only increments them (it is
// single-threaded per connection: the stack serialises calls, or gives each
// connection its own Counters and sums them).
type Counters struct {
	ActiveOpens  uint64 // connections that went SYN-SENT
	PassiveOpens uint64 // connections that went SYN-RECEIVED from LISTEN
	AttemptFails uint64 // SYN-SENT/SYN-RECEIVED -> CLOSED (or SYN-RECEIVED -> LISTEN)
	EstabResets  uint64 // ESTABLISHED/CLOSE-WAIT -> CLOSED by RST
	CurrEstab    int64  // connections in ESTABLISHED or CLOSE-WAIT now
	InSegs       uint64 // segments received (Input calls)
	OutSegs      uint64 // segments sent, excluding retransmissions
	RetransSegs  uint64 // segments retransmitted
	InErrs       uint64 // segments received in error (bad options, ...)
	OutRsts      uint64 // RSTs sent

	DelayedACKs               uint64 // delayed ACKs sent (delayed-ACK timer fired)
	DelayedACKLost            uint64 // duplicate data received (our ACK was lost)
	TCPPureAcks               uint64 // pure ACKs received
	TCPHPAcks                 uint64 // ACKs on the header-prediction path
	TCPHPHits                 uint64 // in-order data on the header-prediction path
	TCPSynRetrans             uint64 // SYN and SYN-ACK retransmissions
	TCPFastRetrans            uint64 // fast retransmissions
	TCPSlowStartRetrans       uint64 // retransmissions after RTO (loss state)
	TCPLostRetransmit         uint64 // retransmissions that were lost again
	TCPTimeouts               uint64 // RTO expirations (incl. SYN)
	TCPLossProbes             uint64 // tail loss probes sent
	TCPLossProbeRecovery      uint64 // losses repaired by a TLP
	TCPSACKRecovery           uint64 // SACK-based fast recovery episodes
	TCPRenoRecovery           uint64 // NewReno fast recovery episodes
	TCPSACKReneging           uint64 // peer reneged on SACKed data
	TCPDSACKRecv              uint64 // D-SACK blocks received
	TCPDSACKOfoRecv           uint64 // D-SACK blocks received for out-of-order data
	TCPDSACKOldSent           uint64 // D-SACKs sent for old duplicates
	TCPDSACKOfoSent           uint64 // D-SACKs sent for out-of-order duplicates
	TCPDSACKUndo              uint64 // cwnd reductions undone after D-SACK
	TCPSpuriousRTOs           uint64 // RTOs found spurious (F-RTO / D-SACK)
	TCPChallengeACK           uint64 // challenge ACKs sent (RFC 5961)
	TCPSYNChallenge           uint64 // challenge ACKs sent for SYNs
	TCPACKSkippedChallenge    uint64 // challenge ACKs suppressed by rate limits
	TCPACKSkippedSeq          uint64 // out-of-window dupacks suppressed by rate limit
	TCPKeepAlive              uint64 // keepalive probes sent
	TCPAbortOnTimeout         uint64 // connections aborted by RTO/probe/keepalive exhaustion
	TCPAbortOnData            uint64 // resets because data arrived after close
	TCPAbortOnClose           uint64 // resets because unread data at close
	TCPAbortOnLinger          uint64 // resets for linger 0 / fin timeout
	TCPOFOQueue               uint64 // segments queued out of order
	TCPOFODrop                uint64 // out-of-order segments dropped (memory cap)
	TCPOFOMerge               uint64 // out-of-order segments merged/overlapping
	TCPRcvQDrop               uint64 // in-order data dropped (receive buffer full)
	TCPZeroWindowDrop         uint64 // data dropped because window was zero
	TCPWinProbe               uint64 // zero-window probes sent
	TCPPAWSEstab              uint64 // segments dropped by PAWS
	TCPTimeWaitOverflow       uint64 // unused by the engine (stack's business)
	TCPRcvCoalesce            uint64 // in-order data appended to the receive buffer
	TCPWantZeroWindowAdv      uint64 // times we wanted to advertise a zero window
	TCPToZeroWindowAdv        uint64 // times we advertised window 0 after non-zero
	TCPFromZeroWindowAdv      uint64 // times we advertised non-zero after 0
	TCPSackShifted            uint64 // unused
	TCPSACKDiscard            uint64 // SACK blocks ignored as invalid
	TCPFullUndo               uint64 // recoveries undone completely
	TCPSynRetransFail         uint64 // unused alias: see AttemptFails
	TCPFastOpenActive         uint64 // our SYN data was acknowledged by the server
	TCPFastOpenPassive        uint64 // SYN data accepted (ServerFastOpen)
	TCPFastOpenActiveFail     uint64 // our SYN data not acked (sent again after the handshake)
	TCPFastOpenPassiveFail    uint64 // SYN cookie invalid (ServerFastOpen)
	TCPFastOpenCookieReqd     uint64 // SYNs asking for a cookie (ServerFastOpen)
	TCPFastOpenListenOverflow uint64 // TFO SYNs over the listener's queue limit (the stack's)
	TCPECNReductions          uint64 // congestion window reductions for ECN echoes
	TCPOrigDataSent           uint64 // segments with new data sent
	TCPDelivered              uint64 // packets delivered (acked or sacked)
	TCPRetransFail            uint64 // unused
	TCPMemoryPressures        uint64 // times tcp_mem pressure was entered (the stack counts it)
	TCPBacklogDrop            uint64 // unused
	TCPChallengeACKGlobalRL   uint64 // challenge ACKs suppressed by the global hook
}

// Info is a snapshot like Linux's struct tcp_info (ss -ti).
type Info struct {
	State       State
	CAState     CAState
	Retransmits int // consecutive RTO expirations of the current episode
	Probes      int // unanswered zero-window / keepalive probes
	Backoff     int // RTO exponential backoff
	Options     InfoOptions

	SndWScale, RcvWScale uint8

	RTO    time.Duration
	ATO    time.Duration
	SndMSS int
	RcvMSS int

	Unacked int // packets in flight (sent, not cumulatively acked)
	Sacked  int
	Lost    int
	Retrans int // retransmitted packets still unacked
	Fackets int

	LastDataSent time.Duration // since now
	LastAckSent  time.Duration
	LastDataRecv time.Duration
	LastAckRecv  time.Duration

	PMTU        int
	RcvSsthresh int
	RTT         time.Duration // smoothed RTT
	RTTVar      time.Duration
	SndSsthresh int // packets
	SndCwnd     int // packets
	AdvMSS      int
	Reordering  int

	RcvRTT   time.Duration
	RcvSpace int

	TotalRetrans int

	PacingRate    int64 // bytes/s
	MaxPacingRate int64
	BytesAcked    uint64
	BytesReceived uint64
	BytesSent     uint64
	BytesRetrans  uint64
	SegsOut       uint64
	SegsIn        uint64
	DataSegsOut   uint64
	DataSegsIn    uint64
	NotsentBytes  int
	MinRTT        time.Duration
	DeliveryRate  int64 // bytes/s
	Delivered     uint64
	DSACKDups     uint64
	ReordSeen     uint64

	SndWnd int // peer's advertised window (bytes, scaled)
	RcvWnd int // our advertised window (bytes)

	// CC is the congestion controller's own view (Linux tcp_cc_info):
	// its name always; for BBR also its state, bandwidth estimate
	// (bytes/s), min RTT, gains and inflight bounds (cc.Inspector).
	CC cc.Info

	// Sequence state, useful for tests and debugging.
	ISS, IRS, SndUna, SndNxt, RcvNxt uint32
}

// InfoOptions are the negotiated options (tcpi_options).
type InfoOptions struct {
	Timestamps, SACK, WScale, ECN, SynData bool
}

// CAState is Linux's congestion-avoidance state (tcpi_ca_state).
type CAState uint8

// Congestion states.
const (
	CAOpen     CAState = iota // normal
	CADisorder                // dupacks or SACK seen
	CACWR                     // cwnd reduced (ECN)
	CARecovery                // fast recovery
	CALoss                    // after RTO
)

func (s CAState) String() string {
	switch s {
	case CAOpen:
		return "Open"
	case CADisorder:
		return "Disorder"
	case CACWR:
		return "CWR"
	case CARecovery:
		return "Recovery"
	case CALoss:
		return "Loss"
	}
	return "Unknown"
}

// Info returns a tcp_info-like snapshot. Durations since last events are
// measured from the time of the latest call that passed a time.
func (c *Conn) Info() Info {
	now := c.now
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return now.Sub(t)
	}
	in := Info{
		State:         c.state,
		CAState:       c.caState,
		Retransmits:   c.retransmits,
		Probes:        c.probesOut,
		Backoff:       c.rtt.Backoffs(),
		SndWScale:     c.sndWScale,
		RcvWScale:     c.rcvWScale,
		RTO:           c.rtt.RTO(),
		ATO:           c.cfg.DelAckMin,
		SndMSS:        c.sndMSS,
		RcvMSS:        c.rcvMSS,
		Unacked:       c.packetsOut,
		Sacked:        c.sackedOut,
		Lost:          c.lostOut,
		Retrans:       c.retransOut,
		LastDataSent:  since(c.lastDataSent),
		LastAckSent:   since(c.lastAckSentAt),
		LastDataRecv:  since(c.lastDataRecv),
		LastAckRecv:   since(c.lastAckRecv),
		PMTU:          c.advMSS + 40,
		RcvSsthresh:   c.rcvBufCap,
		RTT:           c.rtt.SRTT(),
		RTTVar:        c.rtt.RTTVar(),
		SndSsthresh:   c.cc.Ssthresh(),
		SndCwnd:       c.cc.Cwnd(),
		AdvMSS:        c.advMSS,
		Reordering:    c.reordering,
		RcvSpace:      c.rcvBufCap,
		RcvRTT:        c.rcvRTT,
		TotalRetrans:  c.totalRetrans,
		PacingRate:    c.cc.PacingRate(),
		BytesAcked:    c.bytesAcked,
		BytesReceived: c.bytesReceived,
		BytesSent:     c.bytesSent,
		BytesRetrans:  c.bytesRetrans,
		SegsOut:       c.segsOut,
		SegsIn:        c.segsIn,
		DataSegsOut:   c.dataSegsOut,
		DataSegsIn:    c.dataSegsIn,
		NotsentBytes:  max(0, int(int32(c.dataEnd()-seqMax(c.sndNxt, c.sbufSeq)))),
		MinRTT:        c.minRTT,
		DeliveryRate:  c.deliveryRate,
		Delivered:     uint64(c.delivered),
		DSACKDups:     c.dsackDups,
		SndWnd:        int(c.sndWnd),
		RcvWnd:        int(c.curRcvWnd()),
		ISS:           c.iss,
		IRS:           c.irs,
		SndUna:        c.sndUna,
		SndNxt:        c.sndNxt,
		RcvNxt:        c.rcvNxt,
		CC:            cc.Inspect(c.cc),
	}
	if c.tuple.Remote.Addr().Is6() && !c.tuple.Remote.Addr().Is4In6() {
		in.PMTU = c.advMSS + 60
	}
	if c.state == SynSent {
		in.Retransmits = c.synRetrans
	}
	in.Options = InfoOptions{Timestamps: c.tsOK, SACK: c.sackOK, WScale: c.wsOK, SynData: c.tfo.synDataAcked, ECN: c.ecnOK}
	return in
}

// RateInfo returns the congestion controller's view (Info.CC), the pacing
// rate and the delivery rate (bytes/s): the rate part of Info, cheap enough
// for a tracer to read at every segment.
func (c *Conn) RateInfo() (ccInfo cc.Info, pacingRate, deliveryRate int64) {
	return cc.Inspect(c.cc), c.cc.PacingRate(), c.deliveryRate
}
