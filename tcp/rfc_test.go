package tcp

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// established returns an established pair on a 10 ms link, idle.
func established(t *testing.T, cfg *Config) (*vnet, *Conn, *Conn) {
	if cfg == nil {
		cfg = cfgDefault()
	}
	v := newPair(t, cfg, cfg, 10*time.Millisecond)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	v.advance(v.now.Sub(t0) + time.Second)
	return v, v.c[0], v.c[1]
}

// inject feeds seg to c at v.now and returns what c sends in response.
func inject(v *vnet, c *Conn, seg Segment) []Segment {
	c.Input(&seg, v.now)
	var out []Segment
	c.Output(v.now, func(s *Segment) { out = append(out, copySeg(s)) })
	return out
}

func TestRSTHandling(t *testing.T) {
	v, a, _ := established(t, nil)
	in := a.Info()
	// In-window RST not at RCV.NXT: challenge ACK, connection survives.
	out := inject(v, a, Segment{Seq: in.RcvNxt + 100, Flags: wire.TCPFlagRST})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagACK || out[0].Ack != in.RcvNxt || out[0].Seq != in.SndNxt {
		t.Fatalf("want one challenge ACK, got %+v", out)
	}
	// A second one within 500 ms is rate limited (tcp_invalid_ratelimit).
	v.now = v.now.Add(499 * time.Millisecond)
	if out := inject(v, a, Segment{Seq: in.RcvNxt + 200, Flags: wire.TCPFlagRST}); len(out) != 0 {
		t.Fatalf("challenge ACK not rate limited: %+v", out)
	}
	v.now = v.now.Add(time.Millisecond)
	if out := inject(v, a, Segment{Seq: in.RcvNxt + 200, Flags: wire.TCPFlagRST}); len(out) != 1 {
		t.Fatalf("challenge ACK after 500 ms missing: %+v", out)
	}
	if v.ctr[0].TCPChallengeACK != 2 || v.ctr[0].TCPACKSkippedChallenge != 1 {
		t.Errorf("counters challenge %d skipped %d", v.ctr[0].TCPChallengeACK, v.ctr[0].TCPACKSkippedChallenge)
	}
	// Out-of-window RST: silently dropped.
	if out := inject(v, a, Segment{Seq: in.RcvNxt + 1<<30, Flags: wire.TCPFlagRST}); len(out) != 0 || a.State() != Established {
		t.Fatalf("out-of-window RST: %+v %v", out, a.State())
	}
	// Exact RST: connection reset.
	if out := inject(v, a, Segment{Seq: in.RcvNxt, Flags: wire.TCPFlagRST}); len(out) != 0 {
		t.Fatalf("reply to RST: %+v", out)
	}
	if a.State() != Closed || !errors.Is(a.Err(), syscall.ECONNRESET) || v.ctr[0].EstabResets != 1 {
		t.Fatalf("state %v err %v resets %d", a.State(), a.Err(), v.ctr[0].EstabResets)
	}
	if _, err := a.Recv(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Recv err %v", err)
	}
	if _, err := a.Send([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Send err %v", err)
	}
}

func TestSYNAndBlindDataChallenge(t *testing.T) {
	v, a, _ := established(t, nil)
	in := a.Info()
	// SYN in ESTABLISHED (RFC 5961 4): challenge ACK.
	out := inject(v, a, Segment{Seq: in.RcvNxt + 5, Flags: wire.TCPFlagSYN})
	if len(out) != 1 || out[0].Flags != wire.TCPFlagACK || out[0].Ack != in.RcvNxt || a.State() != Established {
		t.Fatalf("SYN: %+v %v", out, a.State())
	}
	if v.ctr[0].TCPSYNChallenge != 1 {
		t.Errorf("TCPSYNChallenge %d", v.ctr[0].TCPSYNChallenge)
	}
	// Blind data injection with an ACK far below SND.UNA (RFC 5961 5):
	// challenge ACK, data not accepted.
	v.now = v.now.Add(time.Second)
	out = inject(v, a, Segment{Seq: in.RcvNxt, Ack: in.SndUna - 1<<30, Flags: wire.TCPFlagACK, Window: 100, Payload: []byte("evil")})
	if len(out) != 1 || a.Readable() != 0 || out[0].Ack != in.RcvNxt {
		t.Fatalf("blind data: %+v readable %d", out, a.Readable())
	}
	// ACK for data never sent: challenge ACK, dropped.
	v.now = v.now.Add(time.Second)
	out = inject(v, a, Segment{Seq: in.RcvNxt, Ack: in.SndNxt + 1000, Flags: wire.TCPFlagACK, Window: 100, Payload: []byte("evil")})
	if len(out) != 1 || a.Readable() != 0 || a.Info().SndUna != in.SndUna {
		t.Fatalf("ack of unsent: %+v readable %d", out, a.Readable())
	}
	if v.ctr[0].TCPChallengeACK != 3 {
		t.Errorf("TCPChallengeACK %d", v.ctr[0].TCPChallengeACK)
	}
}

func TestSynSentRST(t *testing.T) {
	a := NewActive(cfgDefault(), Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	a.Output(t0, func(*Segment) {})
	// RST without acceptable ACK: ignored.
	a.Input(&Segment{Seq: 0, Ack: 5, Flags: wire.TCPFlagRST | wire.TCPFlagACK}, t0)
	if a.State() != SynSent {
		t.Fatalf("state %v", a.State())
	}
	// Bad ACK without RST: answered with RST seq=SEG.ACK.
	a.Input(&Segment{Seq: 77, Ack: 5, Flags: wire.TCPFlagACK}, t0)
	var out []Segment
	a.Output(t0, func(s *Segment) { out = append(out, copySeg(s)) })
	if len(out) != 1 || out[0].Flags != wire.TCPFlagRST || out[0].Seq != 5 {
		t.Fatalf("want RST seq=5, got %+v", out)
	}
	// RST acknowledging our SYN: connection refused.
	a.Input(&Segment{Seq: 0, Ack: 1001, Flags: wire.TCPFlagRST | wire.TCPFlagACK}, t0)
	if a.State() != Closed || !errors.Is(a.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("state %v err %v", a.State(), a.Err())
	}
}

func TestRFC1337(t *testing.T) {
	for _, rfc1337 := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.RFC1337 = rfc1337
		v, a, b := established(t, &cfg)
		a.CloseWrite()
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		b.CloseWrite()
		v.flush(1)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		if a.State() != TimeWait {
			t.Fatalf("state %v", a.State())
		}
		inject(v, a, Segment{Seq: a.Info().RcvNxt, Flags: wire.TCPFlagRST})
		want := Closed
		if rfc1337 {
			want = TimeWait
		}
		if a.State() != want {
			t.Errorf("rfc1337=%v: state %v after RST in TIME-WAIT, want %v", rfc1337, a.State(), want)
		}
	}
}

func TestCloseWithUnreadDataSendsRST(t *testing.T) {
	v, a, b := established(t, nil)
	a.Send([]byte("unread"))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if b.Readable() != 6 {
		t.Fatal(b.Readable())
	}
	v.trace = nil
	b.Close()
	v.flush(1)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if len(v.trace) != 1 || v.trace[0].seg.Flags != wire.TCPFlagRST|wire.TCPFlagACK || b.State() != Closed {
		t.Fatalf("trace %s state %v", v.traceStr(), b.State())
	}
	if a.State() != Closed || !errors.Is(a.Err(), syscall.ECONNRESET) {
		t.Fatalf("peer %v %v", a.State(), a.Err())
	}
	if v.ctr[1].TCPAbortOnClose != 1 || v.ctr[1].OutRsts != 1 {
		t.Errorf("counters %+v", v.ctr[1])
	}
}

func TestPAWS(t *testing.T) {
	v, a, _ := established(t, nil)
	in := a.Info()
	seg := Segment{Seq: in.RcvNxt, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: []byte("old")}
	seg.Options.HasTS = true
	seg.Options.TSVal = a.tsRecent - 1
	out := inject(v, a, seg)
	if a.Readable() != 0 || len(out) != 1 || v.ctr[0].TCPPAWSEstab != 1 {
		t.Fatalf("PAWS: readable %d out %+v", a.Readable(), out)
	}
	seg.Options.TSVal = a.tsRecent + 1
	inject(v, a, seg)
	if a.Readable() != 3 {
		t.Fatalf("fresh segment not accepted")
	}
}

func TestDelayedACK(t *testing.T) {
	v, a, b := established(t, nil)
	// Leave quick-ACK mode (and make the last receive recent: a gap longer
	// than the RTO since the last data, or since establishment, re-enters
	// quick-ACK mode like Linux).
	b.quick = 0
	b.lastDataRecv = v.now
	v.trace = nil
	a.Send(make([]byte, 100))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 200*time.Millisecond)
	// B's ACK comes 40 ms after the data arrived (10 ms link).
	acks := v.times(1, func(s *Segment) bool { return true })
	data := v.times(0, func(s *Segment) bool { return len(s.Payload) > 0 })
	if len(acks) != 1 || len(data) != 1 || acks[0]-data[0] != 50*time.Millisecond {
		t.Fatalf("data %v acks %v\n%s", data, acks, v.traceStr())
	}
	if v.ctr[1].DelayedACKs != 1 {
		t.Errorf("DelayedACKs %d", v.ctr[1].DelayedACKs)
	}
	// Two full-sized segments: ACKed at once, no delay.
	v.trace = nil
	a.Send(make([]byte, 2*a.Info().SndMSS))
	v.flush(0)
	v.advance(v.now.Sub(t0) + 200*time.Millisecond)
	acks = v.times(1, func(s *Segment) bool { return true })
	data = v.times(0, func(s *Segment) bool { return len(s.Payload) > 0 })
	if len(acks) != 1 || len(data) != 2 || acks[0]-data[1] != 10*time.Millisecond {
		t.Fatalf("data %v acks %v\n%s", data, acks, v.traceStr())
	}
}

func TestNagle(t *testing.T) {
	for _, nodelay := range []bool{false, true} {
		v, a, b := established(t, nil)
		b.quick = 0
		a.SetNoDelay(nodelay)
		v.trace = nil
		for i := 0; i < 3; i++ {
			a.Send([]byte("x"))
			v.flush(0)
		}
		v.advance(v.now.Sub(t0) + 300*time.Millisecond)
		seen := map[uint32]bool{}
		data := v.times(0, func(s *Segment) bool {
			fresh := len(s.Payload) > 0 && !seen[s.Seq]
			seen[s.Seq] = true
			return fresh
		})
		// Nagle: first byte at once, the other two wait for its ACK (delayed
		// 40 ms by B) and go together.
		want := 2
		if nodelay {
			want = 3
		}
		if len(data) != want {
			t.Errorf("nodelay=%v: %d data segments\n%s", nodelay, len(data), v.traceStr())
		}
	}
}

func TestUserTimeout(t *testing.T) {
	v, a, _ := established(t, nil)
	a.SetUserTimeout(10 * time.Second)
	v.drop = func(int, *Segment) bool { return true }
	start := v.now
	a.Send(make([]byte, 100))
	v.flush(0)
	v.run(100*time.Second, func() bool { return a.State() == Closed })
	if d := v.now.Sub(start); d != 10*time.Second || !errors.Is(a.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("closed after %v with %v, want 10s ETIMEDOUT", d, a.Err())
	}
}

func TestAbortSendsRST(t *testing.T) {
	v, a, b := established(t, nil)
	a.Abort()
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if a.State() != Closed || b.State() != Closed || !errors.Is(b.Err(), syscall.ECONNRESET) {
		t.Fatalf("%v %v %v", a.State(), b.State(), b.Err())
	}
}

func TestResetFor(t *testing.T) {
	r, ok := ResetFor(&Segment{Seq: 100, Flags: wire.TCPFlagSYN, Payload: []byte("ab")})
	if !ok || r.Seq != 0 || r.Ack != 103 || r.Flags != wire.TCPFlagRST|wire.TCPFlagACK {
		t.Errorf("%+v", r)
	}
	r, ok = ResetFor(&Segment{Seq: 100, Ack: 555, Flags: wire.TCPFlagACK})
	if !ok || r.Seq != 555 || r.Flags != wire.TCPFlagRST {
		t.Errorf("%+v", r)
	}
	if _, ok := ResetFor(&Segment{Flags: wire.TCPFlagRST}); ok {
		t.Error("RST answered")
	}
}
