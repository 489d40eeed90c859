package tcp

import (
	"syscall"
	"time"

	"github.com/ustack/ustack/wire"
)

const (
	flagFIN = wire.TCPFlagFIN
	flagSYN = wire.TCPFlagSYN
	flagRST = wire.TCPFlagRST
	flagPSH = wire.TCPFlagPSH
	flagACK = wire.TCPFlagACK
)

// pawsIdle is how long tsRecent stays valid without being refreshed
// (RFC 7323 5.5: 24 days).
const pawsIdle = 24 * 24 * time.Hour

// Input processes one received segment (RFC 9293 3.10.7, with RFC 5961,
// RFC 7323 and Linux behaviour where they differ).
func (c *Conn) Input(seg *Segment, now time.Time) {
	if c.tr != nil && !c.tr.inCall {
		c.inputTraced(seg, now) // re-enters Input with tr.inCall set
		return
	}
	c.now = now
	c.segsIn++
	if len(seg.Payload) > 0 {
		c.dataSegsIn++
	}
	c.count(func(k *Counters) { k.InSegs++ })
	switch c.state {
	case Closed, Listen:
		return
	case SynSent:
		c.inputSynSent(seg, now)
		return
	}
	flags := seg.Flags

	// PAWS (RFC 7323 5.3), before the sequence check.
	if c.tsOK && seg.Options.HasTS && flags&flagRST == 0 && c.tsRecentOK &&
		seqLT(seg.Options.TSVal, c.tsRecent) {
		if now.Sub(c.tsRecentAt) <= pawsIdle {
			c.count(func(k *Counters) { k.TCPPAWSEstab++ })
			c.dupAck(seg, now)
			return
		}
		c.tsRecentOK = false
	}

	// Simultaneous open: the peer's SYN-ACK arriving in SYN-RECEIVED is
	// processed as a plain ACK (like Linux).
	if c.state == SynReceived && flags&(flagSYN|flagACK) == flagSYN|flagACK &&
		seg.Seq+1 == c.rcvNxt && seg.Ack == c.sndNxt && len(seg.Payload) == 0 && !c.passive {
		flags &^= flagSYN
		adj := *seg // a copy (on the stack): the caller's segment stays as it was,
		adj.Seq++   // and Input has no defer, whose deferreturn every call would pay
		seg = &adj
	}

	// 1. Sequence number check (Linux tcp_sequence: the segment must end at
	// or after the last ACK we sent and start inside the window).
	segLen := uint32(len(seg.Payload))
	if flags&flagSYN != 0 {
		segLen++
	}
	if flags&flagFIN != 0 {
		segLen++
	}
	wnd := c.curRcvWnd()
	if !(seqGEQ(seg.Seq+segLen, c.rcvWup) && seqLEQ(seg.Seq, c.rcvNxt+wnd)) {
		if flags&flagRST != 0 {
			return
		}
		if c.state == SynReceived && flags&(flagSYN|flagACK) == flagSYN && seg.Seq == c.irs {
			// Our SYN-ACK was lost: the peer retransmitted its SYN.
			if !c.oowRateLimited(now, nil) {
				c.sendSyn = true
			}
			return
		}
		if flags&flagSYN != 0 {
			c.challengeACK(now, true)
			return
		}
		if len(seg.Payload) > 0 && seqLEQ(seg.Seq+uint32(len(seg.Payload)), c.rcvNxt) {
			c.setDSACK(seg.Seq, seg.Seq+uint32(len(seg.Payload)), true)
		}
		c.dupAck(seg, now)
		return
	}

	// 2. RST (RFC 5961 3.2: only an exact match resets, in-window RSTs get
	// a challenge ACK).
	if flags&flagRST != 0 {
		if seg.Seq != c.rcvNxt {
			c.challengeACK(now, false)
			return
		}
		c.resetByPeer()
		return
	}

	// 4. SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
	if flags&flagSYN != 0 {
		if c.state == SynReceived && c.passive && seg.Seq == c.irs && flags&flagACK == 0 {
			// Retransmitted SYN: answer with the SYN-ACK again.
			c.sendSyn = true
			return
		}
		c.challengeACK(now, true)
		return
	}

	// 5. ACK
	if flags&flagACK == 0 {
		return
	}
	c.lastRecv = now
	if c.state == SynReceived {
		if !(seqLT(c.sndUna, seg.Ack) && seqLEQ(seg.Ack, c.sndNxt)) {
			c.queueRST(seg.Ack, 0, flagRST)
			return
		}
		if c.synRetrans == 0 {
			c.rttSample(now.Sub(c.synSentAt), now)
		} else if c.tsOK && seg.Options.HasTS && seg.Options.TSEcr != 0 {
			c.tsRTTSample(seg.Options.TSEcr, now)
		}
		c.updateTSRecent(seg, now)
		c.sndUna = c.iss + 1
		c.sndWnd = uint32(seg.Window) << c.sndWScale
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
		c.establish(now)
		if seqGT(seg.Ack, c.sndUna) {
			// Fast Open server: the ACK also covers data we sent in
			// SYN-RECEIVED.
			c.processAck(seg, now)
			if c.state == Closed {
				return
			}
		}
	} else {
		if seqGT(seg.Ack, c.sndNxt) || seqLT(seg.Ack, c.sndUna-c.maxSndWnd) {
			// RFC 5961 5.2 / RFC 9293: ACK of unsent data or far too
			// old: challenge ACK, drop.
			c.challengeACK(now, false)
			return
		}
		c.updateTSRecent(seg, now)
		c.processAck(seg, now)
		if c.state == Closed {
			return
		}
	}

	// 6/7. Segment text.
	if len(seg.Payload) > 0 && c.ecnOK {
		// RFC 3168 6.1.3: CWR ends the echo, CE (re)starts it; a CE mark
		// is ACKed at once (Linux tcp_ecn_check_ce).
		if flags&wire.TCPFlagCWR != 0 {
			c.ecnEcho = false
		}
		if seg.ECN == ECNCE {
			if !c.ecnEcho {
				c.ackNow = true
			}
			c.ecnEcho = true
		}
	}
	if len(seg.Payload) > 0 {
		switch c.state {
		case Established, FinWait1, FinWait2:
			if c.orphan && seqGT(seg.Seq+uint32(len(seg.Payload)), c.rcvNxt) {
				// Data for an application that is gone: reset (Linux
				// TCPAbortOnData).
				c.count(func(k *Counters) { k.TCPAbortOnData++ })
				c.queueActiveRST()
				c.setClosed(nil)
				return
			}
			c.receiveData(seg, now)
		default:
			// CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer's FIN
			// was received, so this is a retransmission of old data:
			// acknowledge it (our ACK was lost), D-SACK if enabled.
			if end := seg.Seq + uint32(len(seg.Payload)); seqLEQ(end, c.rcvNxt) {
				c.setDSACK(seg.Seq, end, true)
			}
			c.ackNow = true
		}
	}

	// 8. FIN
	if flags&flagFIN != 0 {
		finSeq := seg.Seq + uint32(len(seg.Payload))
		switch {
		case seqLT(finSeq, c.rcvNxt) || (c.rcvFin && finSeq+1 == c.rcvNxt):
			// Old FIN (retransmission): ACK it.
			c.ackNow = true
			if c.state == TimeWait {
				c.twAt = now.Add(c.cfg.TimeWaitLen)
			}
		case finSeq == c.rcvNxt:
			c.processFIN(now)
		case seqLT(finSeq, c.rcvAdv) || finSeq == c.rcvAdv:
			c.oooFin = true
			c.oooFinSeq = finSeq
		}
	}
}

// updateTSRecent updates TS.Recent (RFC 7323 4.3) from a segment covering
// Last.ACK.sent. Like Linux (tcp_ack with FLAG_UPDATE_TS_RECENT) it is done
// only once the segment's ACK was found acceptable: a segment acknowledging
// unsent data, or far too old, is dropped without touching TS.Recent.
func (c *Conn) updateTSRecent(seg *Segment, now time.Time) {
	if c.tsOK && seg.Options.HasTS && seqLEQ(seg.Seq, c.rcvWup) &&
		(!c.tsRecentOK || seqGEQ(seg.Options.TSVal, c.tsRecent)) {
		c.tsRecent = seg.Options.TSVal
		c.tsRecentAt = now
		c.tsRecentOK = true
	}
}

// inputSynSent handles a segment in SYN-SENT (RFC 9293 3.10.7.3).
func (c *Conn) inputSynSent(seg *Segment, now time.Time) {
	flags := seg.Flags
	if flags&flagACK != 0 {
		if seqLEQ(seg.Ack, c.iss) || seqGT(seg.Ack, c.sndNxt) {
			if flags&flagRST == 0 {
				c.queueRST(seg.Ack, 0, flagRST)
			}
			return
		}
	}
	if flags&flagRST != 0 {
		if flags&flagACK != 0 {
			c.setClosed(syscall.ECONNREFUSED)
		}
		return
	}
	if flags&flagSYN == 0 {
		return
	}
	c.acceptSYN(seg, now)
	if flags&flagACK != 0 {
		// Our SYN is acknowledged. ECN holds if the SYN-ACK has ECE
		// without CWR (RFC 3168 6.1.1).
		c.ecnOK = c.ecnOK && flags&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE
		if o := &seg.Options; o.HasFastOpen && o.CookieLen > 0 && o.CookieLen <= 16 {
			c.tfo.peerSeen = true
			c.tfo.peerN = copy(c.tfo.peer[:], o.Cookie[:o.CookieLen])
			c.tfo.peerExp = o.FastOpenExp
		}
		if n := c.tfo.synDataN; n > 0 {
			if seqGEQ(seg.Ack, c.iss+1+uint32(n)) {
				// The server took our SYN data.
				c.tfo.synDataAcked = true
				c.sbufOff += n
				c.sbufSeq += uint32(n)
				if c.sbufOff == len(c.sbuf) {
					c.sbuf, c.sbufOff = c.sbuf[:0], 0
				}
				c.bytesAcked += uint64(n)
				c.count(func(k *Counters) { k.TCPFastOpenActive++ })
			} else {
				// Only the SYN was acknowledged: the data goes again as
				// ordinary data right after the handshake (Linux).
				c.sndNxt = seg.Ack
				c.count(func(k *Counters) { k.TCPFastOpenActiveFail++ })
			}
		}
		if c.tsOK && seg.Options.HasTS && seg.Options.TSEcr != 0 {
			c.tsRTTSample(seg.Options.TSEcr, now)
		} else if c.synRetrans == 0 {
			c.rttSample(now.Sub(c.synSentAt), now)
		}
		c.sndUna = seg.Ack
		c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
		c.establish(now)
		c.ackNow = true
		// Data on the SYN-ACK (Fast Open server): deliver it.
		if len(seg.Payload) > 0 {
			d := *seg
			d.Seq++
			d.Flags &^= flagSYN
			c.receiveData(&d, now)
		}
		if flags&flagFIN != 0 && seg.Seq+1+uint32(len(seg.Payload)) == c.rcvNxt {
			c.processFIN(now)
		}
		return
	}
	// Simultaneous open: SYN without ACK.
	c.ecnOK = false
	c.setState(SynReceived)
	c.sendSyn = true
	c.rtoAt = now.Add(c.synRTO())
}

// resetByPeer handles an acceptable RST.
func (c *Conn) resetByPeer() {
	switch c.state {
	case SynReceived:
		if c.passive {
			c.setClosed(syscall.ECONNREFUSED)
		} else {
			c.setClosed(syscall.ECONNREFUSED)
		}
	case Established, CloseWait:
		c.count(func(k *Counters) { k.EstabResets++ })
		c.setClosed(syscall.ECONNRESET)
	case FinWait1, FinWait2:
		c.setClosed(syscall.ECONNRESET)
	case TimeWait:
		if c.cfg.RFC1337 {
			return
		}
		c.setClosed(nil)
	default: // Closing, LastAck
		c.setClosed(nil)
	}
}

// oowRateLimited implements tcp_invalid_ratelimit for replies to
// out-of-window segments and challenge ACKs. skipped is counted when the
// reply is suppressed.
func (c *Conn) oowRateLimited(now time.Time, skipped func(*Counters)) bool {
	if !c.lastOOWAck.IsZero() && now.Sub(c.lastOOWAck) < c.cfg.InvalidRatelimit {
		if skipped != nil {
			c.count(skipped)
		}
		return true
	}
	c.lastOOWAck = now
	return false
}

// dupAck answers an unacceptable segment with an ACK. Like Linux, replies to
// segments without data (and SYNs) are rate limited to break ACK loops.
func (c *Conn) dupAck(seg *Segment, now time.Time) {
	if len(seg.Payload) == 0 || seg.Flags&flagSYN != 0 {
		if c.oowRateLimited(now, func(k *Counters) { k.TCPACKSkippedSeq++ }) {
			return
		}
	} else {
		c.count(func(k *Counters) { k.DelayedACKLost++ })
	}
	c.ackNow = true
}

// challengeACK sends a RFC 5961 challenge ACK, rate limited per connection
// (tcp_invalid_ratelimit) and by the stack's global limiter.
func (c *Conn) challengeACK(now time.Time, syn bool) {
	if c.oowRateLimited(now, func(k *Counters) { k.TCPACKSkippedChallenge++ }) {
		return
	}
	if c.challengeAllow != nil && !c.challengeAllow(now) {
		c.count(func(k *Counters) { k.TCPChallengeACKGlobalRL++ })
		return
	}
	c.count(func(k *Counters) {
		k.TCPChallengeACK++
		if syn {
			k.TCPSYNChallenge++
		}
	})
	c.ackNow = true
}

func (c *Conn) tsRTTSample(ecr uint32, now time.Time) {
	d := int32(c.tsVal(now) - ecr)
	if d < 0 {
		return
	}
	c.rttSample(time.Duration(d)*time.Millisecond, now)
}

func (c *Conn) rttSample(r time.Duration, now time.Time) {
	if r < time.Microsecond {
		r = time.Microsecond
	}
	c.rtt.Sample(r)
	c.rtt.ResetBackoff()
	c.lastRTT = r
	wlen := c.cfg.MinRTTWlen
	if c.minRTT == 0 || r <= c.minRTT || (wlen > 0 && now.Sub(c.minRTTAt) > wlen) {
		c.minRTT = r
		c.minRTTAt = now
	}
}

// processFIN handles the peer's FIN once everything before it arrived.
func (c *Conn) processFIN(now time.Time) {
	c.rcvNxt++
	c.rcvFin = true
	c.oooFin = false
	// Nothing can follow the FIN: drop out-of-order data beyond it (Linux
	// purges the out-of-order queue in tcp_fin).
	c.ooo = nil
	c.oooBytes = 0
	c.nSack = 0
	c.ackNow = true
	switch c.state {
	case SynReceived, Established:
		c.setState(CloseWait)
	case FinWait1:
		if c.finAcked {
			c.enterTimeWait(now)
		} else {
			c.setState(Closing)
		}
	case FinWait2:
		c.enterTimeWait(now)
	case TimeWait:
		c.twAt = now.Add(c.cfg.TimeWaitLen)
	}
}

// curRcvWnd is the window we promised and still honour: from RCV.NXT to the
// right edge we advertised.
func (c *Conn) curRcvWnd() uint32 {
	if seqLEQ(c.rcvAdv, c.rcvNxt) {
		return 0
	}
	return c.rcvAdv - c.rcvNxt
}

// rcvFree is the receive buffer space not used by queued data.
func (c *Conn) rcvFree() int {
	return max(0, c.rcvBufCap-len(c.rbuf)-c.oooBytes)
}

// selectWindow computes the window to advertise (bytes, multiple of the
// scale unit): never shrinking the right edge, and with receiver-side SWS
// avoidance (RFC 1122 4.2.3.3) the edge only moves by at least
// min(buffer/2, MSS).
func (c *Conn) selectWindow(commit bool) uint32 {
	cur := c.curRcvWnd()
	free := uint32(c.rcvFree())
	w := free
	if w <= cur {
		w = cur
	} else if w-cur < uint32(min(c.rcvBufCap/2, c.advMSS)) {
		w = cur
	}
	maxW := uint32(65535) << c.rcvWScale
	if w > maxW {
		w = maxW
	}
	unit := uint32(1) << c.rcvWScale
	if w == cur {
		w = (w + unit - 1) &^ (unit - 1) // round up: never shrink
		if w > maxW {
			w = maxW
		}
	} else {
		w &^= unit - 1
		if w < cur {
			w = (cur + unit - 1) &^ (unit - 1)
		}
	}
	if commit {
		c.rcvAdv = c.rcvNxt + w
	}
	return w
}
