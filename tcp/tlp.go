package tcp

import "time"

// Tail loss probe (RFC 8985 section 7, Linux tcp_schedule_loss_probe /
// tcp_send_loss_probe). When the connection is in the Open state with data
// in flight, a probe timeout (PTO) of 2*SRTT (+200 ms with a single packet
// in flight, for the peer's delayed ACK; +2 ms otherwise), never later than
// the RTO, fires before the RTO: it sends one new segment if possible,
// otherwise retransmits the last one, so a tail loss is repaired by fast
// recovery instead of a timeout. At most one probe is outstanding.

// tlpState reports whether loss probes run in state s: every state that
// sends data or a FIN (Linux schedules probes in FIN-WAIT-1, CLOSING and
// LAST-ACK too, so a lost FIN is probed before the RTO).
func tlpState(s State) bool {
	switch s {
	case Established, CloseWait, FinWait1, Closing, LastAck:
		return true
	}
	return false
}

func (c *Conn) tlpEnabled() bool {
	return (c.cfg.EarlyRetrans == 3 || c.cfg.EarlyRetrans == 4) && c.sackOK
}

// scheduleTLP arms the probe timer when a probe is allowed.
func (c *Conn) scheduleTLP(now time.Time) {
	c.tlpAt = time.Time{}
	if !c.tlpEnabled() || c.tlpOut || c.packetsOut == 0 || c.caState != CAOpen && c.caState != CADisorder {
		return
	}
	if !tlpState(c.state) {
		return
	}
	if c.caState == CADisorder {
		return
	}
	var pto time.Duration
	if c.rtt.HasSample() {
		pto = 2 * c.rtt.SRTT()
		if c.packetsOut == 1 {
			pto += c.cfg.RTOMin
		} else {
			pto += 2 * time.Millisecond
		}
	} else {
		pto = c.cfg.RTOInitial
	}
	at := now.Add(pto)
	if !c.rtoAt.IsZero() && c.rtoAt.Before(at) {
		at = c.rtoAt
	}
	c.tlpAt = at
}

// onTLP sends the loss probe.
func (c *Conn) onTLP(now time.Time) {
	if !c.tlpEnabled() || c.tlpOut || c.packetsOut == 0 || c.caState != CAOpen {
		return
	}
	if !tlpState(c.state) {
		return
	}
	avail := seqLT(c.sndNxt, c.dataEnd())
	if avail && seqLEQ(c.sndNxt+uint32(min(c.sndMSS, int(c.dataEnd()-c.sndNxt))), c.sndUna+c.sndWnd) {
		c.tlpNew = true
	} else {
		q := c.rtxQ()
		last := &q[len(q)-1]
		if last.sacked {
			return
		}
		c.tlpRetrans = true
	}
	c.tlpOut = true
	c.count(func(k *Counters) { k.TCPLossProbes++ })
	c.rtoAt = now.Add(c.rtoWithUserTimeout(now))
}

// tlpAcked processes an ACK while a probe is outstanding (Linux
// tcp_process_tlp_ack): a probe of new data, or a retransmitted probe that
// a D-SACK or a pure duplicate ACK shows to be a duplicate, needed no
// repair; an ACK beyond the probe without such evidence means the probe
// repaired a real loss, which calls for a window reduction.
func (c *Conn) tlpAcked(ack uint32, dsack, advanced, newSACK bool, now time.Time) {
	if !c.tlpOut || seqLT(ack, c.tlpHigh) {
		return
	}
	switch {
	case !c.tlpWasRetrans, dsack:
		c.tlpOut = false
	case seqGT(ack, c.tlpHigh):
		c.tlpOut = false
		if c.caState == CAOpen || c.caState == CADisorder {
			c.count(func(k *Counters) { k.TCPLossProbeRecovery++ })
			c.cc.OnCongestionEvent(now, c.priorFlightSize)
			c.cc.OnRecoveryEnd(now)
		}
	case !advanced && !newSACK:
		c.tlpOut = false
	}
}
