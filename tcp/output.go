package tcp

import (
	"time"

	"github.com/ustack/ustack/wire"
)

// Output emits every segment that is ready to go at now: a pending RST,
// SYN or SYN-ACK, retransmissions of segments marked lost, new data allowed
// by the congestion and receive windows (Nagle permitting), the FIN, probes,
// and a pure ACK when one is owed and no other segment carried it.
//
// The *Segment given to emit is reused by the Conn: emit must consume (or
// copy) it before returning. Its Payload aliases the send buffer and stays
// valid until the next call on the Conn.
func (c *Conn) Output(now time.Time, emit func(*Segment)) {
	c.now = now
	c.out = getOutSeg()
	defer c.releaseOut()
	if c.rstPending {
		c.rstPending = false
		s := c.out
		*s = Segment{Seq: c.rst.seq, Ack: c.rst.ack, Flags: c.rst.flags}
		if c.rst.ts {
			s.Options.HasTS = true
			s.Options.TSVal = c.tsVal(now)
			s.Options.TSEcr = c.tsRecent
		}
		c.segsOut++
		c.count(func(k *Counters) { k.OutSegs++; k.OutRsts++ })
		if c.tr != nil {
			c.traceSeg(EvSend, s, ReasonRST)
		}
		emit(s)
	}
	switch c.state {
	case Closed, Listen:
		return
	case SynSent, SynReceived:
		if c.sendSyn {
			c.emitSyn(now, emit)
		} else if c.state == SynReceived && c.ackNow {
			c.emitAck(now, emit)
		}
		if c.state == SynReceived && c.tfo.synDataIn > 0 && c.synEmitted {
			// Fast Open server: the reply may go before the handshake
			// completes (Linux sends from SYN-RECV for TFO children).
			c.sendNew(now, emit)
		}
		return
	case TimeWait, FinWait2:
		if c.ackNow || c.sendProbe {
			c.emitProbeOrAck(now, emit)
		}
		return
	}

	acked := false
	// 1. Retransmit segments marked lost.
	if c.lostOut > c.retransOut {
		q := c.rtxQ()
		for k := range q {
			s := &q[k]
			if !s.lost || s.rtxOut {
				continue
			}
			if !c.forceRetrans && c.inFlight() >= c.sendCwnd() {
				break
			}
			if k > 0 && !seqLT(s.seq, c.sndUna+c.sndWnd) {
				break
			}
			c.retransmit(s, now, emit)
			acked = true
			c.forceRetrans = false
		}
	}
	c.forceRetrans = false

	// Tail loss probe: one retransmission of the last segment.
	if c.tlpRetrans {
		c.tlpRetrans = false
		if q := c.rtxQ(); len(q) > 0 && !q[len(q)-1].sacked {
			s := &q[len(q)-1]
			c.tlpHigh = c.sndNxt
			c.tlpWasRetrans = true
			if c.tr != nil {
				c.tr.tlp = true
			}
			c.retransmitProbe(s, now, emit)
			acked = true
		} else {
			c.tlpOut = false
		}
	}

	// 2. New data and FIN.
	if c.sendNew(now, emit) {
		acked = true
	}

	// 3. Probes and pure ACKs.
	if c.sendProbe || (c.ackNow && !acked) || (c.dsackPending && !acked) {
		c.emitProbeOrAck(now, emit)
	}
}

// sendNew sends new data (and the FIN) as the windows allow. It reports
// whether it emitted anything.
func (c *Conn) sendNew(now time.Time, emit func(*Segment)) bool {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	case SynReceived:
		if c.tfo.synDataIn == 0 {
			return false
		}
	default:
		return false
	}
	sent := false
	windowBlocked := false
	appLimited := false
	for {
		avail := 0
		if seqLT(c.sndNxt, c.dataEnd()) {
			avail = int(c.dataEnd() - c.sndNxt)
		}
		wantFin := c.finQueued && !c.finSent
		if avail == 0 && !wantFin {
			appLimited = true
			break
		}
		// Like Linux tcp_cwnd_test, a lone FIN is not held back by cwnd.
		if c.inFlight() >= c.sendCwnd() && !c.tlpNew && !(avail == 0 && wantFin) {
			break
		}
		if !c.paceAt.IsZero() && now.Before(c.paceAt) {
			break
		}
		wndEnd := c.sndUna + c.sndWnd
		mss := c.sndMSS - c.sackOptLen() // Linux tcp_current_mss
		n := min(avail, mss)
		if c.probeData && seqLT(c.sndNxt, wndEnd) {
			n = min(n, int(wndEnd-c.sndNxt))
			c.probeData = false
			if n < avail {
				wantFin = false
			}
		}
		fin := wantFin && n == avail
		segEnd := c.sndNxt + uint32(n)
		if fin {
			segEnd++
		}
		if seqGT(segEnd, wndEnd) {
			if fin && n > 0 && seqLEQ(segEnd-1, wndEnd) {
				fin = false // data fits, FIN waits
			} else {
				windowBlocked = true
				break
			}
		}
		if n < mss && n == avail && !fin && !c.noDelay && c.packetsOut > 0 {
			break // Nagle: a small segment waits for the ACK of outstanding data
		}
		if c.packetsOut == 0 && !c.lastSendTime.IsZero() {
			// Sending resumes with nothing in flight: the controller
			// restarts from idle (Reno/CUBIC cut cwnd only when idle > rto
			// > 0; rto is 0 with tcp_slow_start_after_idle off).
			var rto time.Duration
			if c.cfg.SlowStartAfterIdle {
				rto = c.rtt.RTO()
			}
			c.cc.OnIdleRestart(now, now.Sub(c.lastSendTime), rto)
		}
		c.sendSegment(n, fin, now, emit)
		sent = true
		if c.tlpNew {
			c.tlpNew = false
			c.tlpHigh = c.sndNxt
			c.tlpWasRetrans = false
		}
	}
	if c.tlpNew {
		c.tlpNew = false
		c.tlpOut = false
	}
	if sent && !c.tlpOut {
		c.scheduleTLP(now)
	}
	if isCwndLimited := c.inFlight() >= c.sendCwnd(); sent || isCwndLimited {
		c.cwndValidate(isCwndLimited)
	}
	if appLimited && c.inFlight() < c.sendCwnd() {
		c.appLimited = max(c.delivered+int64(c.inFlight()), 1)
	}
	if windowBlocked && c.packetsOut == 0 && c.persistAt.IsZero() && c.rtoAt.IsZero() {
		c.persistAt = now.Add(c.probeTimeout())
	}
	return sent
}

// cwndValidate tracks how much of cwnd the sender uses (Linux
// tcp_cwnd_validate): once per window of data, or whenever sending is
// cwnd-limited, or when more packets are out than seen in this window.
func (c *Conn) cwndValidate(isCwndLimited bool) {
	if !seqLT(c.sndUna, c.cwndUsageSeq) || isCwndLimited || (!c.isCwndLimited && c.packetsOut > c.maxPacketsOut) {
		c.isCwndLimited = isCwndLimited
		c.maxPacketsOut = c.packetsOut
		c.cwndUsageSeq = c.sndNxt
	}
}

// cwndLimitedNow is Linux tcp_is_cwnd_limited: growth is allowed when the
// window was filled, or in slow start while cwnd < 2*max_packets_out.
func (c *Conn) cwndLimitedNow() bool {
	if c.isCwndLimited {
		return true
	}
	if cw := c.cc.Cwnd(); cw < c.cc.Ssthresh() {
		return cw < 2*c.maxPacketsOut
	}
	return false
}

// sendSegment emits n new data bytes at SND.NXT (plus FIN).
func (c *Conn) sendSegment(n int, fin bool, now time.Time, emit func(*Segment)) {
	seq := c.sndNxt
	off := c.sbufOff + int(seq-c.sbufSeq)
	payload := c.sbuf[off : off+n : off+n]
	flags := uint8(flagACK)
	if n > 0 && seq+uint32(n) == c.dataEnd() {
		flags |= flagPSH
	}
	end := seq + uint32(n)
	if fin {
		flags |= flagFIN
		c.finSent = true
		c.finSeq = end
		end++
	}
	if c.packetsOut == 0 {
		c.firstTxTime = now
		c.deliveredTime = now
	}
	c.xmitN++
	ts := txSeg{seq: seq, end: end, fin: fin, sentAt: now, xmitN: c.xmitN}
	c.snapRate(&ts)
	ts.txInFlight = c.inFlight() + 1
	c.pushRtx(ts)
	c.packetsOut++
	if c.caState == CARecovery {
		c.prr.OnSend(1)
	}
	c.sndNxt = end
	c.persistAt = time.Time{}
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rtoWithUserTimeout(now))
	}
	c.lastSendTime = now
	if n > 0 {
		// Data sent soon (within the delayed-ACK timeout) after data was
		// received: interactive mode, where received data is not ACKed
		// at once but with the reply (Linux tcp_event_data_sent, ping-pong
		// threshold 1).
		if c.bytesReceived > 0 && now.Sub(c.lastDataRecv) < c.cfg.DelAckMin {
			c.pingpong = true
		}
		c.lastDataSent = now
		c.dataSegsOut++
		c.bytesSent += uint64(n)
	}
	c.segsOut++
	c.count(func(k *Counters) {
		k.OutSegs++
		if n > 0 {
			k.TCPOrigDataSent++
		}
	})
	s := c.prepare(seq, flags, payload, now)
	if c.ecnOK && n > 0 {
		// New data is ECN-capable; the first after a reduction carries
		// CWR. Retransmissions, probes and pure ACKs are not ECT.
		s.ECN = ECNECT0
		if c.ecnCWR {
			s.Flags |= wire.TCPFlagCWR
			c.ecnCWR = false
		}
	}
	c.pace(n, now)
	if c.tr != nil {
		c.traceSeg(EvSend, s, ReasonNewData)
	}
	emit(s)
}

// retransmitProbe re-sends the last segment as a tail loss probe. Unlike a
// loss repair it does not mark the segment lost.
func (c *Conn) retransmitProbe(s *txSeg, now time.Time, emit func(*Segment)) {
	wasOut := s.rtxOut
	c.retransmit(s, now, emit)
	if !wasOut {
		// Not in the lost/retransmitted accounting: it is just sent again.
		s.rtxOut = false
		c.retransOut--
	}
}

// retransmit re-sends a segment of the retransmission queue.
func (c *Conn) retransmit(s *txSeg, now time.Time, emit func(*Segment)) {
	if c.rtxStamp.IsZero() {
		c.rtxStamp = s.sentAt
	}
	dataEnd := s.end
	if s.fin {
		dataEnd--
	}
	var payload []byte
	if seqLT(s.seq, dataEnd) && seqGEQ(s.seq, c.sbufSeq) {
		off := c.sbufOff + int(s.seq-c.sbufSeq)
		n := int(dataEnd - s.seq)
		payload = c.sbuf[off : off+n : off+n]
	}
	flags := uint8(flagACK)
	if len(payload) > 0 && dataEnd == c.dataEnd() {
		flags |= flagPSH
	}
	if s.fin {
		flags |= flagFIN
	}
	if c.caState == CARecovery {
		c.prr.OnSend(1)
	}
	if c.undoMarker {
		c.undoRetrans++
	}
	s.sentAt = now
	c.xmitN++
	s.xmitN = c.xmitN
	s.retrans = true
	s.rtxOut = true
	c.retransOut++
	c.snapRate(s)
	s.txInFlight = c.inFlight()
	c.totalRetrans++
	c.bytesRetrans += uint64(len(payload))
	c.segsOut++
	state := c.caState
	c.count(func(k *Counters) {
		k.RetransSegs++
		switch state {
		case CARecovery:
			k.TCPFastRetrans++
		case CALoss:
			k.TCPSlowStartRetrans++
		}
	})
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rtoWithUserTimeout(now))
	}
	c.lastSendTime = now
	seg := c.prepare(s.seq, flags, payload, now)
	if c.tr != nil {
		c.traceRetrans(seg)
	}
	emit(seg)
}

// snapRate records the delivery-rate state in a segment being sent.
func (c *Conn) snapRate(s *txSeg) {
	s.delivered = c.delivered
	s.deliveredTime = c.deliveredTime
	s.firstTxTime = c.firstTxTime
	s.appLimited = c.appLimited != 0
	s.lostSnap = c.lostTotal
}

// pace schedules the release time of the next segment when the congestion
// controller asks for pacing. Like Linux, which paces TSO bursts of about a
// millisecond of data rather than single segments, the sender may run up to
// one pacing quantum ahead of the pacing rate: paceEnd is when the data paced
// so far would have left at the pacing rate, and sending stops (paceAt) while
// paceEnd is more than a quantum away. The quantum is 2 ms at the pacing rate,
// at least two segments and at most 64 KiB. Pacing every segment on its own
// needs a wakeup every 120 us at 100 Mbit/s, which a runtime whose timers
// fire a millisecond late cannot deliver: the rate collapsed to about one
// segment per timer tick. The quantum also absorbs late wakeups: the time a
// late timer lost is made up by a longer burst, within the quantum.
//
// A segment costs its payload bytes n, as in Linux's internal TCP pacing
// (tcp_update_skb_after_send charges skb->len of the queued skb, which
// holds no headers): pacing rates are payload rates, the unit of the
// delivery rate BBR's model is built from. Charging the 52 header bytes as
// well made BBR cruise at 1448/1500 of its bandwidth estimate (92.3 of
// 96.5 Mbit/s of goodput on a 100 Mbit/s link).
func (c *Conn) pace(n int, now time.Time) {
	rate := c.cc.PacingRate()
	if rate <= 0 {
		c.paceAt, c.paceEnd = time.Time{}, time.Time{}
		return
	}
	quantum := min(max(rate/500, 2*int64(c.sndMSS)), 64<<10)
	burst := time.Duration(quantum * int64(time.Second) / rate)
	base := now
	if c.paceEnd.After(now) {
		base = c.paceEnd
	}
	c.paceEnd = base.Add(time.Duration(int64(n) * int64(time.Second) / rate))
	c.paceAt = time.Time{}
	if at := c.paceEnd.Add(-burst); at.After(now) {
		c.paceAt = at
	}
}

// emitSyn sends the SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED).
func (c *Conn) emitSyn(now time.Time, emit func(*Segment)) {
	c.sendSyn = false
	c.synEmitted = true
	s := c.out
	s.Seq = c.iss
	s.Ack = 0
	s.Flags = flagSYN
	s.Payload = nil
	s.Urgent = 0
	s.Window = uint16(c.synWindow())
	s.Options = wire.TCPOptions{MSS: uint16(c.advMSS), HasMSS: true}
	if c.wsOK {
		s.Options.HasWScale = true
		s.Options.WScale = c.rcvWScale
	}
	s.Options.SACKPermitted = c.sackOK
	if c.tsOK {
		s.Options.HasTS = true
		s.Options.TSVal = c.tsVal(now)
	}
	if c.tfo.set {
		s.Options.HasFastOpen = true
		s.Options.FastOpenExp = c.tfo.exp
		s.Options.CookieLen = c.tfo.n
		s.Options.Cookie = c.tfo.cookie
	}
	if c.state == SynSent && c.tfo.synData && c.synRetrans == 0 && !c.passive {
		// Fast Open: the first SYN carries the queued data (a
		// retransmitted SYN does not, like Linux).
		limit := c.advMSS - 40
		if c.tfo.synDataMax > 0 {
			limit = min(limit, c.tfo.synDataMax)
		}
		if n := min(c.sndQueued(), limit); n > 0 {
			s.Payload = c.sbuf[c.sbufOff : c.sbufOff+n : c.sbufOff+n]
			c.tfo.synDataN = n
			c.sndNxt = c.iss + 1 + uint32(n)
			c.bytesSent += uint64(n)
			c.dataSegsOut++
			c.lastDataSent = now
			c.count(func(k *Counters) { k.TCPOrigDataSent++ })
		}
	}
	s.ECN = ECNNotECT
	if c.ecnOK {
		if c.state == SynSent && c.synRetrans == 0 {
			s.Flags |= wire.TCPFlagECE | wire.TCPFlagCWR // ECN-setup SYN (not on retransmissions, tcp_ecn_fallback)
		} else if c.state == SynReceived {
			s.Flags |= wire.TCPFlagECE // ECN-setup SYN-ACK
		}
	}
	if c.state == SynReceived {
		s.Flags |= flagACK
		s.Ack = c.rcvNxt
		s.Options.TSEcr = c.tsRecent
		c.rcvWup = c.rcvNxt
		c.rcvAdv = c.rcvNxt + c.synWindow()
		c.ackNow = false
	}
	c.segsOut++
	c.count(func(k *Counters) { k.OutSegs++ })
	if c.tr != nil {
		c.traceSyn(s)
	}
	emit(s)
}

func (c *Conn) emitAck(now time.Time, emit func(*Segment)) {
	s := c.prepare(c.acceptableSeq(), flagACK, nil, now)
	if c.tr != nil {
		c.traceSeg(EvSend, s, ReasonAck)
	}
	emit(s)
	c.segsOut++
	c.count(func(k *Counters) { k.OutSegs++ })
}

// emitProbeOrAck sends a probe (SEQ = SND.UNA-1, Linux style) or a pure ACK.
func (c *Conn) emitProbeOrAck(now time.Time, emit func(*Segment)) {
	seq := c.acceptableSeq()
	if c.sendProbe {
		seq = c.sndUna - 1
		c.sendProbe = false
	}
	c.emitAckSeq(seq, now, emit)
}

// acceptableSeq is the sequence number of a segment without data (Linux
// tcp_acceptable_seq): SND.NXT, unless the peer's window shrank below what
// we sent by more than one unit of its window scale; then its right edge
// SND.UNA + SND.WND, since its sequence check (RFC 9293, Linux
// tcp_sequence) would drop SND.NXT, ACK field unread.
func (c *Conn) acceptableSeq() uint32 {
	end := c.sndUna + c.sndWnd
	if !seqLT(end, c.sndNxt) || (c.wsOK && c.sndNxt-end < uint32(1)<<c.sndWScale) {
		return c.sndNxt
	}
	return end
}

func (c *Conn) emitAckSeq(seq uint32, now time.Time, emit func(*Segment)) {
	s := c.prepare(seq, flagACK, nil, now)
	c.segsOut++
	c.count(func(k *Counters) { k.OutSegs++ })
	if c.tr != nil {
		c.traceAckSeq(s, seq)
	}
	emit(s)
}

// prepare fills the reusable output segment for a synchronized state: ACK
// number, window, timestamps and SACK blocks. Every such segment carries an
// ACK, so owed ACKs are settled here.
func (c *Conn) prepare(seq uint32, flags uint8, payload []byte, now time.Time) *Segment {
	s := c.out
	s.Seq = seq
	if c.ecnEcho {
		flags |= wire.TCPFlagECE
	}
	s.Flags = flags
	s.ECN = ECNNotECT
	s.Payload = payload
	s.Urgent = 0
	s.Options = wire.TCPOptions{}
	s.Ack = c.rcvNxt
	if c.tsOK {
		s.Options.HasTS = true
		s.Options.TSVal = c.tsVal(now)
		s.Options.TSEcr = c.tsRecent
	}
	w := c.selectWindow(true)
	s.Window = uint16(w >> c.rcvWScale)
	if w == 0 {
		if !c.zeroWndAdv {
			c.count(func(k *Counters) { k.TCPToZeroWindowAdv++ })
		}
		c.zeroWndAdv = true
	} else if c.zeroWndAdv {
		c.zeroWndAdv = false
		c.count(func(k *Counters) { k.TCPFromZeroWindowAdv++ })
	}
	if c.sackOK {
		maxBlk := c.maxSACKBlocks()
		// The options must fit next to the payload within the MSS (the
		// timestamp option is already accounted for in sndMSS).
		if room := c.sndMSS - len(payload); room < 4+8*maxBlk {
			maxBlk = max(0, (room-4)/8)
		}
		n := 0
		if c.dsackPending && maxBlk > 0 {
			s.Options.SACK[0] = c.dsack
			n = 1
			c.dsackPending = false
		}
		for i := 0; i < c.nSack && n < maxBlk; i++ {
			if n > 0 && c.sackBlk[i] == s.Options.SACK[0] {
				continue
			}
			s.Options.SACK[n] = c.sackBlk[i]
			n++
		}
		s.Options.NumSACK = n
	}
	if c.rcvNxt != c.rcvWup && c.quick > 0 {
		c.quick--
	}
	c.rcvWup = c.rcvNxt
	c.ackNow = false
	c.delackAt = time.Time{}
	c.lastAckSentAt = now
	return s
}

// maxSACKBlocks is how many SACK blocks fit in the option space next to
// the timestamp option (3) or without it (4).
func (c *Conn) maxSACKBlocks() int {
	if c.tsOK {
		return 3
	}
	return 4
}

// sackOptLen is the option space the SACK blocks we owe the peer take in
// the next segment (NOP, NOP, kind, length, 8 bytes per block).
func (c *Conn) sackOptLen() int {
	if !c.sackOK {
		return 0
	}
	n := c.nSack
	if c.dsackPending {
		n++
	}
	n = min(n, c.maxSACKBlocks())
	if n == 0 {
		return 0
	}
	return 4 + 8*n
}
