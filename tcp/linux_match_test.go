package tcp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// The passive side takes its first RTT sample (and min RTT) from the
// SYN-ACK -> ACK exchange, so RACK's reordering window (min_rtt/4) is in
// force from the start: a SACK of only the last segment of a flight does
// not retransmit the holes before min_rtt/4 has passed (Linux).
func TestPassiveHandshakeMinRTTAndRACKWindow(t *testing.T) {
	v, a, b := established(t, nil)
	if got := b.Info().MinRTT; got != 20*time.Millisecond {
		t.Fatalf("server min RTT %v, want 20ms (SYN-ACK at 10ms, ACK at 30ms)", got)
	}
	if got := b.Info().RTT; got != 20*time.Millisecond {
		t.Fatalf("server srtt %v, want 20ms", got)
	}
	// B sends three segments; the first two are lost once.
	start := v.now
	mss := b.Info().SndMSS
	dropped := 0
	v.drop = func(from int, s *Segment) bool {
		if from == 1 && len(s.Payload) > 0 && dropped < 2 {
			dropped++
			return true
		}
		return false
	}
	if n, _ := b.Send(make([]byte, 3*mss)); n != 3*mss {
		t.Fatal("send")
	}
	v.flush(1)
	v.run(v.now.Sub(t0)+time.Second, func() bool { return a.Readable() == 3*mss })
	var rtx []time.Duration
	for _, e := range v.trace {
		if e.from == 1 && len(e.seg.Payload) > 0 && e.at >= start.Sub(t0) {
			rtx = append(rtx, e.at-start.Sub(t0))
		}
	}
	// Sent at 0; the SACK of the third arrives at 20ms; RACK: 20ms + 20ms/4.
	// Entering recovery from the reordering timer is no safe ACK (RFC 9937;
	// Linux tcp_rack_reo_timeout runs tcp_cwnd_reduction without
	// FLAG_SND_UNA_ADVANCED), so PRR-CRB lets one retransmission go at
	// 25ms and the second follows the first one's ACK at 45ms.
	want := []time.Duration{0, 0, 0, 25 * time.Millisecond, 45 * time.Millisecond}
	if !eqDur(rtx, want) {
		t.Fatalf("data segments at %v, want %v\n%s", rtx, want, v.traceStr())
	}
	_ = wire.TCPFlagACK
}

// A bare FIN goes out even when cwnd is full (Linux exempts a one-packet
// FIN from the congestion window check).
func TestBareFINIgnoresCwnd(t *testing.T) {
	v, a, _ := established(t, nil)
	start := v.now.Sub(t0)
	mss := a.Info().SndMSS
	a.Send(make([]byte, 10*mss))
	v.flush(0)
	if a.Info().SndCwnd != 10 || a.Info().Unacked != 10 {
		t.Fatalf("cwnd %d unacked %d", a.Info().SndCwnd, a.Info().Unacked)
	}
	a.CloseWrite()
	v.flush(0)
	fins := v.times(0, func(s *Segment) bool { return s.Flags&wire.TCPFlagFIN != 0 })
	if len(fins) != 1 || fins[0] != start {
		t.Fatalf("FIN at %v, want once at %v\n%s", fins, start, v.traceStr())
	}
	last := v.trace[len(v.trace)-1].seg
	if len(last.Payload) != 0 || last.Flags != wire.TCPFlagFIN|wire.TCPFlagACK || last.Seq-a.ISS() != uint32(10*mss)+1 {
		t.Fatalf("last segment %s", segStr(&last, a.ISS(), 0))
	}
}

// A segment that acknowledges data never sent is dropped (challenge ACK)
// without updating TS.Recent: our replies keep echoing the last valid TSval.
func TestTSRecentNotUpdatedByUnsentDataACK(t *testing.T) {
	v, a, _ := established(t, nil)
	in := a.Info()
	old := a.tsRecent
	bad := Segment{Seq: in.RcvNxt, Ack: in.SndNxt + 1000, Flags: wire.TCPFlagACK, Window: 1000}
	bad.Options.HasTS, bad.Options.TSVal, bad.Options.TSEcr = true, old+5000, a.tsVal(v.now)
	out := inject(v, a, bad)
	if len(out) != 1 || out[0].Flags != wire.TCPFlagACK || out[0].Options.TSEcr != old {
		t.Fatalf("reply %+v, want one ACK echoing TSval %d", out, old)
	}
	if a.tsRecent != old {
		t.Fatalf("TS.Recent %d, want %d", a.tsRecent, old)
	}
	// An acceptable segment still updates it.
	good := bad
	good.Ack = in.SndNxt
	good.Options.TSVal = old + 10
	v.now = v.now.Add(time.Millisecond)
	inject(v, a, good)
	if a.tsRecent != old+10 {
		t.Fatalf("TS.Recent %d after a good segment, want %d", a.tsRecent, old+10)
	}
}

// Resets we send on our own initiative carry the timestamp option (Linux
// tcp_send_active_reset); resets answering bad segments do not.
func TestActiveRSTCarriesTimestamp(t *testing.T) {
	v, a, b := established(t, nil)
	b.Send([]byte("unread"))
	v.flush(1)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if a.Readable() != 6 {
		t.Fatal("data not delivered")
	}
	in := a.Info()
	a.Close() // unread data: RST
	var out []Segment
	a.Output(v.now, func(s *Segment) { out = append(out, copySeg(s)) })
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST|wire.TCPFlagACK || out[0].Seq != in.SndNxt || out[0].Ack != in.RcvNxt {
		t.Fatalf("got %+v", out)
	}
	o := out[0].Options
	if !o.HasTS || o.TSVal != a.tsVal(v.now) || o.TSEcr != a.tsRecent || o.TSEcr == 0 {
		t.Fatalf("RST options %+v, want TS val %d ecr %d", o, a.tsVal(v.now), a.tsRecent)
	}
	// Abort in a connection without timestamps: no option.
	cfg := cfgDefault()
	cfg.Timestamps = 0
	v2, a2, _ := established(t, cfg)
	a2.Abort()
	out = nil
	a2.Output(v2.now, func(s *Segment) { out = append(out, copySeg(s)) })
	if len(out) != 1 || out[0].Flags&wire.TCPFlagRST == 0 || out[0].Options.HasTS {
		t.Fatalf("got %+v", out)
	}
}

// A lost FIN is repaired by a tail loss probe (2*SRTT + 200 ms with one
// packet out) in FIN-WAIT-1 and LAST-ACK, before the RTO.
func TestTLPProbesLostFIN(t *testing.T) {
	for _, passiveClose := range []bool{false, true} {
		v, a, b := established(t, nil)
		if passiveClose {
			b.CloseWrite()
			v.flush(1)
			v.advance(v.now.Sub(t0) + 100*time.Millisecond)
			if a.State() != CloseWait {
				t.Fatal(a.State())
			}
		}
		start := v.now.Sub(t0)
		srtt, rto := a.Info().RTT, a.Info().RTO
		dropped := false
		v.drop = func(from int, s *Segment) bool {
			if from == 0 && s.Flags&wire.TCPFlagFIN != 0 && !dropped {
				dropped = true
				return true
			}
			return false
		}
		a.CloseWrite()
		v.flush(0)
		v.run(start+5*time.Second, func() bool { return a.State() == Closed || a.State() == TimeWait || a.State() == FinWait2 })
		fins := v.times(0, func(s *Segment) bool { return s.Flags&wire.TCPFlagFIN != 0 })
		// The probe timeout never lies beyond the RTO timer.
		want := []time.Duration{start, start + min(2*srtt+200*time.Millisecond, rto)}
		if !eqDur(fins, want) || v.ctr[0].TCPLossProbes != 1 {
			t.Fatalf("passiveClose=%v: FINs at %v, want %v (srtt %v, rto %v), probes %d\n%s", passiveClose, fins, want, srtt, rto, v.ctr[0].TCPLossProbes, v.traceStr())
		}
	}
}

// tcpi_last_data_recv counts from establishment before any data arrives.
func TestLastDataRecvFromEstablishment(t *testing.T) {
	v, a, b := established(t, nil)
	// A established at 20 ms (SYN-ACK arrives), B at 30 ms (ACK arrives).
	a.Timeout(v.now)
	b.Timeout(v.now)
	if got, want := a.Info().LastDataRecv, v.now.Sub(t0)-20*time.Millisecond; got != want || got < time.Second {
		t.Errorf("client last_data_recv %v, want %v", got, want)
	}
	if got, want := b.Info().LastDataRecv, v.now.Sub(t0)-30*time.Millisecond; got != want || got < time.Second {
		t.Errorf("server last_data_recv %v, want %v", got, want)
	}
}

// cwnd grows only when the flow used it (Linux tcp_is_cwnd_limited): in
// slow start up to twice the most packets out in the window.
func TestCwndGrowthAppLimited(t *testing.T) {
	cfg := cfgDefault()
	cfg.CongestionControl = "reno" // no HyStart exit in the way
	v, a, _ := established(t, cfg)
	mss := a.Info().SndMSS
	// 5 of 10: 2*5 is not above cwnd 10, no growth.
	a.Send(make([]byte, 5*mss))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond) // less than the RTO: no idle restart
	if got := a.Info().SndCwnd; got != 10 || a.Info().Unacked != 0 {
		t.Fatalf("cwnd %d after 5 packets acked, want 10", got)
	}
	// 8 of 10: grows to 2*8 and stops there.
	a.Send(make([]byte, 8*mss))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond) // less than the RTO: no idle restart
	if got := a.Info().SndCwnd; got != 16 || a.Info().Unacked != 0 {
		t.Fatalf("cwnd %d after 8 packets acked, want 16", got)
	}
	// A full window: cwnd-limited, grows by every packet acked.
	if n, _ := a.Send(make([]byte, 16*mss)); n != 16*mss {
		t.Fatalf("send buffer took %d", n)
	}
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond) // less than the RTO: no idle restart
	if got := a.Info().SndCwnd; got != 32 || a.Info().Unacked != 0 {
		t.Fatalf("cwnd %d after a full window of 16 acked, want 32", got)
	}
}

// Interactive (ping-pong) delayed ACKs: once a side answers received data
// within the delayed-ACK timeout, it stops quick-ACKing and lets the
// reply carry the ACK; a delayed-ACK timeout ends the mode.
func TestPingPongDelayedACK(t *testing.T) {
	v, a, b := established(t, nil)
	v.hook = func() {
		// B answers every request as soon as it arrives.
		if b.Readable() > 0 {
			buf := make([]byte, 100)
			n, _ := b.Recv(buf)
			b.Send(buf[:n])
			v.flush(1)
		}
	}
	start := v.now.Sub(t0)
	v.trace = nil
	for i := 0; i < 3; i++ {
		a.Send(make([]byte, 100))
		v.flush(0)
		v.run(v.now.Sub(t0)+time.Second, func() bool { return a.Readable() == 100 })
		a.Recv(make([]byte, 100))
	}
	v.advance(v.now.Sub(t0) + time.Second)
	var got []string
	for _, e := range v.trace {
		got = append(got, fmt.Sprintf("%v %s %s", e.at-start, "AB"[e.from:e.from+1], segStr(&e.seg, [2]uint32{1000, 5000}[e.from], [2]uint32{5000, 1000}[e.from])))
	}
	want := []string{
		// Request 1: B is in quick-ACK mode and ACKs at once; replying
		// within the delayed-ACK timeout makes it interactive.
		"0s A P. seq=1 ack=1 len=100",
		"10ms B . seq=1 ack=101",
		"10ms B P. seq=1 ack=101 len=100",
		// A ACKs the reply at once (quick-ACK, A not yet interactive)...
		"20ms A . seq=101 ack=101",
		// ...and its next request, sent at once, makes A interactive.
		"20ms A P. seq=101 ack=101 len=100",
		// Neither side ACKs at once any more: the replies carry the ACKs.
		"30ms B P. seq=101 ack=201 len=100",
		"40ms A P. seq=201 ack=201 len=100",
		"50ms B P. seq=201 ack=301 len=100",
		// The last reply gets no request: A's delayed ACK after 40 ms.
		"100ms A . seq=301 ack=301",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !b.pingpong || a.pingpong {
		t.Errorf("pingpong: A %v (ended by its delayed-ACK timeout), B %v", a.pingpong, b.pingpong)
	}
}
