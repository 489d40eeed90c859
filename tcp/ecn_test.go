package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

const eceCWR = wire.TCPFlagECE | wire.TCPFlagCWR

// Negotiation (RFC 3168 6.1.1) with Linux's tcp_ecn modes: 1 asks and
// accepts, 2 (default) only accepts, 0 neither.
func TestECNNegotiation(t *testing.T) {
	for _, tc := range []struct {
		cli, srv      int
		synECN, saECE bool
		negotiated    bool
	}{
		{1, 2, true, true, true},
		{1, 1, true, true, true},
		{1, 0, true, false, false},
		{2, 2, false, false, false},
		{0, 1, false, false, false},
	} {
		cc, sc := cfgDefault(), cfgDefault()
		cc.ECN, sc.ECN = tc.cli, tc.srv
		v := newPair(t, cc, sc, 10*time.Millisecond)
		v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
		syn, sa := v.trace[0].seg, v.trace[1].seg
		if (syn.Flags&eceCWR == eceCWR) != tc.synECN || syn.ECN != ECNNotECT {
			t.Errorf("%d/%d: SYN flags %s ECN %d", tc.cli, tc.srv, flagStr(syn.Flags), syn.ECN)
		}
		if (sa.Flags&eceCWR == wire.TCPFlagECE) != tc.saECE || sa.Flags&wire.TCPFlagCWR != 0 || sa.ECN != ECNNotECT {
			t.Errorf("%d/%d: SYN-ACK flags %x", tc.cli, tc.srv, sa.Flags)
		}
		a, b := v.c[0], v.c[1]
		if a.Info().Options.ECN != tc.negotiated || b.Info().Options.ECN != tc.negotiated {
			t.Errorf("%d/%d: ECN client %v server %v, want %v", tc.cli, tc.srv, a.Info().Options.ECN, b.Info().Options.ECN, tc.negotiated)
		}
		// Data is ECT(0) only when negotiated; ACKs never.
		v.trace = nil
		a.Send(make([]byte, 100))
		v.flush(0)
		v.advance(v.now.Sub(t0) + time.Second)
		want := uint8(ECNNotECT)
		if tc.negotiated {
			want = ECNECT0
		}
		if d := v.trace[0].seg; len(d.Payload) != 100 || d.ECN != want {
			t.Errorf("%d/%d: data ECN %d, want %d", tc.cli, tc.srv, d.ECN, want)
		}
		if ack := v.trace[1].seg; len(ack.Payload) != 0 || ack.ECN != ECNNotECT {
			t.Errorf("%d/%d: ACK ECN %d", tc.cli, tc.srv, ack.ECN)
		}
	}
}

// A retransmitted SYN drops ECE/CWR (tcp_ecn_fallback); the SYN-ACK still
// negotiates ECN.
func TestECNSynRetransmission(t *testing.T) {
	cc := cfgDefault()
	cc.ECN = 1
	v := &vnet{t: t, now: t0, delay: 10 * time.Millisecond}
	first := true
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && s.Flags&wire.TCPFlagSYN != 0 && first {
			first = false
			return true
		}
		return false
	}
	v.c[0] = NewActive(cc, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	v.flush(0)
	v.listen(cfgDefault())
	v.run(5*time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	syns := v.times(0, isSyn)
	if len(syns) != 2 || syns[1] != time.Second {
		t.Fatalf("SYNs %v", syns)
	}
	if f := v.trace[0].seg.Flags; f&eceCWR != eceCWR {
		t.Errorf("first SYN flags %x", f)
	}
	if f := v.trace[1].seg.Flags; f&eceCWR != 0 {
		t.Errorf("retransmitted SYN flags %x", f)
	}
	if v.c[1].Info().Options.ECN {
		t.Errorf("server negotiated ECN from a SYN without ECE/CWR")
	}
}

// Congestion experienced: the receiver echoes ECE on every ACK until a
// data segment with CWR arrives; the sender reduces cwnd once per window
// and sets CWR on its next new data segment.
func TestECNCongestionExperienced(t *testing.T) {
	cfg := cfgDefault()
	cfg.ECN = 1
	cfg.CongestionControl = "reno"
	v, a, b := established(t, cfg)
	marked := 0
	v.delayFn = func(from int, s *Segment) time.Duration { return 10 * time.Millisecond }
	// The router marks the first two data segments CE.
	v.hook = nil
	mss := a.Info().SndMSS
	origPush := v.drop
	_ = origPush
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && len(s.Payload) > 0 && marked < 2 {
			marked++
			s.ECN = ECNCE // the copy queued for delivery is made after drop
		}
		return false
	}
	v.trace = nil
	a.Send(make([]byte, 10*mss))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 2*time.Second)
	if got := a.Info().SndCwnd; got != 5 || v.ctr[0].TCPECNReductions != 1 {
		t.Errorf("cwnd %d reductions %d, want one cut to 5", got, v.ctr[0].TCPECNReductions)
	}
	// B's ACKs: ECE from the first CE mark on.
	var eces, acks int
	for _, e := range v.trace {
		if e.from == 1 {
			acks++
			if e.seg.Flags&wire.TCPFlagECE != 0 {
				eces++
			}
		}
	}
	if acks == 0 || eces != acks {
		t.Errorf("B sent %d ACKs, %d with ECE (no CWR yet, all should echo)\n%s", acks, eces, v.traceStr())
	}
	// The next new data segment carries CWR; after it B stops echoing.
	v.trace = nil
	a.Send(make([]byte, 100))
	v.flush(0)
	v.advance(v.now.Sub(t0) + time.Second)
	d, ack := v.trace[0].seg, v.trace[1].seg
	if d.Flags&wire.TCPFlagCWR == 0 || d.ECN != ECNECT0 {
		t.Fatalf("data after the reduction: flags %x ECN %d", d.Flags, d.ECN)
	}
	if ack.Flags&wire.TCPFlagECE != 0 || b.ecnEcho {
		t.Fatalf("ACK after CWR still echoes: %x", ack.Flags)
	}
}
