package tcp

import "time"

// RACK loss detection (RFC 8985, Linux tcp_recovery bit 0x1): a segment is
// lost when a segment sent after it has been delivered (acked or SACKed)
// and more than the RTT of that delivery plus a reordering window has
// passed since it was sent. Unlike the duplicate-ACK threshold, this also
// detects lost retransmissions. The reordering window is a quarter of the
// minimum RTT, or zero once the duplicate threshold is reached or during
// recovery (Linux, as long as no reordering was seen).

func (c *Conn) rackEnabled() bool { return c.cfg.Recovery&1 != 0 && c.sackOK }

// rackUpdate records the delivery of segment s (most recently sent wins;
// transmissions are ordered by a counter, as several share one instant).
func (c *Conn) rackUpdate(s *txSeg, now time.Time) {
	rtt := now.Sub(s.sentAt)
	if s.retrans && c.minRTT > 0 && rtt < c.minRTT {
		// Ambiguous: probably the ACK of the original transmission.
		return
	}
	if s.xmitN > c.rackXmitN {
		c.rackXmitN = s.xmitN
		c.rackXmit = s.sentAt
		c.rackEnd = s.end
		c.rackRTT = rtt
	}
}

func (c *Conn) rackReoWnd() time.Duration {
	if c.caState == CARecovery || c.caState == CALoss || c.sackedOut >= c.reordering {
		return 0
	}
	w := c.minRTT / 4
	if srtt := c.rtt.SRTT(); w > srtt {
		w = srtt
	}
	return w
}

// rackDetect marks lost segments and arms the reordering timer for the
// earliest segment not yet overdue. It returns the number newly marked.
func (c *Conn) rackDetect(now time.Time) int {
	c.reoAt = time.Time{}
	if !c.rackEnabled() || c.rackXmit.IsZero() {
		return 0
	}
	reo := c.rackReoWnd()
	n := 0
	q := c.rtxQ()
	for i := range q {
		s := &q[i]
		if s.sacked || (s.lost && !s.rtxOut) {
			continue
		}
		if s.xmitN >= c.rackXmitN {
			continue // sent after the most recently delivered segment
		}
		due := s.sentAt.Add(c.rackRTT + reo)
		if due.After(now) {
			if c.reoAt.IsZero() || due.Before(c.reoAt) {
				c.reoAt = due
			}
			continue
		}
		if s.rtxOut {
			// The retransmission was lost too.
			s.rtxOut = false
			c.retransOut--
			c.count(func(k *Counters) { k.TCPLostRetransmit++ })
		} else {
			s.lost = true
			c.lostOut++
		}
		c.noteLost(s)
		n++
	}
	return n
}

// onReorderTimer re-runs RACK when the reordering window of a segment ran
// out without further ACKs.
func (c *Conn) onReorderTimer(now time.Time) {
	switch c.state {
	case Established, FinWait1, CloseWait, Closing, LastAck:
	default:
		return
	}
	if c.packetsOut == 0 {
		return
	}
	wasRecovery := c.caState == CARecovery
	c.ackedThisAck = 0
	c.priorFlightSize = c.packetsOut // no ACK: FlightSize is what is out now
	c.updateRecovery(false, c.inFlight(), now)
	if c.caState == CARecovery {
		if !wasRecovery {
			// Linux tcp_rack_reo_timeout: entering recovery here runs one
			// PRR step as if one packet had been delivered.
			c.recoveryCwnd = c.inFlight() + c.prr.OnAck(1, c.inFlight(), false)
		}
		c.recoveryCwnd = max(c.recoveryCwnd, c.inFlight()+1)
		if c.cfg.SACKRecoveryInflate {
			c.recoveryCwnd = max(c.recoveryCwnd, c.cc.Ssthresh()+c.cfg.Reordering)
		}
	}
}
