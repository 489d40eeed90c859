package tcp

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// times returns the emission times (since t0) of the segments from endpoint
// from that satisfy f.
func (v *vnet) times(from int, f func(*Segment) bool) []time.Duration {
	var r []time.Duration
	for _, e := range v.trace {
		if e.from == from && f(&e.seg) {
			r = append(r, e.at)
		}
	}
	return r
}

func secs(xs ...float64) []time.Duration {
	r := make([]time.Duration, len(xs))
	for i, x := range xs {
		r[i] = time.Duration(x * float64(time.Second))
	}
	return r
}

func eqDur(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isSyn(s *Segment) bool { return s.Flags&wire.TCPFlagSYN != 0 }

func TestSYNLostForever(t *testing.T) {
	for _, tc := range []struct {
		retries, linear int
		want            []time.Duration
		fail            time.Duration
	}{
		{6, 0, secs(0, 1, 3, 7, 15, 31, 63), 127 * time.Second},
		{2, 0, secs(0, 1, 3), 7 * time.Second},
		// Linux 6.5+ default tcp_syn_linear_timeouts=4: give up at 131 s.
		{6, 4, secs(0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67), 131 * time.Second},
	} {
		t.Run(fmt.Sprint("syn_retries=", tc.retries, ",linear=", tc.linear), func(t *testing.T) {
			cfg := DefaultConfig()
			if err := cfg.Set("net.ipv4.tcp_syn_retries", fmt.Sprint(tc.retries)); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Set("net.ipv4.tcp_syn_linear_timeouts", fmt.Sprint(tc.linear)); err != nil {
				t.Fatal(err)
			}
			v := newPair(t, &cfg, nil, 10*time.Millisecond)
			v.drop = func(int, *Segment) bool { return true }
			a := v.c[0]
			v.run(1000*time.Second, func() bool { return a.State() == Closed })
			got := v.times(0, isSyn)
			if !eqDur(got, tc.want) {
				t.Errorf("SYNs at %v, want %v", got, tc.want)
			}
			if d := v.now.Sub(t0); d != tc.fail || !errors.Is(a.Err(), syscall.ETIMEDOUT) {
				t.Errorf("closed at %v with %v, want %v ETIMEDOUT", d, a.Err(), tc.fail)
			}
			if n := v.ctr[0].TCPSynRetrans; n != uint64(tc.retries+tc.linear) {
				t.Errorf("TCPSynRetrans = %d", n)
			}
			// Every SYN is identical apart from the timestamp.
			for _, e := range v.trace {
				s := e.seg
				if s.Seq != 1000 || s.Flags != wire.TCPFlagSYN || !s.Options.HasMSS || s.Options.MSS != 1460 ||
					!s.Options.SACKPermitted || !s.Options.HasWScale || s.Options.WScale != 7 || !s.Options.HasTS || s.Window != 65535 {
					t.Errorf("bad SYN %+v", s)
				}
			}
		})
	}
}

func TestSYNACKLost(t *testing.T) {
	v := newPair(t, cfgDefault(), cfgDefault(), 0)
	v.drop = func(from int, s *Segment) bool { return from == 1 }
	v.c[0] = nil // the client vanishes after its first SYN
	v.run(1000*time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Closed })
	b := v.c[1]
	got := v.times(1, isSyn)
	if want := secs(0, 1, 3, 7, 15, 31); !eqDur(got, want) {
		t.Errorf("SYN-ACKs at %v, want %v", got, want)
	}
	if d := v.now.Sub(t0); d != 63*time.Second || !errors.Is(b.Err(), syscall.ETIMEDOUT) {
		t.Errorf("request dropped at %v (%v), want 63s", d, b.Err())
	}
	for _, e := range v.trace {
		if e.from == 1 && (e.seg.Flags != wire.TCPFlagSYN|wire.TCPFlagACK || e.seg.Seq != 5000 || e.seg.Ack != 1001) {
			t.Errorf("bad SYN-ACK %+v", e.seg)
		}
		if e.from == 1 && e.seg.Flags&wire.TCPFlagRST != 0 {
			t.Errorf("RST sent")
		}
	}
}

// finalACKLost connects A to B over a zero-delay link where A's final ACK
// and everything after the handshake is lost in both directions.
func finalACKLost(t *testing.T) *vnet {
	v := newPair(t, cfgDefault(), cfgDefault(), 0)
	synackSeen := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && isSyn(s) {
			return false
		}
		if from == 1 && isSyn(s) && !synackSeen {
			synackSeen = true
			return false
		}
		return true
	}
	v.run(time.Second, func() bool { return v.c[0].State() == Established })
	if v.c[0].State() != Established {
		t.Fatalf("A not established: %v", v.c[0].State())
	}
	return v
}

func TestFinalACKLostKeepalive(t *testing.T) {
	v := finalACKLost(t)
	a := v.c[0]
	a.SetKeepAlive(true)
	v.run(10000*time.Second, func() bool { return a.State() == Closed })
	probes := v.times(0, func(s *Segment) bool {
		return s.Flags == wire.TCPFlagACK && len(s.Payload) == 0 && s.Seq == 1000
	})
	var want []time.Duration
	for k := 0; k < 9; k++ {
		want = append(want, 7200*time.Second+time.Duration(k)*75*time.Second)
	}
	if !eqDur(probes, want) {
		t.Errorf("keepalive probes (SEQ=SND.UNA-1) at %v, want %v", probes, want)
	}
	if d := v.now.Sub(t0); d != 7875*time.Second || !errors.Is(a.Err(), syscall.ETIMEDOUT) {
		t.Errorf("died at %v with %v, want 7875s ETIMEDOUT", d, a.Err())
	}
	rsts := v.times(0, func(s *Segment) bool { return s.Flags&wire.TCPFlagRST != 0 })
	if !eqDur(rsts, secs(7875)) {
		t.Errorf("RSTs at %v, want [7875s]", rsts)
	}
	if v.ctr[0].TCPKeepAlive != 9 || v.ctr[0].TCPAbortOnTimeout != 1 {
		t.Errorf("counters %+v", v.ctr[0])
	}
	// The server dropped its half-open request at 63 s.
	if b := v.c[1]; b.State() != Closed || !errors.Is(b.Err(), syscall.ETIMEDOUT) {
		t.Errorf("server %v %v", b.State(), b.Err())
	}
}

func TestFinalACKLostDataPending(t *testing.T) {
	v := finalACKLost(t)
	a := v.c[0]
	if n, err := a.Send(make([]byte, 1000)); n != 1000 || err != nil {
		t.Fatal(n, err)
	}
	rto := a.Info().RTO
	v.flush(0)
	v.run(2000*time.Second, func() bool { return a.State() == Closed })
	data := v.times(0, func(s *Segment) bool { return len(s.Payload) > 0 })
	// Expected (Linux with tail loss probes, tcp_early_retrans=3): sent at
	// 0; the loss probe fires at the PTO, capped at the RTO; then RTOs
	// doubling from rto up to 120 s; give up at the first expiry at or
	// after RetriesToTime(15, 200ms) = 924.6 s since the first
	// transmission.
	limit := RetriesToTime(15, 200*time.Millisecond)
	if limit != 924600*time.Millisecond {
		t.Fatalf("limit %v", limit)
	}
	want := []time.Duration{0, rto}
	at := rto
	var death time.Duration
	for k := 0; ; k++ {
		at += BackoffRTO(rto, k, 120*time.Second)
		if at >= limit {
			death = at
			break
		}
		want = append(want, at)
	}
	if !eqDur(data, want) {
		t.Errorf("data (re)transmissions at %v\nwant %v", data, want)
	}
	if d := v.now.Sub(t0); d != death || !errors.Is(a.Err(), syscall.ETIMEDOUT) {
		t.Errorf("died at %v with %v, want %v ETIMEDOUT", d, a.Err(), death)
	}
	t.Logf("rto %v: %d retransmissions (1 loss probe), ETIMEDOUT at %v", rto, len(data)-1, death)
	if len(data)-1 != 16 || v.ctr[0].TCPLossProbes != 1 || v.ctr[0].TCPTimeouts != 15 {
		t.Errorf("%d retransmissions, %d probes, %d timeouts; want 16, 1, 15", len(data)-1, v.ctr[0].TCPLossProbes, v.ctr[0].TCPTimeouts)
	}
}

func TestActivePassiveClose(t *testing.T) {
	v := newPair(t, cfgDefault(), cfgDefault(), 10*time.Millisecond)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established && v.c[0].State() == Established })
	a, b := v.c[0], v.c[1]
	a.CloseWrite()
	v.flush(0)
	v.run(2*time.Second, func() bool { return b.State() == CloseWait && a.State() == FinWait2 })
	// B closes 1 s later.
	v.advance(1040 * time.Millisecond)
	b.Close()
	v.flush(1)
	v.run(300*time.Second, func() bool { return a.State() == Closed && b.State() == Closed })
	wantA := "0s SYN-SENT|20ms ESTABLISHED|30ms FIN-WAIT-1|50ms FIN-WAIT-2|1.05s TIME-WAIT|1m1.05s CLOSED"
	wantB := "10ms SYN-RECEIVED|30ms ESTABLISHED|40ms CLOSE-WAIT|1.04s LAST-ACK|1.06s CLOSED"
	if got := strings.Join(v.states[0], "|"); got != wantA {
		t.Errorf("A states %s\nwant %s", got, wantA)
	}
	if got := strings.Join(v.states[1], "|"); got != wantB {
		t.Errorf("B states %s\nwant %s", got, wantB)
	}
	if a.Err() != nil || b.Err() != nil {
		t.Errorf("errors %v %v", a.Err(), b.Err())
	}
	t.Logf("\n%s", v.traceStr())
}
