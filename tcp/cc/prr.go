package cc

// PRR is Proportional Rate Reduction (RFC 9937, which obsoletes RFC 6937)
// for the engine to use during fast recovery. Controllers set cwnd =
// ssthresh on OnCongestionEvent; an engine that wants Linux-like recovery
// instead limits what it sends with PRR: it calls Start on entering
// recovery, OnAck on every ACK in recovery (the returned count is how many
// packets it may send now; Linux sets cwnd to pipe+sndcnt), and OnSend for
// every packet it (re)transmits. Counts are in packets. Below ssthresh the
// reduction bound is the conservative one (PRR-CRB), with the slow-start
// bound's extra packet (PRR-SSRB) only on ACKs that show good progress
// (RFC 9937 safeACK: SND.UNA advanced and no new loss), as in RFC 9937
// and Linux.
type PRR struct {
	Ssthresh  int // target window (controller's Ssthresh after the event)
	RecoverFS int // packets the recovery is expected to deliver (see Start)
	Delivered int // prr_delivered: packets delivered since recovery start
	Out       int // prr_out: packets sent since recovery start
}

// Start begins a recovery episode. recoverFS is RFC 9937's RecoverFS:
// the packets outstanding before the ACK that starts recovery (snd.nxt -
// snd.una), less those already SACKed, which recovery will never count
// as delivered. With the RFC 6937 RecoverFS (all outstanding packets) the
// proportional part sent too little when SACKs had revealed the loss:
// with 8 out and 3 SACKed, 8/3 of the packets delivered per packet sent
// instead of 5/3.
func (p *PRR) Start(ssthresh, recoverFS int) {
	*p = PRR{Ssthresh: ssthresh, RecoverFS: max(recoverFS, 1)}
}

// OnAck accounts delivered packets newly acked or SACKed by this ACK, with
// pipe the packets in flight after it (RFC 6675 pipe) and safe the RFC
// 9937 safeACK (the ACK advanced SND.UNA and marked no new loss), and
// returns sndcnt, the packets that may be sent in response.
func (p *PRR) OnAck(delivered, pipe int, safe bool) int {
	p.Delivered += delivered
	var snd int
	if pipe > p.Ssthresh {
		// Proportional part: ceil(prr_delivered*ssthresh/RecoverFS) - prr_out.
		snd = (p.Delivered*p.Ssthresh+p.RecoverFS-1)/p.RecoverFS - p.Out
	} else {
		// PRR-CRB, plus one packet (PRR-SSRB) on a safe ACK.
		limit := max(p.Delivered-p.Out, delivered)
		if safe {
			limit++
		}
		snd = min(p.Ssthresh-pipe, limit)
	}
	return max(snd, 0)
}

// OnSend accounts n packets sent (new data or retransmissions).
func (p *PRR) OnSend(n int) { p.Out += n }
