package cc

// PRR is Proportional Rate Reduction (RFC 6937) for the engine to use during
// fast recovery. Controllers set cwnd = ssthresh on OnCongestionEvent; an
// engine that wants Linux-like recovery instead limits what it sends with
// PRR: it calls Start on entering recovery, OnAck on every ACK in recovery
// (the returned count is how many packets it may send now; Linux sets cwnd
// to pipe+sndcnt), and OnSend for every packet it (re)transmits. Counts are
// in packets. The reduction bound is slow-start reduction bound (PRR-SSRB),
// as in RFC 6937 and Linux.
type PRR struct {
	Ssthresh  int // target window (controller's Ssthresh after the event)
	RecoverFS int // packets in flight (snd.nxt - snd.una) at recovery start
	Delivered int // prr_delivered: packets delivered since recovery start
	Out       int // prr_out: packets sent since recovery start
}

// Start begins a recovery episode.
func (p *PRR) Start(ssthresh, recoverFS int) {
	*p = PRR{Ssthresh: ssthresh, RecoverFS: max(recoverFS, 1)}
}

// OnAck accounts delivered packets newly acked or SACKed by this ACK, with
// pipe the packets in flight after it (RFC 6675 pipe), and returns sndcnt,
// the packets that may be sent in response.
func (p *PRR) OnAck(delivered, pipe int) int {
	p.Delivered += delivered
	var snd int
	if pipe > p.Ssthresh {
		// Proportional part: ceil(prr_delivered*ssthresh/RecoverFS) - prr_out.
		snd = (p.Delivered*p.Ssthresh+p.RecoverFS-1)/p.RecoverFS - p.Out
	} else {
		limit := max(p.Delivered-p.Out, delivered) + 1
		snd = min(p.Ssthresh-pipe, limit)
	}
	return max(snd, 0)
}

// OnSend accounts n packets sent (new data or retransmissions).
func (p *PRR) OnSend(n int) { p.Out += n }
