package tcp

import (
	"syscall"
	"time"
)

func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

// Deadline returns when Timeout must next be called; zero means no timer is
// pending. It includes the pacing release time.
func (c *Conn) Deadline() time.Time {
	var d time.Time
	for _, t := range [...]time.Time{c.reoAt, c.tlpAt, c.rtoAt, c.persistAt, c.delackAt, c.keepAt, c.twAt, c.fw2At, c.paceAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Timeout runs the timers that are due at now. Call it at or after
// Deadline (calling it early is harmless).
func (c *Conn) Timeout(now time.Time) {
	if c.tr != nil && !c.tr.inCall {
		c.timeoutTraced(now) // re-enters Timeout with tr.inCall set
		return
	}
	c.now = now
	if due(c.twAt, now) {
		c.setClosed(nil)
		return
	}
	if due(c.fw2At, now) {
		c.setClosed(nil)
		return
	}
	if due(c.reoAt, now) {
		c.reoAt = time.Time{}
		c.onReorderTimer(now)
	}
	if due(c.tlpAt, now) {
		c.tlpAt = time.Time{}
		c.onTLP(now)
	}
	if due(c.rtoAt, now) {
		c.rtoAt = time.Time{}
		c.tlpAt = time.Time{}
		c.onRTO(now)
		if c.state == Closed {
			return
		}
	}
	if due(c.persistAt, now) {
		c.persistAt = time.Time{}
		c.onPersist(now)
		if c.state == Closed {
			return
		}
	}
	if due(c.delackAt, now) {
		c.delackAt = time.Time{}
		if c.rcvNxt != c.rcvWup || c.ackNow {
			// No reply carried the ACK in time: leave interactive mode
			// (Linux tcp_delack_timer_handler).
			c.pingpong = false
			c.ackNow = true
			c.count(func(k *Counters) { k.DelayedACKs++ })
		}
	}
	if due(c.keepAt, now) {
		c.keepAt = time.Time{}
		c.onKeepalive(now)
		if c.state == Closed {
			return
		}
	}
	if due(c.paceAt, now) {
		c.paceAt = time.Time{}
	}
}

// synRTO is the timeout after the current number of SYN (or SYN-ACK)
// retransmissions: RTOInitial, doubling after tcp_syn_linear_timeouts.
func (c *Conn) synRTO() time.Duration {
	shift := c.synRetrans - c.cfg.SynLinearTimeouts
	if shift < 0 {
		shift = 0
	}
	return BackoffRTO(c.cfg.RTOInitial, shift, c.cfg.RTOMax)
}

// probeTimeout is the persist-timer interval: the RTO (at least RTOMin)
// doubled per backoff, capped at RTOMax.
func (c *Conn) probeTimeout() time.Duration {
	base := max(c.rtt.BaseRTO(), c.cfg.RTOMin)
	return BackoffRTO(base, c.rtt.Backoffs(), c.cfg.RTOMax)
}

// rtoWithUserTimeout is the RTO, clamped so the timer fires when
// TCP_USER_TIMEOUT runs out (Linux tcp_clamp_rto_to_user_timeout).
func (c *Conn) rtoWithUserTimeout(now time.Time) time.Duration {
	rto := c.rtt.RTO()
	if c.userTimeout > 0 && !c.rtxStamp.IsZero() {
		remaining := c.userTimeout - now.Sub(c.rtxStamp)
		if remaining <= 0 {
			remaining = time.Millisecond
		}
		rto = min(rto, remaining)
	}
	return rto
}

// onRTO handles the retransmission timer.
func (c *Conn) onRTO(now time.Time) {
	switch c.state {
	case SynSent, SynReceived:
		// Linux: SYN retransmissions are limited to tcp_syn_retries plus
		// tcp_syn_linear_timeouts, SYN-ACKs to tcp_synack_retries.
		limit := c.cfg.SynRetries + c.cfg.SynLinearTimeouts
		if c.passive {
			limit = c.cfg.SynackRetries
		}
		if c.synRetrans >= limit {
			c.setClosed(syscall.ETIMEDOUT)
			return
		}
		c.synRetrans++
		c.sendSyn = true
		c.totalRetrans++
		c.count(func(k *Counters) { k.TCPSynRetrans++; k.RetransSegs++; k.TCPTimeouts++ })
		c.rtoAt = now.Add(c.synRTO())
		return
	case Established, FinWait1, CloseWait, Closing, LastAck:
	default:
		return
	}
	q := c.rtxQ()
	if len(q) == 0 {
		return
	}
	boundary := c.cfg.Retries2
	if c.orphan {
		boundary = c.cfg.EffectiveOrphanRetries(c.rtt.RTO() < c.cfg.RTOMax)
	}
	if RetransmitsTimedOut(c.retransmits, c.rtxStamp, now, boundary, c.cfg.RTOMin, c.userTimeout) {
		c.count(func(k *Counters) { k.TCPAbortOnTimeout++ })
		c.setClosed(syscall.ETIMEDOUT)
		return
	}
	if c.rtxStamp.IsZero() {
		c.rtxStamp = q[0].sentAt
	}
	if c.caState != CALoss || c.retransmits == 0 {
		c.cc.OnRTO(now, c.packetsOut)
		c.startUndo(now, true)
	}
	// The segment at SND.UNA marked SACKed: the peer threw away data it
	// had SACKed (reneging, RFC 2018 8; Linux prunes its out-of-order
	// queue under memory pressure). Forget every SACK mark, as Linux's
	// tcp_timeout_mark_lost does, so that all of it is retransmitted;
	// skipping SACKed segments would stall until tcp_retries2.
	reneged := q[0].sacked
	if reneged {
		c.count(func(k *Counters) { k.TCPSACKReneging++ })
	}
	for k := range q {
		s := &q[k]
		if s.sacked {
			if !reneged {
				continue
			}
			s.sacked = false
			c.sackedOut--
		}
		if s.rtxOut {
			s.rtxOut = false
			c.retransOut--
		}
		if !s.lost {
			s.lost = true
			c.lostOut++
			c.lostTotal++
		}
	}
	c.caState = CALoss
	c.tlpOut = false
	c.reoAt = time.Time{}
	c.recoverSeq = c.sndNxt
	c.dupacks = 0
	c.retransmits++
	c.rtt.Backoff()
	c.forceRetrans = true
	c.count(func(k *Counters) { k.TCPTimeouts++ })
	c.rtoAt = now.Add(c.rtoWithUserTimeout(now))
}

// onPersist handles the zero-window probe timer.
func (c *Conn) onPersist(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	pending := seqLT(c.sndNxt, c.dataEnd()) || (c.finQueued && !c.finSent)
	if c.packetsOut > 0 || !pending {
		c.probesOut = 0
		return
	}
	limit := c.cfg.Retries2
	if c.orphan {
		limit = c.cfg.EffectiveOrphanRetries(c.rtt.RTO() < c.cfg.RTOMax)
	}
	// TCP_USER_TIMEOUT bounds the whole zero-window stall, answered or not
	// (Linux 5.11+); tcp_retries2 bounds the unanswered probes.
	expired := c.probesOut >= limit ||
		c.userTimeout > 0 && !c.probeStart.IsZero() && now.Sub(c.probeStart) >= c.userTimeout
	if expired {
		c.count(func(k *Counters) { k.TCPAbortOnTimeout++ })
		c.setClosed(syscall.ETIMEDOUT)
		return
	}
	if c.probeStart.IsZero() {
		c.probeStart = now
	}
	if seqLT(c.sndNxt, c.sndUna+c.sndWnd) {
		// Some window is open but too small for the segment: send what
		// fits (Linux tcp_write_wakeup).
		c.probeData = true
	} else {
		c.sendProbe = true
		c.count(func(k *Counters) { k.TCPWinProbe++ })
	}
	c.probesOut++
	c.rtt.Backoff()
	when := c.probeTimeout()
	if c.userTimeout > 0 {
		when = max(min(when, c.userTimeout-now.Sub(c.probeStart)), time.Millisecond)
	}
	c.persistAt = now.Add(when)
}

// armKeepalive starts the keepalive timer if it is on and not running.
func (c *Conn) armKeepalive(now time.Time) {
	if !c.keepOn || !c.keepAt.IsZero() || !synchronized(c.state) || c.state == TimeWait {
		return
	}
	base := c.lastRecv
	if base.IsZero() || base.Before(now.Add(-c.keepIdle)) {
		base = now
	}
	c.keepAt = base.Add(c.keepIdle)
}

// onKeepalive handles the keepalive timer (Linux tcp_keepalive_timer).
func (c *Conn) onKeepalive(now time.Time) {
	if !c.keepOn {
		return
	}
	switch c.state {
	case Established, CloseWait, FinWait1, FinWait2, Closing, LastAck:
	default:
		return
	}
	if c.packetsOut > 0 || seqLT(c.sndNxt, c.dataEnd()) {
		c.keepAt = now.Add(c.keepIdle)
		return
	}
	elapsed := now.Sub(c.lastRecv)
	if elapsed < c.keepIdle {
		c.keepAt = c.lastRecv.Add(c.keepIdle)
		return
	}
	if (c.userTimeout > 0 && elapsed >= c.userTimeout && c.probesOut > 0) ||
		(c.userTimeout == 0 && c.probesOut >= c.keepCnt) {
		c.queueActiveRST()
		c.count(func(k *Counters) { k.TCPAbortOnTimeout++ })
		c.setClosed(syscall.ETIMEDOUT)
		return
	}
	c.sendProbe = true
	c.probesOut++
	c.count(func(k *Counters) { k.TCPKeepAlive++ })
	c.keepAt = now.Add(c.keepIntvl)
}
