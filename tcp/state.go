package tcp

import (
	"time"

	"github.com/ustack/ustack/wire"
)

// Sequence-number comparisons (RFC 9293 3.4, modulo 2^32).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }
func seqMax(a, b uint32) uint32 {
	if seqGT(a, b) {
		return a
	}
	return b
}
func seqMin(a, b uint32) uint32 {
	if seqLT(a, b) {
		return a
	}
	return b
}

func (c *Conn) nowHint() time.Time { return c.now }

func synchronized(s State) bool {
	switch s {
	case Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait:
		return true
	}
	return false
}

func (c *Conn) setState(s State) {
	old := c.state
	if old == s {
		return
	}
	wasEst := old == Established || old == CloseWait
	isEst := s == Established || s == CloseWait
	if wasEst != isEst {
		c.count(func(k *Counters) {
			if isEst {
				k.CurrEstab++
			} else {
				k.CurrEstab--
			}
		})
	}
	c.state = s
	if c.tr != nil {
		c.traceState(old)
	}
}

// setClosed moves to CLOSED with err (nil for an orderly end) and stops
// every timer.
func (c *Conn) setClosed(err error) {
	if c.state == Closed {
		if c.err == nil {
			c.err = err
		}
		return
	}
	if c.state == SynSent || c.state == SynReceived {
		c.count(func(k *Counters) { k.AttemptFails++ })
	}
	if err != nil {
		c.err = err
	}
	c.setState(Closed)
	c.rtoAt, c.persistAt, c.keepAt, c.delackAt, c.twAt, c.fw2At, c.paceAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	c.tlpAt, c.reoAt = time.Time{}, time.Time{}
	c.sendSyn, c.sendProbe, c.ackNow, c.forceRetrans = false, false, false, false
	c.ooo = nil
	c.oooBytes = 0
}

func (c *Conn) queueRST(seq, ack uint32, flags uint8) {
	c.rst = pendingRST{seq: seq, ack: ack, flags: flags}
	c.rstPending = true
}

// queueActiveRST queues a reset sent on our own initiative (abort, close
// with unread data, keepalive timeout): like Linux tcp_send_active_reset it
// carries the timestamp option when timestamps are in use.
func (c *Conn) queueActiveRST() {
	c.queueRST(c.acceptableSeq(), c.rcvNxt, flagRST|flagACK)
	c.rst.ts = c.tsOK
}

// ResetFor returns the RST that answers seg when no connection exists for it
// (RFC 9293 3.10.7.1): ok is false when seg is itself a RST (never answered).
func ResetFor(seg *Segment) (rst Segment, ok bool) {
	if seg.Flags&wire.TCPFlagRST != 0 {
		return Segment{}, false
	}
	if seg.Flags&wire.TCPFlagACK != 0 {
		return Segment{Seq: seg.Ack, Flags: wire.TCPFlagRST}, true
	}
	return Segment{Seq: 0, Ack: seg.Seq + seg.Len(), Flags: wire.TCPFlagRST | wire.TCPFlagACK}, true
}

// enterTimeWait moves to TIME-WAIT for TimeWaitLen (2*MSL, Linux 60 s).
func (c *Conn) enterTimeWait(now time.Time) {
	c.setState(TimeWait)
	c.rtoAt, c.persistAt, c.keepAt, c.fw2At, c.tlpAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	c.twAt = now.Add(c.cfg.TimeWaitLen)
}

// establish completes the handshake.
func (c *Conn) establish(now time.Time) {
	c.setState(Established)
	c.rtoAt = time.Time{}
	c.retransmits = 0
	c.rtt.ResetBackoff()
	if !c.rtt.HasSample() && c.synRetrans > 0 {
		c.rtt.SetBaseRTO(c.cfg.RTOFallback)
	} else if !c.rtt.HasSample() {
		c.rtt.SetBaseRTO(c.cfg.RTOInitial)
	}
	c.rtxStamp = time.Time{}
	if c.packetsOut > 0 {
		// Data sent in SYN-RECEIVED (Fast Open server) is now timed.
		c.rtoAt = now.Add(c.rtt.RTO())
	}
	c.quick = 16
	// Linux starts the receive clock (icsk_ack.lrcvtime) at establishment:
	// tcpi_last_data_recv counts from there until data arrives.
	c.lastDataRecv = now
	if !c.ccInit {
		c.cc.Init(c.sndMSS, now)
		c.ccInit = true
	}
	c.lastSendTime = now
	c.armKeepalive(now)
	if c.finQueued {
		c.setState(FinWait1)
	}
}

// tsVal is our timestamp clock: milliseconds plus the per-connection offset.
func (c *Conn) tsVal(now time.Time) uint32 {
	return uint32(now.UnixMilli()) + c.tsOffset
}

// AcceptsSYN reports whether seg, a SYN for this connection's tuple, may
// open a new incarnation of it (Linux tcp_timewait_state_process): the
// connection is in TIME-WAIT (or CLOSED) and the SYN's sequence number lies
// beyond RCV.NXT, or its timestamp is newer than TS.Recent. The stack then
// discards this Conn and handles the SYN like a listener, preferably with
// NextISS as the new initial sequence number. Otherwise the SYN goes to
// Input, which answers with a challenge ACK.
func (c *Conn) AcceptsSYN(seg *Segment) bool {
	if seg.Flags&(flagSYN|flagACK|flagRST) != flagSYN {
		return false
	}
	switch c.state {
	case Closed:
		return true
	case TimeWait:
	default:
		return false
	}
	if c.tsOK && c.tsRecentOK && seg.Options.HasTS {
		if seqLT(seg.Options.TSVal, c.tsRecent) {
			return false // PAWS
		}
		if seqGT(seg.Options.TSVal, c.tsRecent) {
			return true
		}
	}
	return seqGT(seg.Seq, c.rcvNxt)
}

// NextISS is the initial sequence number Linux gives a connection that
// replaces this one from TIME-WAIT: SND.NXT + 65535 + 2, so that old
// duplicates cannot be mistaken for new data.
func (c *Conn) NextISS() uint32 { return c.sndNxt + 65535 + 2 }
