package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// lossCounters are the loss-recovery MIB counters of the issue "Loss
// recovery and congestion control", as a comparable value.
type lossCounters struct {
	FastRetrans, SlowStartRetrans, Timeouts, LossProbes uint64
	SACKRecovery, RenoRecovery, DSACKRecv, SpuriousRTOs uint64
}

func lossCtr(k *Counters) lossCounters {
	return lossCounters{
		FastRetrans: k.TCPFastRetrans, SlowStartRetrans: k.TCPSlowStartRetrans,
		Timeouts: k.TCPTimeouts, LossProbes: k.TCPLossProbes,
		SACKRecovery: k.TCPSACKRecovery, RenoRecovery: k.TCPRenoRecovery,
		DSACKRecv: k.TCPDSACKRecv, SpuriousRTOs: k.TCPSpuriousRTOs,
	}
}

// TestLossCountersMove makes each loss-recovery counter move with the
// event it counts, and checks the others stay put, on the sender (A).
func TestLossCountersMove(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		v, _ := lossRun(t, true, 20*1448)
		if got := lossCtr(&v.ctr[0]); got != (lossCounters{}) {
			t.Errorf("lossless transfer: %+v, want all zero", got)
		}
	})
	t.Run("TCPFastRetrans+TCPSACKRecovery", func(t *testing.T) {
		// One hole, three SACKed dupacks: one fast retransmission in
		// one SACK recovery episode.
		v, _ := lossRun(t, true, 10*1448, 2)
		want := lossCounters{FastRetrans: 1, SACKRecovery: 1}
		if got := lossCtr(&v.ctr[0]); got != want {
			t.Errorf("got %+v, want %+v\n%s", got, want, v.traceStr())
		}
	})
	t.Run("TCPRenoRecovery", func(t *testing.T) {
		// The same without SACK: NewReno recovery.
		v, _ := lossRun(t, false, 10*1448, 2)
		want := lossCounters{FastRetrans: 1, RenoRecovery: 1}
		if got := lossCtr(&v.ctr[0]); got != want {
			t.Errorf("got %+v, want %+v\n%s", got, want, v.traceStr())
		}
	})
	t.Run("TCPLossProbes", func(t *testing.T) {
		// The tail segment is lost: the probe repairs it, no RTO.
		v, _ := lossRun(t, true, 10*1448, 9)
		v.advance(v.now.Sub(t0) + time.Second)
		want := lossCounters{LossProbes: 1}
		if got := lossCtr(&v.ctr[0]); got != want {
			t.Errorf("got %+v, want %+v\n%s", got, want, v.traceStr())
		}
	})
	t.Run("TCPTimeouts+TCPSlowStartRetrans", func(t *testing.T) {
		// The tail segment and its loss probe are both lost: the RTO
		// fires and the segment goes again in loss state (slow start).
		v, _ := lossRun(t, true, 10*1448, 9, 9)
		v.advance(v.now.Sub(t0) + time.Second)
		want := lossCounters{LossProbes: 1, Timeouts: 1, SlowStartRetrans: 1}
		if got := lossCtr(&v.ctr[0]); got != want {
			t.Errorf("got %+v, want %+v\n%s", got, want, v.traceStr())
		}
	})
	t.Run("TCPDSACKRecv", func(t *testing.T) {
		// B receives a duplicate of old data and reports it with a
		// D-SACK block; A counts the block.
		v, _ := lossRun(t, true, 5*1448)
		b := v.c[1]
		seg := Segment{Seq: 1001, Ack: 5001, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 100)}
		seg.Options.HasTS = true
		seg.Options.TSVal = v.c[0].tsVal(v.now)
		b.Input(&seg, v.now)
		var out []Segment
		b.Output(v.now, func(s *Segment) { out = append(out, copySeg(s)) })
		if len(out) != 1 || out[0].Options.NumSACK != 1 {
			t.Fatalf("no D-SACK from B: %+v", out)
		}
		v.c[0].Input(&out[0], v.now)
		want := lossCounters{DSACKRecv: 1}
		if got := lossCtr(&v.ctr[0]); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("TCPSpuriousRTOs", func(t *testing.T) {
		// B's ACKs are delayed by 1 s, past A's RTO: the ACK of the
		// original transmission echoes its timestamp, so the RTO was
		// spurious (Eifel detection) and is counted as such.
		v, a, _ := established(t, nil)
		v.delayFn = func(from int, s *Segment) time.Duration {
			if from == 1 {
				return time.Second
			}
			return v.delay
		}
		a.Send(make([]byte, 1448))
		v.flush(0)
		v.advance(v.now.Sub(t0) + 3*time.Second)
		got := lossCtr(&v.ctr[0])
		// The ACKs of the retransmissions arrive a second late too and
		// the RTO fires again before the first ACK: two timeouts, the
		// episode is found spurious once.
		if got.SpuriousRTOs != 1 || got.Timeouts != 2 {
			t.Errorf("got %+v, want two timeouts found spurious once\n%s", got, v.traceStr())
		}
	})
}
