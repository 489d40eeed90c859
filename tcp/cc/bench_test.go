package cc

import (
	"testing"
	"time"
)

// ackLoop feeds a steady ACK stream: one packet per ACK, cwnd-limited,
// 10 µs apart, 50 ms RTT.
// rs lives outside the measured function: passed through the interface it
// escapes, as it would in the engine (which keeps it in the connection).
func ackLoop(c Controller, rs *RateSample, n int) {
	now := t0
	var delivered int64
	*rs = RateSample{AckedSacked: 1, RTT: 50 * time.Millisecond, MinRTT: 50 * time.Millisecond,
		Interval: 50 * time.Millisecond, Delivered: 100, TxInFlight: 100}
	for range n {
		now = now.Add(10 * time.Microsecond)
		delivered++
		rs.PriorDelivered = delivered - int64(c.Cwnd())
		rs.TotalDelivered = delivered
		rs.PriorInFlight = c.Cwnd()
		rs.InFlight = c.Cwnd() - 1
		c.OnAck(now, rs)
	}
}

func congestionAvoidance(c Controller) {
	c.Init(1448, t0)
	forceWindow(c, 1000, InfiniteSsthresh)
	c.OnCongestionEvent(t0, 1000)
	c.OnRecoveryEnd(t0)
}

func BenchmarkOnAck(b *testing.B) {
	for _, tc := range []struct {
		name string
		mk   func() Controller
		ca   bool
	}{
		{"reno/ss", func() Controller { return NewReno() }, false},
		{"reno/ca", func() Controller { return NewReno() }, true},
		{"cubic/hystart", func() Controller { return NewCubic() }, false},
		{"cubic/ca", func() Controller { return NewCubic() }, true},
		{"bbr", func() Controller { return NewBBR() }, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.mk()
			c.Init(1448, t0)
			if tc.ca {
				congestionAvoidance(c)
			}
			b.ReportAllocs()
			now := t0
			var delivered int64
			rs := RateSample{AckedSacked: 1, RTT: 50 * time.Millisecond, MinRTT: 50 * time.Millisecond,
				Delivered: 100, Interval: 50 * time.Millisecond, TxInFlight: 100}
			for b.Loop() {
				now = now.Add(10 * time.Microsecond)
				delivered++
				rs.PriorDelivered = delivered - 100
				rs.TotalDelivered = delivered
				rs.PriorInFlight = c.Cwnd()
				c.OnAck(now, &rs)
				if c.Cwnd() > 1<<20 { // keep the state bounded in long runs
					congestionAvoidance(c)
				}
			}
		})
	}
}

func TestOnAckZeroAllocs(t *testing.T) {
	rs := new(RateSample)
	for _, c := range []Controller{NewReno(), NewCubic(), NewBBR()} {
		c.Init(1448, t0)
		if a := testing.AllocsPerRun(10, func() { ackLoop(c, rs, 1000) }); a != 0 {
			t.Errorf("%s slow start: %v allocs", c.Name(), a)
		}
		congestionAvoidance(c)
		if a := testing.AllocsPerRun(10, func() { ackLoop(c, rs, 1000) }); a != 0 {
			t.Errorf("%s congestion avoidance: %v allocs", c.Name(), a)
		}
	}
}
