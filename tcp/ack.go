package tcp

import (
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
	"time"
)

// rtxQ returns the retransmission queue (oldest first).
func (c *Conn) rtxQ() []txSeg { return c.rtx[c.rtxHead:] }

func (c *Conn) pushRtx(s txSeg) {
	if len(c.rtx) == cap(c.rtx) && c.rtxHead > 0 {
		n := copy(c.rtx, c.rtx[c.rtxHead:])
		c.rtx = c.rtx[:n]
		c.rtxHead = 0
	}
	c.rtx = append(c.rtx, s)
}

// inFlight is the RFC 6675 pipe in packets (Linux tcp_packets_in_flight).
func (c *Conn) inFlight() int {
	n := c.packetsOut - c.sackedOut - c.lostOut + c.retransOut
	if !c.sackOK && c.caState == CARecovery {
		// NewReno: each duplicate ACK means a segment left the network.
		n -= min(c.dupacks, max(c.packetsOut-1, 0))
	}
	return max(n, 0)
}

// processAck handles the ACK field of an acceptable segment in a
// synchronized state (RFC 9293 3.10.7.4 fifth check).
func (c *Conn) processAck(seg *Segment, now time.Time) {
	c.ackScratch = getAckScratch()
	defer c.releaseAckScratch()
	ack := seg.Ack
	prevUna := c.sndUna
	priorInFlight := c.inFlight()
	c.priorFlightSize = c.packetsOut
	priorDupacks := c.dupacks
	c.lastAckRecv = now
	c.probesOut = 0

	// Window update (RFC 9293: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
	// SND.WL2 =< SEG.ACK)), and, like Linux tcp_may_update_window, from
	// any ACK that advances SND.UNA: the window is relative to the ACK,
	// so keeping an older window while SND.UNA moves (a retransmission
	// of the peer's old data carrying a newer ACK) would move our idea
	// of the peer's right edge past the one it advertised.
	nw := uint32(seg.Window) << c.sndWScale
	wndChanged := false
	if seqGT(ack, prevUna) || seqLT(c.sndWl1, seg.Seq) || (c.sndWl1 == seg.Seq && seqLEQ(c.sndWl2, ack)) {
		wndChanged = nw != c.sndWnd
		c.sndWnd = nw
		c.sndWl1, c.sndWl2 = seg.Seq, ack
		if nw > c.maxSndWnd {
			c.maxSndWnd = nw
		}
	}

	c.rs = cc.RateSample{}
	c.ackedThisAck = 0
	c.rsValid = false
	losses := 0
	deliveredBefore := c.delivered

	// SACK scoreboard.
	c.gotDSACK = false
	newSACK := false
	if c.sackOK && seg.Options.NumSACK > 0 {
		newSACK = c.processSACK(seg, prevUna, now)
	}

	advanced := seqGT(ack, prevUna)
	rttSampled := false
	if advanced {
		rttSampled = c.cleanRtx(ack, now, seg)
		c.sndUna = ack
		c.retransmits = 0
		c.rtxStamp = time.Time{}
		if c.caState != CARecovery {
			c.dupacks = 0
		}
		if !rttSampled && c.tsOK && seg.Options.HasTS && seg.Options.TSEcr != 0 && !c.ackedRetrans {
			c.tsRTTSample(seg.Options.TSEcr, now)
			rttSampled = true
		} else if !rttSampled && c.tsOK && seg.Options.HasTS && seg.Options.TSEcr != 0 {
			c.tsRTTSample(seg.Options.TSEcr, now)
			rttSampled = true
		}
		c.persistAt = time.Time{}
		if c.packetsOut > 0 {
			c.rtoAt = now.Add(c.rtt.RTO())
			if c.rtxQ()[0].sacked {
				// The new SND.UNA segment was SACKed: the peer
				// reneged. Do not wait a whole RTO for onRTO to
				// repair it (Linux tcp_check_sack_reneging).
				c.rtoAt = now.Add(max(c.rtt.SRTT()/16, 10*time.Millisecond))
			}
		} else {
			c.rtoAt = time.Time{}
		}
		if c.finSent && !c.finAcked && seqGEQ(ack, c.finSeq+1) {
			c.finAcked = true
		}
		c.autotuneSndBuf()
	} else if c.packetsOut > 0 && len(seg.Payload) == 0 && seg.Flags&(flagSYN|flagFIN) == 0 &&
		ack == prevUna && (!wndChanged || newSACK) {
		c.dupacks++
	}

	// Zero-window probing: window opened → stop the persist timer.
	if advanced {
		c.probeStart = time.Time{}
	}
	if !c.persistAt.IsZero() && c.sndWnd > 0 && seqLT(c.sndNxt, c.sndUna+c.sndWnd) {
		c.persistAt = time.Time{}
		c.probeStart = time.Time{}
		c.rtt.ResetBackoff()
	} else if !c.persistAt.IsZero() && !advanced {
		// Still closed: re-arm from now with the current backoff.
		when := c.probeTimeout()
		if c.userTimeout > 0 && !c.probeStart.IsZero() {
			when = max(min(when, c.userTimeout-now.Sub(c.probeStart)), time.Millisecond)
		}
		c.persistAt = now.Add(when)
	}

	// Spurious retransmissions: Eifel (RFC 3522) for RTOs, D-SACK for all.
	if advanced && c.caState == CALoss && c.undoMarker && c.undoEifel && c.tsOK && seg.Options.HasTS &&
		seg.Options.TSEcr != 0 && seqLT(seg.Options.TSEcr, c.undoTSVal) {
		c.count(func(k *Counters) { k.TCPSpuriousRTOs++ })
		c.undo()
	} else if c.gotDSACK && c.undoMarker && c.undoRetrans <= 0 {
		c.count(func(k *Counters) { k.TCPDSACKUndo++ })
		c.undo()
	}

	// ECN echo (RFC 3168 6.1.2): reduce once per window of data, outside
	// loss recovery, and tell the receiver with CWR (Linux tcp_enter_cwr).
	if c.ecnOK && seg.Flags&wire.TCPFlagECE != 0 && (c.caState == CAOpen || c.caState == CADisorder) &&
		!seqLT(prevUna, c.ecnHigh) && c.packetsOut+c.ackedThisAck > 0 {
		c.cc.OnECE(now)
		c.ecnCWR = true
		c.ecnHigh = c.sndNxt
		c.count(func(k *Counters) { k.TCPECNReductions++ })
	}

	// Loss detection and recovery state machine.
	c.tlpAcked(ack, c.gotDSACK, advanced, newSACK, now)
	losses += c.updateRecovery(advanced, priorInFlight, now)
	if c.caState != CAOpen {
		c.tlpAt = time.Time{}
	} else if advanced || c.tlpAt.IsZero() {
		c.scheduleTLP(now)
	}

	// Proportional rate reduction (RFC 9937) while in fast recovery.
	if c.caState == CARecovery {
		sndcnt := c.prr.OnAck(c.prrDelivered(advanced, priorDupacks, deliveredBefore), c.inFlight(), advanced && losses == 0)
		c.recoveryCwnd = c.inFlight() + sndcnt
		if c.cfg.SACKRecoveryInflate && c.sackOK {
			c.recoveryCwnd = c.cc.Ssthresh() + c.cfg.Reordering
		}
	}

	// Congestion control.
	if c.delivered > deliveredBefore {
		c.rs.Delivered = 0
		c.rs.AckedSacked = int(c.delivered - deliveredBefore)
		c.rs.TotalDelivered = c.delivered
		c.rs.Losses = losses
		c.rs.PriorInFlight = priorInFlight
		c.rs.InFlight = c.inFlight()
		c.rs.MinRTT = c.minRTT
		c.rs.SRTT = c.rtt.SRTT()
		// No growth during fast recovery, nor during an ECN reduction
		// (Linux CWR state: until SND.UNA passes what was sent at the ECE).
		c.rs.InRecovery = c.caState == CARecovery || (c.ecnOK && seqLT(c.sndUna, c.ecnHigh))
		c.rs.CwndLimited, c.rs.CwndLimitedValid = c.cwndLimitedNow(), true
		if rttSampled {
			c.rs.RTT = c.lastRTT
		}
		if c.rsValid {
			c.rs.Delivered = c.delivered - c.rs.PriorDelivered
			c.rs.Interval = max(c.rsSendElapsed, c.rsAckElapsed)
			c.rs.IsAppLimited = c.rsAppLimited
			c.rs.TxInFlight = c.rsTxInFlight
			c.rs.LostSinceTx = c.lostTotal - c.rsLostSnap
			if c.rs.Interval > 0 && c.rs.Interval >= c.minRTT {
				rate := c.rs.Delivered * int64(c.sndMSS) * int64(time.Second) / int64(c.rs.Interval)
				if !c.rs.IsAppLimited || rate > c.deliveryRate {
					c.deliveryRate = rate
				}
			}
		}
		if c.appLimited != 0 && c.delivered > c.appLimited {
			c.appLimited = 0
		}
		c.cc.OnAck(now, &c.rs)
		c.count(func(k *Counters) { k.TCPDelivered += uint64(c.delivered - deliveredBefore) })
	}

	// State transitions driven by the ACK of our FIN.
	if c.finAcked {
		switch c.state {
		case FinWait1:
			c.setState(FinWait2)
			c.rtoAt = time.Time{}
			if c.orphan {
				c.fw2At = now.Add(c.cfg.FinTimeout)
			}
		case Closing:
			c.enterTimeWait(now)
		case LastAck:
			c.setClosed(nil)
		}
	}
}

// prrDelivered is PRR's DeliveredData for the current ACK in fast
// recovery. With SACK it is what the ACK newly acked or SACKed. Without
// SACK a duplicate ACK is taken to have delivered one packet (RFC 9937;
// Linux tcp_add_reno_sack), up to packets out - 1 as the pipe counts
// them, and a cumulative ACK delivers what it acks beyond the packets the
// duplicate ACKs already counted, at least the hole it filled (Linux
// tcp_remove_reno_sacks). Counting nothing for duplicate ACKs, as before,
// held NewReno recovery to its forced retransmission until the next
// partial ACK, one RTT later.
func (c *Conn) prrDelivered(advanced bool, priorDupacks int, deliveredBefore int64) int {
	d := int(c.delivered - deliveredBefore)
	if c.sackOK {
		return d
	}
	counted := min(priorDupacks, max(c.priorFlightSize-1, 0))
	switch {
	case advanced:
		return max(d-counted, 1)
	case c.dupacks > priorDupacks && c.dupacks <= max(c.packetsOut-1, 0):
		return 1
	}
	return 0
}

// cleanRtx removes fully acknowledged segments from the retransmission
// queue and updates the send buffer. It reports whether it took an RTT
// sample (Karn: only from never-retransmitted segments).
func (c *Conn) cleanRtx(ack uint32, now time.Time, seg *Segment) bool {
	c.ackedRetrans = false
	c.ackedThisAck = 0
	var first time.Time
	q := c.rtxQ()
	n := 0
	for n < len(q) {
		s := &q[n]
		if seqGT(s.end, ack) {
			if seqLT(s.seq, ack) {
				// Partially acknowledged: trim its head.
				s.seq = ack
			}
			break
		}
		c.packetsOut--
		c.ackedThisAck++
		if s.sacked {
			c.sackedOut--
		} else {
			c.deliverOne(s, now)
		}
		if s.lost {
			c.lostOut--
		}
		if s.rtxOut {
			c.retransOut--
		}
		if s.retrans {
			c.ackedRetrans = true
			if c.undoMarker {
				// Remember it: a later D-SACK below SND.UNA may report
				// this retransmission as a duplicate.
				if c.undoRanges == nil {
					c.undoRanges = new([8]wire.SACKBlock)
				}
				c.undoRanges[c.undoN%len(c.undoRanges)] = wire.SACKBlock{Left: s.seq, Right: s.end}
				c.undoN++
			}
		} else if first.IsZero() {
			first = s.sentAt
		}
		n++
	}
	for k := 0; k < n; k++ {
		q[k] = txSeg{}
	}
	c.rtxHead += n
	if c.rtxHead == len(c.rtx) {
		c.rtx = c.rtx[:0]
		c.rtxHead = 0
	}
	// Send buffer: drop acknowledged data bytes.
	dataAcked := 0
	if seqGT(ack, c.sbufSeq) {
		dataAcked = int(seqMin(ack, c.dataEnd()) - c.sbufSeq)
	}
	if dataAcked > 0 {
		c.sbufOff += dataAcked
		c.sbufSeq += uint32(dataAcked)
		if c.sbufOff == len(c.sbuf) {
			c.sbuf = c.sbuf[:0]
			c.sbufOff = 0
		}
	}
	c.bytesAcked += uint64(ack - c.sndUna)
	if !first.IsZero() && !c.ackedRetrans {
		c.rttSample(now.Sub(first), now)
		return true
	}
	return false
}

// deliverOne accounts one newly delivered (acked or SACKed) segment for the
// delivery-rate estimator (draft-cheng-iccrg-delivery-rate-estimation).
func (c *Conn) deliverOne(s *txSeg, now time.Time) {
	c.rackUpdate(s, now)
	c.delivered++
	c.deliveredTime = now
	if !c.rsValid || s.delivered > c.rs.PriorDelivered {
		c.rsValid = true
		c.rs.PriorDelivered = s.delivered
		c.rsPriorTime = s.deliveredTime
		c.rsSendElapsed = s.sentAt.Sub(s.firstTxTime)
		c.rsAckElapsed = now.Sub(s.deliveredTime)
		c.rsAppLimited = s.appLimited
		c.rsTxInFlight = s.txInFlight
		c.rsLostSnap = s.lostSnap
		c.firstTxTime = s.sentAt
	}
}

// processSACK marks SACKed segments. It reports whether new data was
// SACKed. The first block is a D-SACK (RFC 2883) when it lies below the
// cumulative ACK or inside the second block.
func (c *Conn) processSACK(seg *Segment, prevUna uint32, now time.Time) bool {
	o := &seg.Options
	newly := false
	for i := 0; i < o.NumSACK && i < len(o.SACK); i++ {
		b := o.SACK[i]
		if !seqLT(b.Left, b.Right) {
			c.count(func(k *Counters) { k.TCPSACKDiscard++ })
			continue
		}
		if i == 0 {
			dsack := seqLT(b.Left, seg.Ack)
			if !dsack && o.NumSACK > 1 {
				b2 := o.SACK[1]
				dsack = seqGEQ(b.Left, b2.Left) && seqLEQ(b.Right, b2.Right)
			}
			if dsack {
				c.gotDSACK = true
				if c.undoMarker && c.dsackCoversRetrans(b) {
					c.undoRetrans--
				}
				c.dsackDups++
				c.count(func(k *Counters) {
					k.TCPDSACKRecv++
					if !seqLT(b.Left, seg.Ack) {
						k.TCPDSACKOfoRecv++
					}
				})
				continue
			}
		}
		if seqLEQ(b.Right, seg.Ack) || seqGT(b.Right, c.sndNxt) || seqLT(b.Left, prevUna-c.maxSndWnd) {
			c.count(func(k *Counters) { k.TCPSACKDiscard++ })
			continue
		}
		q := c.rtxQ()
		for k := range q {
			s := &q[k]
			if seqGEQ(s.seq, b.Right) {
				break
			}
			if s.sacked || seqLT(s.seq, b.Left) || seqGT(s.end, b.Right) {
				continue
			}
			s.sacked = true
			c.sackedOut++
			if s.lost {
				s.lost = false
				c.lostOut--
			}
			if s.rtxOut {
				s.rtxOut = false
				c.retransOut--
			}
			c.deliverOne(s, now)
			newly = true
		}
	}
	return newly
}

// noteLost accounts a segment that loss detection (dupthresh, RACK) marked
// lost: the lost-packet count behind RateSample.LostSinceTx, and, when
// perPacketLoss is on, the per-packet step of controllers that want it
// (cc.PacketLossObserver, BBR).
func (c *Conn) noteLost(s *txSeg) {
	c.lostTotal++
	if !perPacketLoss {
		return
	}
	if o, ok := c.cc.(cc.PacketLossObserver); ok {
		o.OnPacketLost(c.now, cc.LostPacket{
			TxInFlight:   s.txInFlight,
			LostSinceTx:  c.lostTotal - s.lostSnap,
			IsAppLimited: s.appLimited,
		})
	}
}

// perPacketLoss turns on cc.PacketLossObserver calls (BBR's per-packet
// loss step). A variable so tests can compare both ways.
var perPacketLoss = true

// markLost marks q[k] lost.
func (c *Conn) markLost(s *txSeg) bool {
	if s.lost || s.sacked || s.rtxOut {
		return false
	}
	s.lost = true
	c.lostOut++
	c.noteLost(s)
	return true
}

// detectLosses applies the RFC 6675 IsLost rule with DupThresh =
// tcp_reordering: a segment is lost when at least that many SACKed
// segments lie above it.
func (c *Conn) detectLosses() int {
	if c.sackedOut == 0 {
		return 0
	}
	n := 0
	above := 0
	q := c.rtxQ()
	for k := len(q) - 1; k >= 0; k-- {
		s := &q[k]
		if s.sacked {
			above++
			continue
		}
		if above >= c.reordering && c.markLost(s) {
			n++
		}
	}
	return n
}

// updateRecovery runs the loss-recovery state machine after an ACK.
// It returns the number of segments newly marked lost.
func (c *Conn) updateRecovery(advanced bool, priorInFlight int, now time.Time) int {
	losses := 0
	if c.sackOK {
		losses = c.detectLosses()
		losses += c.rackDetect(now)
	}
	q := c.rtxQ()
	switch c.caState {
	case CAOpen, CADisorder:
		enter := false
		if c.sackOK && c.lostOut > 0 {
			enter = true
		} else if !c.sackOK && c.dupacks >= c.reordering && len(q) > 0 {
			if c.markLost(&q[0]) {
				losses++
			}
			enter = true
		}
		if enter {
			c.caState = CARecovery
			c.startUndo(now, false)
			c.recoverSeq = c.sndNxt
			c.forceRetrans = true
			c.cc.OnCongestionEvent(now, c.priorFlightSize)
			c.prr.Start(c.cc.Ssthresh(), c.priorFlightSize-c.sackedOut)
			c.count(func(k *Counters) {
				if c.sackOK {
					k.TCPSACKRecovery++
				} else {
					k.TCPRenoRecovery++
				}
			})
		} else if c.dupacks > 0 || c.sackedOut > 0 {
			c.caState = CADisorder
		} else {
			c.caState = CAOpen
		}
	case CARecovery:
		if seqGEQ(c.sndUna, c.recoverSeq) {
			c.caState = CAOpen
			c.dupacks = 0
			c.cc.OnRecoveryEnd(now)
			if c.sackedOut > 0 {
				c.caState = CADisorder
			}
		} else if advanced && len(q) > 0 {
			// Partial ACK (RFC 6582): the new head is lost too.
			if c.markLost(&q[0]) {
				losses++
			}
			if !c.sackOK {
				c.dupacks = 0
			}
		}
	case CALoss:
		if seqGEQ(c.sndUna, c.recoverSeq) {
			c.cc.OnRecoveryEnd(now)
			c.caState = CAOpen
			if c.sackedOut > 0 {
				c.caState = CADisorder
			}
		}
	}
	return losses
}

// autotuneSndBuf grows the send buffer with the congestion window like
// Linux tcp_sndbuf_expand (unless SO_SNDBUF locked it).
func (c *Conn) autotuneSndBuf() {
	if c.sndBufLocked {
		return
	}
	want := 2 * max(c.cc.Cwnd(), c.reordering+1) * c.sndMSS * 2
	if want > c.sndBufLimit && !c.underMemoryPressure() {
		c.sndBufLimit = min(want, max(c.cfg.WMem[2], c.cfg.WMem[1]))
	}
}

// sendCwnd is the window Output fills: PRR's pipe+sndcnt in fast recovery,
// the controller's cwnd otherwise.
func (c *Conn) sendCwnd() int {
	if c.caState == CARecovery && !c.ccOwnsRecovery {
		return c.recoveryCwnd
	}
	return c.cc.Cwnd()
}

// startUndo opens an undo episode when a loss episode starts: retransmissions
// are counted so that D-SACKs reporting all of them as duplicates prove the
// episode spurious.
func (c *Conn) startUndo(now time.Time, rto bool) {
	c.undoMarker = true
	c.undoRetrans = 0
	c.undoN = 0
	c.undoEifel = rto
	c.undoTSVal = c.tsVal(now)
}

// dsackCoversRetrans reports whether a D-SACK block reports a segment that
// was retransmitted in the current episode (or is below SND.UNA, where it
// can only be such a duplicate).
func (c *Conn) dsackCoversRetrans(b wire.SACKBlock) bool {
	if seqLEQ(b.Right, c.sndUna) {
		for i := 0; i < min(c.undoN, len(c.undoRanges)); i++ {
			r := c.undoRanges[i]
			if seqLEQ(r.Left, b.Left) && seqGEQ(r.Right, b.Right) {
				return true
			}
		}
		return false
	}
	q := c.rtxQ()
	for i := range q {
		if seqLEQ(q[i].seq, b.Left) && seqGEQ(q[i].end, b.Right) {
			return q[i].retrans
		}
	}
	return false
}

// undo reverts a loss episode found spurious: congestion state restored,
// segments no longer considered lost.
func (c *Conn) undo() {
	c.undoMarker = false
	c.cc.Undo()
	c.count(func(k *Counters) { k.TCPFullUndo++ })
	q := c.rtxQ()
	for i := range q {
		s := &q[i]
		if s.rtxOut {
			s.rtxOut = false
			c.retransOut--
		}
		if s.lost {
			s.lost = false
			c.lostOut--
		}
	}
	c.caState = CAOpen
	if c.sackedOut > 0 || c.dupacks > 0 {
		c.caState = CADisorder
	}
	c.rtt.ResetBackoff()
	c.retransmits = 0
}
