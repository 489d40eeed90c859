package tcp

import (
	"time"
)

// EventKind says what a trace Event reports.
type EventKind uint8

// Trace event kinds.
const (
	EvState    EventKind = iota + 1 // state transition (State, PrevState)
	EvSend                          // segment sent (Seq, Ack, Len, Flags, Wnd, Reason)
	EvRecv                          // segment received (Seq, Ack, Len, Flags, Wnd)
	EvRTO                           // retransmission timeout changed (RTO, SRTT)
	EvCwnd                          // cwnd or ssthresh changed (Cwnd, Ssthresh)
	EvWindow                        // peer's send window changed (Wnd, bytes, scaled)
	EvFastOpen                      // Fast Open event (Reason)
)

var evNames = [...]string{EvState: "state", EvSend: "send", EvRecv: "recv", EvRTO: "rto", EvCwnd: "cwnd", EvWindow: "window", EvFastOpen: "fastopen"}

func (k EventKind) String() string {
	if int(k) < len(evNames) && evNames[k] != "" {
		return evNames[k]
	}
	return "unknown"
}

// Reason says why a segment was sent (EvSend) or which Fast Open event
// happened (EvFastOpen).
type Reason uint8

// Send and Fast Open reasons.
const (
	ReasonNone           Reason = iota
	ReasonNewData               // new data and/or FIN
	ReasonAck                   // pure ACK (or window update)
	ReasonSyn                   // SYN or SYN-ACK
	ReasonSynRetrans            // retransmitted SYN or SYN-ACK
	ReasonRST                   // reset
	ReasonRTO                   // retransmission after a timeout (loss state)
	ReasonFastRetransmit        // retransmission in fast recovery (dup ACKs, SACK or RACK)
	ReasonRACK                  // retransmission of a segment RACK marked lost outside recovery
	ReasonTLP                   // tail loss probe
	ReasonWindowProbe           // zero-window probe
	ReasonKeepalive             // keepalive probe
	ReasonTFOSynData            // Fast Open: data sent in the SYN
	ReasonTFOCookie             // Fast Open: cookie received from the peer
	ReasonTFODataAcked          // Fast Open: the SYN-ACK acknowledged the SYN data
	ReasonTFOSynDataIn          // Fast Open server: SYN data accepted
)

var reasonNames = [...]string{
	ReasonNone: "", ReasonNewData: "new-data", ReasonAck: "ack", ReasonSyn: "syn", ReasonSynRetrans: "syn-retransmit",
	ReasonRST: "rst", ReasonRTO: "retransmit-rto", ReasonFastRetransmit: "fast-retransmit", ReasonRACK: "rack",
	ReasonTLP: "tlp-probe", ReasonWindowProbe: "window-probe", ReasonKeepalive: "keepalive",
	ReasonTFOSynData: "tfo-syn-data", ReasonTFOCookie: "tfo-cookie", ReasonTFODataAcked: "tfo-data-acked",
	ReasonTFOSynDataIn: "tfo-syn-data-accepted",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Event is one trace record. Fields not meaningful for Kind are zero,
// except Cwnd, Ssthresh (packets), RTO and SRTT, which always carry the
// connection's current values.
type Event struct {
	Kind      EventKind
	Time      time.Time
	State     State
	PrevState State // EvState only
	Seq, Ack  uint32
	Len       int // payload bytes
	Flags     uint8
	Wnd       uint32 // EvSend/EvRecv: raw window field; EvWindow: scaled send window in bytes
	Reason    Reason
	Cwnd      int
	Ssthresh  int
	RTO       time.Duration
	SRTT      time.Duration
}

// Tracer receives the engine's trace events. The *Event is only valid
// during the call.
type Tracer func(e *Event)

// tracer is the per-connection trace state, allocated only by SetTracer so
// that a Conn without tracing pays one pointer and one nil check per site.
type tracer struct {
	fn       Tracer
	ev       Event
	cwnd     int
	ssthresh int
	rto      time.Duration
	sndWnd   uint32
	tlp      bool  // the retransmission under way is a tail loss probe
	inCall   bool  // inside a traced Input or Timeout (see inputTraced)
	tfo      uint8 // bits: 1 cookie seen, 2 SYN data acked, 4 SYN data accepted
}

// SetTracer installs fn to receive the connection's trace events (nil
// turns tracing off). With no tracer the engine does no tracing work: each
// event site is one nil check, with no extra call and no allocation.
//
// Installed right after NewActive or NewPassive, before the first Output,
// the tracer first receives the constructor's state transition, stamped
// with the constructor's time: CLOSED -> SYN-SENT for an active open,
// LISTEN -> SYN-RECEIVED for a passive one (as Linux's tcp:tcp_set_state
// and RFC 9293's state diagram show them).
func (c *Conn) SetTracer(fn Tracer) {
	if fn == nil {
		c.tr = nil
		return
	}
	c.tr = &tracer{fn: fn, cwnd: c.cc.Cwnd(), ssthresh: c.cc.Ssthresh(), rto: c.rtt.RTO(), sndWnd: c.sndWnd}
	if c.segsOut == 0 && c.segsIn == 0 && (c.state == SynSent || c.state == SynReceived) {
		e := c.traceEv(EvState)
		e.Time, e.PrevState = c.synSentAt, Closed
		if c.passive {
			e.PrevState = Listen
		}
		c.tr.fn(e)
	}
}

// inputTraced is Input with a tracer: the received segment, then Input
// itself (re-entered with inCall set, so that with tracing off Input is
// the engine with one nil check in front and no wrapper call), then the
// RTO, cwnd, window and Fast Open changes the segment caused.
//
//go:noinline
func (c *Conn) inputTraced(seg *Segment, now time.Time) {
	t := c.tr
	c.now = now
	c.traceSeg(EvRecv, seg, ReasonNone)
	t.inCall = true
	c.Input(seg, now)
	t.inCall = false
	if c.tr != nil {
		c.traceChanges()
	}
}

// timeoutTraced is Timeout with a tracer (see inputTraced).
//
//go:noinline
func (c *Conn) timeoutTraced(now time.Time) {
	t := c.tr
	t.inCall = true
	c.Timeout(now)
	t.inCall = false
	if c.tr != nil {
		c.traceChanges()
	}
}

// traceEv fills the common fields of the tracer's event.
func (c *Conn) traceEv(k EventKind) *Event {
	e := &c.tr.ev
	*e = Event{Kind: k, Time: c.now, State: c.state, Cwnd: c.cc.Cwnd(), Ssthresh: c.cc.Ssthresh(), RTO: c.rtt.RTO(), SRTT: c.rtt.SRTT()}
	return e
}

func (c *Conn) traceSeg(k EventKind, s *Segment, r Reason) {
	e := c.traceEv(k)
	e.Seq, e.Ack, e.Len, e.Flags, e.Wnd, e.Reason = s.Seq, s.Ack, len(s.Payload), s.Flags, uint32(s.Window), r
	c.tr.fn(e)
}

func (c *Conn) traceState(old State) {
	e := c.traceEv(EvState)
	e.PrevState = old
	c.tr.fn(e)
}

// The send-side helpers below are kept out of line so that the hot send
// paths carry only their nil check.

// traceRetrans reports a retransmission of the queue with its cause.
//
//go:noinline
func (c *Conn) traceRetrans(s *Segment) {
	r := ReasonRACK
	switch c.caState {
	case CALoss:
		r = ReasonRTO
	case CARecovery:
		r = ReasonFastRetransmit
	}
	if c.tr.tlp {
		c.tr.tlp, r = false, ReasonTLP
	}
	c.traceSeg(EvSend, s, r)
}

// traceSyn reports a SYN or SYN-ACK: first, retransmitted, or carrying
// Fast Open data.
//
//go:noinline
func (c *Conn) traceSyn(s *Segment) {
	r := ReasonSyn
	if len(s.Payload) > 0 {
		r = ReasonTFOSynData
	} else if c.synRetrans > 0 {
		r = ReasonSynRetrans
	}
	c.traceSeg(EvSend, s, r)
}

// traceAckSeq reports a bare ACK; one below SND.NXT is a probe. A
// keepalive goes out only with nothing in flight and nothing queued,
// anything else is a zero-window probe.
//
//go:noinline
func (c *Conn) traceAckSeq(s *Segment, seq uint32) {
	r := ReasonAck
	if seq != c.sndNxt {
		r = ReasonKeepalive
		if c.packetsOut > 0 || c.sndQueued() > 0 || c.sndWnd == 0 {
			r = ReasonWindowProbe
		}
	}
	c.traceSeg(EvSend, s, r)
}

// traceChanges reports RTO, cwnd/ssthresh, send window and Fast Open
// changes since the last report. Called after a traced Input or Timeout.
func (c *Conn) traceChanges() {
	t := c.tr
	if rto := c.rtt.RTO(); rto != t.rto {
		t.rto = rto
		c.tr.fn(c.traceEv(EvRTO))
	}
	if cw, ss := c.cc.Cwnd(), c.cc.Ssthresh(); cw != t.cwnd || ss != t.ssthresh {
		t.cwnd, t.ssthresh = cw, ss
		c.tr.fn(c.traceEv(EvCwnd))
	}
	if c.sndWnd != t.sndWnd {
		t.sndWnd = c.sndWnd
		e := c.traceEv(EvWindow)
		e.Wnd = c.sndWnd
		c.tr.fn(e)
	}
	var tfo uint8
	if c.tfo.peerSeen {
		tfo |= 1
	}
	if c.tfo.synDataAcked {
		tfo |= 2
	}
	if c.tfo.synDataIn > 0 {
		tfo |= 4
	}
	if n := tfo &^ t.tfo; n != 0 {
		t.tfo = tfo
		for bit, r := range [...]Reason{ReasonTFOCookie, ReasonTFODataAcked, ReasonTFOSynDataIn} {
			if n&(1<<bit) != 0 {
				e := c.traceEv(EvFastOpen)
				e.Reason = r
				c.tr.fn(e)
			}
		}
	}
}
