package tcp

import (
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// ccRecorder wraps a controller and records the engine's calls.
type ccRecorder struct {
	cc.Controller
	log  []string
	rs   []cc.RateSample
	lost []cc.LostPacket
}

func (r *ccRecorder) OnIdleRestart(now time.Time, idle, rto time.Duration) {
	r.log = append(r.log, fmt.Sprintf("%v idle %v rto %v", now.Sub(t0), idle, rto))
	r.Controller.OnIdleRestart(now, idle, rto)
}

func (r *ccRecorder) OnRecoveryEnd(now time.Time) {
	r.log = append(r.log, fmt.Sprintf("%v recovery end", now.Sub(t0)))
	r.Controller.OnRecoveryEnd(now)
}

func (r *ccRecorder) OnRTO(now time.Time, inFlight int) {
	r.log = append(r.log, fmt.Sprintf("%v rto", now.Sub(t0)))
	r.Controller.OnRTO(now, inFlight)
}

func (r *ccRecorder) OnAck(now time.Time, rs *cc.RateSample) {
	r.rs = append(r.rs, *rs)
	r.Controller.OnAck(now, rs)
}

func (r *ccRecorder) OnPacketLost(now time.Time, p cc.LostPacket) {
	r.lost = append(r.lost, p)
}

func record(c *Conn) *ccRecorder {
	r := &ccRecorder{Controller: c.cc}
	c.cc = r
	return r
}

// OnIdleRestart is called whenever sending resumes with nothing in flight,
// with the idle time and the RTO, or rto 0 when tcp_slow_start_after_idle
// is off.
func TestCCIdleRestartCalls(t *testing.T) {
	for _, ssai := range []bool{true, false} {
		cfg := cfgDefault()
		cfg.SlowStartAfterIdle = ssai
		v, a, _ := established(t, cfg)
		r := record(a)
		rto := a.Info().RTO
		a.Send(make([]byte, 100))
		v.flush(0)
		v.advance(v.now.Sub(t0) + 500*time.Millisecond)
		a.Send(make([]byte, 100))
		v.flush(0)
		a.Send(make([]byte, 100)) // data in flight: no call; Nagle holds it
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		if !ssai {
			rto = 0
		}
		// Established at 20 ms; sends at 1.03 s and 1.53 s, then the
		// segment Nagle held goes when the ACK empties the flight.
		want := []string{
			fmt.Sprintf("1.03s idle 1.01s rto %v", rto),
			fmt.Sprintf("1.53s idle 500ms rto %v", rto),
			fmt.Sprintf("1.55s idle 20ms rto %v", rto),
		}
		if fmt.Sprint(r.log) != fmt.Sprint(want) {
			t.Errorf("slow_start_after_idle=%v: calls %q, want %q", ssai, r.log, want)
		}
	}
}

// The end of RTO recovery is reported with OnRecoveryEnd, like the end of
// fast recovery.
func TestCCRecoveryEndAfterRTO(t *testing.T) {
	cfg := cfgDefault()
	cfg.EarlyRetrans = 0 // no tail loss probe: the RTO repairs the loss
	v, a, _ := established(t, cfg)
	r := record(a)
	dropped := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && len(s.Payload) > 0 && !dropped {
			dropped = true
			return true
		}
		return false
	}
	a.Send(make([]byte, 100))
	v.flush(0)
	v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().Unacked == 0 })
	rtx := v.times(0, func(s *Segment) bool { return len(s.Payload) > 0 })
	if len(rtx) != 2 {
		t.Fatalf("data at %v\n%s", rtx, v.traceStr())
	}
	want := fmt.Sprint([]string{
		fmt.Sprintf("%v rto", rtx[1]),
		fmt.Sprintf("%v recovery end", rtx[1]+20*time.Millisecond),
	})
	var got []string
	for _, l := range r.log {
		if l[len(l)-3:] == "rto" || l[len(l)-3:] == "end" {
			got = append(got, l)
		}
	}
	if fmt.Sprint(got) != want {
		t.Fatalf("calls %q, want %s", got, want)
	}
}

// Rate samples carry the packets in flight when the acked packet was sent
// and the packets marked lost since; the per-packet loss hook gets the same
// for each lost packet.
func TestCCRateSampleTxInFlight(t *testing.T) {
	old := perPacketLoss
	perPacketLoss = true
	defer func() { perPacketLoss = old }()
	v, a, b := established(t, nil)
	b.quick = 16
	r := record(a)
	mss := a.Info().SndMSS
	// Segment 2 of 6 is lost.
	n := 0
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && len(s.Payload) > 0 {
			n++
			return n == 2
		}
		return false
	}
	a.Send(make([]byte, 6*mss))
	v.flush(0)
	v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().Unacked == 0 })
	if len(r.rs) == 0 || r.rs[0].TxInFlight != 1 || r.rs[0].LostSinceTx != 0 {
		t.Fatalf("first sample %+v", r.rs)
	}
	// The SACKs of segments 3..6 mark segment 2 lost once three are above
	// it (tcp_reordering); it was sent with 2 packets in flight.
	if len(r.lost) != 1 || r.lost[0].TxInFlight != 2 || r.lost[0].LostSinceTx != 1 {
		t.Fatalf("lost %+v\n%s", r.lost, v.traceStr())
	}
	// The ACK after the loss delivered a packet sent with 5 in flight
	// (segment 5 or 6) before the loss was marked.
	var sawLoss bool
	for _, rs := range r.rs {
		if rs.LostSinceTx == 1 {
			sawLoss = true
			if rs.TxInFlight < 5 {
				t.Errorf("sample with the loss: %+v", rs)
			}
		}
	}
	if !sawLoss {
		t.Errorf("no sample reports the loss: %+v", r.rs)
	}
	_ = wire.TCPFlagACK
}
