package tcp

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// lossRun sends size bytes from A to B, dropping the first transmission of
// the data segments with the given indexes (0-based, MSS-sized).
func lossRun(t *testing.T, sack bool, size int, drops ...int) (*vnet, []byte) {
	cfg := DefaultConfig()
	cfg.SACK = sack
	v := newPair(t, &cfg, &cfg, 10*time.Millisecond)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	mss := uint32(a.Info().SndMSS)
	// An index listed n times loses its first n transmissions.
	left := map[uint32]int{}
	for _, k := range drops {
		left[1001+uint32(k)*mss]++
	}
	v.drop = func(from int, s *Segment) bool {
		if from != 0 || len(s.Payload) == 0 || left[s.Seq] == 0 {
			return false
		}
		left[s.Seq]--
		return true
	}
	msg := make([]byte, size)
	rand.New(rand.NewSource(2)).Read(msg)
	sent := 0
	var got []byte
	buf := make([]byte, 65536)
	v.hook = func() {
		for sent < len(msg) {
			n, _ := a.Send(msg[sent:])
			if n == 0 {
				break
			}
			sent += n
		}
		v.flush(0)
		for {
			n, _ := b.Recv(buf)
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		v.flush(1)
	}
	v.hook()
	v.run(60*time.Second, func() bool { return len(got) == len(msg) })
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d of %d bytes\n%s", len(got), len(msg), v.traceStr())
	}
	return v, msg
}

func TestFastRetransmitAfterThreeDupacks(t *testing.T) {
	for _, sack := range []bool{true, false} {
		t.Run(fmt.Sprint("sack=", sack), func(t *testing.T) {
			v, _ := lossRun(t, sack, 10*1448, 2)
			lost := uint32(1001 + 2*1448)
			// Find the retransmission and count B's duplicate ACKs that
			// reached A before it.
			rtxIdx := -1
			seen := 0
			for i, e := range v.trace {
				if e.from == 0 && e.seg.Seq == lost && len(e.seg.Payload) > 0 {
					seen++
					if seen == 2 {
						rtxIdx = i
						break
					}
				}
			}
			if rtxIdx < 0 {
				t.Fatalf("no retransmission\n%s", v.traceStr())
			}
			dup := 0
			for _, r := range v.rx {
				if r.to == 0 && r.seg.Ack == lost && r.idx <= rtxIdx {
					dup++
					if sack && r.seg.Options.NumSACK == 0 && dup > 1 {
						t.Errorf("dupack without SACK: %+v", r.seg)
					}
				}
			}
			// The first ACK for the hole is the ACK of the segment before
			// it; then exactly three duplicates.
			if dup != 4 {
				t.Errorf("retransmitted after %d dupacks\n%s", dup-1, v.traceStr())
			}
			k := v.ctr[0]
			if k.TCPTimeouts != 0 || k.TCPFastRetrans != 1 || k.RetransSegs != 1 {
				t.Errorf("timeouts %d fastretrans %d retrans %d", k.TCPTimeouts, k.TCPFastRetrans, k.RetransSegs)
			}
			if sack && k.TCPSACKRecovery != 1 || !sack && k.TCPRenoRecovery != 1 {
				t.Errorf("recoveries sack %d reno %d", k.TCPSACKRecovery, k.TCPRenoRecovery)
			}
		})
	}
}

func TestSACKRecoveryMultipleDrops(t *testing.T) {
	v, _ := lossRun(t, true, 40*1448, 12, 15, 18, 21)
	k := v.ctr[0]
	if k.TCPSACKRecovery != 1 || k.TCPTimeouts != 0 || k.RetransSegs != 4 || k.TCPFastRetrans != 4 {
		t.Errorf("recoveries %d timeouts %d retrans %d fast %d\n%s", k.TCPSACKRecovery, k.TCPTimeouts, k.RetransSegs, k.TCPFastRetrans, v.traceStr())
	}
	// B generated SACK blocks for every hole.
	maxBlocks := 0
	for _, e := range v.trace {
		if e.from == 1 {
			maxBlocks = max(maxBlocks, e.seg.Options.NumSACK)
		}
	}
	if maxBlocks < 3 {
		t.Errorf("at most %d SACK blocks", maxBlocks)
	}
}

func TestDSACK(t *testing.T) {
	// A duplicated segment makes B send a D-SACK; A counts it.
	v, _ := lossRun(t, true, 5*1448)
	a, b := v.c[0], v.c[1]
	_ = a
	seg := Segment{Seq: 1001, Ack: 5001, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 100)}
	seg.Options.HasTS = true
	seg.Options.TSVal = v.c[0].tsVal(v.now)
	b.Input(&seg, v.now)
	var out []Segment
	b.Output(v.now, func(s *Segment) { out = append(out, copySeg(s)) })
	if len(out) != 1 || out[0].Options.NumSACK != 1 || out[0].Options.SACK[0] != (wire.SACKBlock{Left: 1001, Right: 1101}) {
		t.Fatalf("no D-SACK: %+v", out)
	}
	v.c[0].Input(&out[0], v.now)
	if v.ctr[0].TCPDSACKRecv != 1 {
		t.Errorf("TCPDSACKRecv %d", v.ctr[0].TCPDSACKRecv)
	}
}

func TestTailLossProbe(t *testing.T) {
	// The last of 10 segments is lost: the loss probe (a retransmission of
	// the last segment) repairs it at the PTO, with no RTO.
	v, _ := lossRun(t, true, 10*1448, 9)
	a := v.c[0]
	v.advance(v.now.Sub(t0) + time.Second)
	last := uint32(1001 + 9*1448)
	var sends []time.Duration
	for _, e := range v.trace {
		if e.from == 0 && e.seg.Seq == last && len(e.seg.Payload) > 0 {
			sends = append(sends, e.at)
		}
	}
	// The ACK of segment 9 arrives one RTT (20 ms) after the burst; the
	// PTO is then min(2*SRTT + 200 ms (one packet in flight), RTO) =
	// min(240 ms, 220 ms) with SRTT 20 ms.
	if len(sends) != 2 || sends[1]-sends[0] != 20*time.Millisecond+220*time.Millisecond {
		t.Errorf("last segment sent at %v\n%s", sends, v.traceStr())
	}
	k := v.ctr[0]
	if k.TCPTimeouts != 0 || k.TCPLossProbes != 1 || k.RetransSegs != 1 {
		t.Errorf("timeouts %d probes %d probe recoveries %d retrans %d", k.TCPTimeouts, k.TCPLossProbes, k.TCPLossProbeRecovery, k.RetransSegs)
	}
	_ = a
}

func TestSpuriousRTOUndo(t *testing.T) {
	v, a, _ := established(t, nil)
	cwnd0 := a.Info().SndCwnd
	// B's ACKs take 1 s: longer than A's RTO (~220 ms). The ACK of the
	// original transmission echoes its timestamp: the RTO was spurious
	// (Eifel, RFC 3522) and is undone.
	spike := true
	v.delayFn = func(from int, s *Segment) time.Duration {
		if from == 1 && spike && s.Flags&wire.TCPFlagSYN == 0 {
			return time.Second
		}
		return v.delay
	}
	a.Send(make([]byte, 1448))
	v.flush(0)
	start := v.now
	v.advance(v.now.Sub(t0) + 3*time.Second)
	k := v.ctr[0]
	if k.TCPTimeouts != 1 && k.TCPLossProbes != 1 {
		t.Fatalf("timeouts %d probes %d\n%s", k.TCPTimeouts, k.TCPLossProbes, v.traceStr())
	}
	in := a.Info()
	t.Logf("timeouts %d probes %d spurious RTOs %d D-SACK undos %d, cwnd %d -> %d", k.TCPTimeouts, k.TCPLossProbes, k.TCPSpuriousRTOs, k.TCPDSACKUndo, cwnd0, in.SndCwnd)
	if k.TCPSpuriousRTOs != 1 || in.CAState != CAOpen || in.SndCwnd < cwnd0 {
		t.Errorf("not undone: spurious %d dsackundo %d state %v cwnd %d (was %d) since %v\n%s",
			k.TCPSpuriousRTOs, k.TCPDSACKUndo, in.CAState, in.SndCwnd, cwnd0, v.now.Sub(start), v.traceStr())
	}
}

func TestRACKLostRetransmission(t *testing.T) {
	// Segment 12 is lost, and so is its fast retransmission: RACK sees
	// segments sent after the retransmission delivered and retransmits
	// again without waiting for the RTO.
	v, _ := lossRun(t, true, 60*1448, 12, 12)
	k := v.ctr[0]
	if k.TCPTimeouts != 0 || k.TCPLostRetransmit != 1 || k.RetransSegs != 2 || k.TCPSACKRecovery != 1 {
		t.Errorf("timeouts %d lost retransmits %d retrans %d recoveries %d\n%s", k.TCPTimeouts, k.TCPLostRetransmit, k.RetransSegs, k.TCPSACKRecovery, v.traceStr())
	}
}
