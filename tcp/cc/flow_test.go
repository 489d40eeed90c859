package cc

import (
	"testing"
	"time"
)

// flow is a scripted, ACK-clocked sender on a virtual clock: every packet is
// acked exactly one path RTT after it was sent, in order, one ACK per
// packet, and the sender refills the window after each ACK.
type flow struct {
	t         *testing.T
	c         Controller
	now       time.Time
	rtt       func(sent time.Time) time.Duration
	q         []pkt
	delivered int64
	minRTT    time.Duration
	inRec     bool
	appLimit  int // 0 = always cwnd-limited; else max packets in flight
	onAck     func(rs *RateSample)
}

type pkt struct {
	sent, ackAt time.Time
	prior       int64
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFlow(t *testing.T, c Controller, rtt time.Duration) *flow {
	f := &flow{t: t, c: c, now: t0}
	f.rtt = func(time.Time) time.Duration { return rtt }
	c.Init(1000, f.now)
	return f
}

func (f *flow) send(at time.Time) {
	ack := at.Add(f.rtt(at))
	if n := len(f.q); n > 0 && ack.Before(f.q[n-1].ackAt) {
		ack = f.q[n-1].ackAt
	}
	f.q = append(f.q, pkt{sent: at, ackAt: ack, prior: f.delivered})
}

func (f *flow) fill() {
	limit := f.c.Cwnd()
	if f.appLimit > 0 {
		limit = min(limit, f.appLimit)
	}
	for len(f.q) < limit {
		f.send(f.now)
	}
}

// ackOne delivers the oldest packet.
func (f *flow) ackOne() {
	p := f.q[0]
	f.q = f.q[1:]
	f.now = p.ackAt
	rtt := p.ackAt.Sub(p.sent)
	if f.minRTT == 0 || rtt < f.minRTT {
		f.minRTT = rtt
	}
	prior := len(f.q) + 1
	f.delivered++
	rs := RateSample{
		Delivered:      f.delivered - p.prior,
		Interval:       rtt,
		PriorDelivered: p.prior,
		TotalDelivered: f.delivered,
		RTT:            rtt,
		MinRTT:         f.minRTT,
		AckedSacked:    1,
		PriorInFlight:  prior,
		InFlight:       len(f.q),
		InRecovery:     f.inRec,
		TxInFlight:     prior,
	}
	f.c.OnAck(f.now, &rs)
	if f.onAck != nil {
		f.onAck(&rs)
	}
	f.fill()
}

// runUntil processes every ACK due at or before t and leaves the clock at t.
func (f *flow) runUntil(t time.Time) {
	f.fill()
	for len(f.q) > 0 && !f.q[0].ackAt.After(t) {
		f.ackOne()
	}
	f.now = t
}

// restart forgets what is in flight and puts a full window in flight sent
// evenly over the last RTT, so ACKs arrive spread over the next RTT.
func (f *flow) restart(rtt time.Duration) {
	f.q = f.q[:0]
	n := f.c.Cwnd()
	for i := range n {
		sent := f.now.Add(-rtt + time.Duration(i+1)*rtt/time.Duration(n))
		f.q = append(f.q, pkt{sent: sent, ackAt: sent.Add(rtt), prior: f.delivered})
	}
}

func (f *flow) inFlight() int { return len(f.q) }
