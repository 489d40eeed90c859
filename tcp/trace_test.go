package tcp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// traceLine renders an event compactly, with sequence numbers relative to
// A's ISS (1000) and B's (5000).
func traceLine(e *Event) string {
	s := fmt.Sprintf("%v %s %s", e.Time.Sub(t0), e.Kind, e.State)
	switch e.Kind {
	case EvState:
		s += " from " + e.PrevState.String()
	case EvSend, EvRecv:
		iss, irs := uint32(1000), uint32(5000)
		if e.Kind == EvRecv {
			iss, irs = irs, iss
		}
		s += fmt.Sprintf(" %s seq=%d", flagStr(e.Flags), e.Seq-iss)
		if e.Flags&flagACK != 0 {
			s += fmt.Sprintf(" ack=%d", e.Ack-irs)
		}
		s += fmt.Sprintf(" len=%d", e.Len)
		if e.Reason != ReasonNone {
			s += " " + e.Reason.String()
		}
	case EvRTO:
		s += fmt.Sprintf(" rto=%v srtt=%v", e.RTO, e.SRTT)
	case EvCwnd:
		s += fmt.Sprintf(" cwnd=%d ssthresh=%d", e.Cwnd, e.Ssthresh)
	case EvWindow:
		s += fmt.Sprintf(" wnd=%d", e.Wnd)
	case EvFastOpen:
		s += " " + e.Reason.String()
	}
	return s
}

// TestTraceHandshakeFastRetransmitClose traces the client through a
// handshake, a transfer of six segments whose second is lost once (fast
// retransmit after three duplicate ACKs) and an orderly close.
func TestTraceHandshakeFastRetransmitClose(t *testing.T) {
	cfg := DefaultConfig()
	v := &vnet{t: t, now: t0, delay: 10 * time.Millisecond}
	var got []string
	v.c[0] = NewActive(&cfg, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	v.c[0].SetTracer(func(e *Event) { got = append(got, traceLine(e)) })
	v.flush(0)
	v.listen(&cfg)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a, b := v.c[0], v.c[1]
	mss := a.Info().SndMSS
	dropped := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && s.Seq == 1001+uint32(mss) && !dropped {
			dropped = true
			return true
		}
		return false
	}
	msg := make([]byte, 6*mss)
	if n, _ := a.Send(msg); n != len(msg) {
		t.Fatalf("sent %d", n)
	}
	a.CloseWrite()
	v.flush(0)
	buf := make([]byte, 65536)
	got1 := 0
	eof := false
	v.hook = func() {
		for !eof {
			n, err := b.Recv(buf)
			got1 += n
			if err != nil {
				eof = true
				b.CloseWrite()
			}
			if n == 0 {
				break
			}
		}
		v.flush(1)
	}
	v.run(10*time.Second, func() bool { return a.State() == TimeWait && b.State() == Closed })
	if got1 != len(msg) || a.State() != TimeWait {
		t.Fatalf("got %d bytes, A %v B %v", got1, a.State(), b.State())
	}
	want := strings.TrimSpace(wantTrace)
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("trace:\n%s\nwant:\n%s", g, want)
	}
}

const wantTrace = `
0s state SYN-SENT from CLOSED
0s send SYN-SENT S seq=0 len=0 syn
20ms recv SYN-SENT S. seq=0 ack=1 len=0
20ms state ESTABLISHED from SYN-SENT
20ms rto ESTABLISHED rto=220ms srtt=20ms
20ms window ESTABLISHED wnd=65535
20ms send ESTABLISHED . seq=1 ack=1 len=0 ack
30ms state FIN-WAIT-1 from ESTABLISHED
30ms send FIN-WAIT-1 . seq=1 ack=1 len=1448 new-data
30ms send FIN-WAIT-1 . seq=1449 ack=1 len=1448 new-data
30ms send FIN-WAIT-1 . seq=2897 ack=1 len=1448 new-data
30ms send FIN-WAIT-1 . seq=4345 ack=1 len=1448 new-data
30ms send FIN-WAIT-1 . seq=5793 ack=1 len=1448 new-data
30ms send FIN-WAIT-1 FP. seq=7241 ack=1 len=1448 new-data
50ms recv FIN-WAIT-1 . seq=1 ack=1449 len=0
50ms cwnd FIN-WAIT-1 cwnd=11 ssthresh=2147483647
50ms window FIN-WAIT-1 wnd=129536
50ms recv FIN-WAIT-1 . seq=1 ack=1449 len=0
50ms cwnd FIN-WAIT-1 cwnd=12 ssthresh=2147483647
50ms recv FIN-WAIT-1 . seq=1 ack=1449 len=0
50ms recv FIN-WAIT-1 . seq=1 ack=1449 len=0
50ms cwnd FIN-WAIT-1 cwnd=8 ssthresh=8
50ms send FIN-WAIT-1 . seq=1449 ack=1 len=1448 fast-retransmit
50ms recv FIN-WAIT-1 . seq=1 ack=1449 len=0
70ms recv FIN-WAIT-1 . seq=1 ack=8690 len=0
70ms state FIN-WAIT-2 from FIN-WAIT-1
70ms window FIN-WAIT-2 wnd=123776
70ms recv FIN-WAIT-2 F. seq=1 ack=8690 len=0
70ms state TIME-WAIT from FIN-WAIT-2
70ms window TIME-WAIT wnd=131072
70ms send TIME-WAIT . seq=8690 ack=2 len=0 ack
`

// TestTraceConstructorStates: a tracer installed right after NewActive or
// NewPassive reports the constructor's transition at the constructor's
// time (CLOSED -> SYN-SENT, LISTEN -> SYN-RECEIVED), before the SYN or
// SYN-ACK leaves; one installed later does not invent it.
func TestTraceConstructorStates(t *testing.T) {
	cfg := DefaultConfig()
	var log []string
	tracer := func(who string) Tracer {
		return func(e *Event) {
			l := fmt.Sprintf("%s %v %s %s", who, e.Time.Sub(t0), e.Kind, e.State)
			if e.Kind == EvState {
				l += " from " + e.PrevState.String()
			} else if e.Kind == EvSend || e.Kind == EvRecv {
				l += " " + flagStr(e.Flags) + " " + e.Reason.String()
			}
			log = append(log, strings.TrimSpace(l))
		}
	}
	a := NewActive(&cfg, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	a.SetTracer(tracer("A"))
	var syn, synack Segment
	a.Output(t0.Add(time.Millisecond), func(s *Segment) { syn = copySeg(s) })
	at := t0.Add(10 * time.Millisecond)
	b, err := NewPassive(&cfg, Tuple{Local: addrB, Remote: addrA}, 5000, &syn, at)
	if err != nil {
		t.Fatal(err)
	}
	b.SetTracer(tracer("B"))
	b.Output(at, func(s *Segment) { synack = copySeg(s) })
	a.Input(&synack, t0.Add(20*time.Millisecond))
	want := []string{
		"A 0s state SYN-SENT from CLOSED",
		"A 1ms send SYN-SENT S syn",
		"B 10ms state SYN-RECEIVED from LISTEN",
		"B 10ms send SYN-RECEIVED S. syn",
		"A 20ms recv SYN-SENT S.",
		"A 20ms state ESTABLISHED from SYN-SENT",
	}
	if g := strings.Join(log[:min(len(log), len(want))], "\n"); g != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant first:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	// Installed after the SYN left: no made-up transition.
	log = nil
	c := NewActive(&cfg, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	c.Output(t0, func(*Segment) {})
	c.SetTracer(tracer("C"))
	if len(log) != 0 {
		t.Errorf("late tracer got %q", log)
	}
}

// bulkPair sets up a connected pair with direct segment hand-off and
// returns a step function that moves data for one round and reports the
// data segments B received.
func bulkPair(tb testing.TB) (a, b *Conn, step func() int) {
	cfg := DefaultConfig()
	now := t0
	a = NewActive(&cfg, Tuple{Local: addrA, Remote: addrB}, 1000, now)
	var toA, toB []Segment
	var pool [2][][]byte
	cp := func(i int, s *Segment) Segment {
		d := *s
		if len(s.Payload) > 0 {
			var buf []byte
			if n := len(pool[i]); n > 0 {
				buf = pool[i][n-1][:0]
				pool[i] = pool[i][:n-1]
			}
			d.Payload = append(buf, s.Payload...)
		}
		return d
	}
	emitB := func(s *Segment) { toB = append(toB, cp(0, s)) }
	emitA := func(s *Segment) { toA = append(toA, cp(1, s)) }
	a.Output(now, emitB)
	b, err := NewPassive(&cfg, Tuple{Local: addrB, Remote: addrA}, 5000, &toB[0], now)
	if err != nil {
		tb.Fatal(err)
	}
	toB = toB[:0]
	b.Output(now, emitA)
	data := make([]byte, 64<<10)
	rbuf := make([]byte, 64<<10)
	step = func() int {
		segs := 0
		now = now.Add(10 * time.Microsecond)
		a.Send(data)
		for i := range toA {
			a.Input(&toA[i], now)
			if toA[i].Payload != nil {
				pool[1] = append(pool[1], toA[i].Payload)
			}
		}
		toA = toA[:0]
		a.Output(now, emitB)
		for i := range toB {
			b.Input(&toB[i], now)
			if toB[i].Payload != nil {
				pool[0] = append(pool[0], toB[i].Payload)
				segs++
			}
		}
		toB = toB[:0]
		for b.Readable() > 0 {
			b.Recv(rbuf)
		}
		if d := b.Deadline(); !d.IsZero() && !d.After(now) {
			b.Timeout(now)
		}
		if d := a.Deadline(); !d.IsZero() && !d.After(now) {
			a.Timeout(now)
		}
		b.Output(now, emitA)
		return segs
	}
	return a, b, step
}

// TestTraceOffNoAllocs: with no tracer a bulk transfer allocates nothing
// per segment (the trace hooks are nil checks only).
func TestTraceOffNoAllocs(t *testing.T) {
	if raceTrace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	_, _, step := bulkPair(t)
	for range 2000 { // warm up: buffers, pools and windows reach steady state
		step()
	}
	segs := 0
	allocs := testing.AllocsPerRun(2000, func() { segs += step() })
	if segs < 2000 {
		t.Fatalf("only %d segments moved", segs)
	}
	if allocs != 0 {
		t.Errorf("%.3f allocations per round with tracing off, want 0", allocs)
	}
}

// TestTraceOnNoAllocs: with a tracer on both ends the engine still
// allocates nothing per segment (one Event per connection, reused).
func TestTraceOnNoAllocs(t *testing.T) {
	if raceTrace {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	a, b, step := bulkPair(t)
	n := 0
	count := func(*Event) { n++ }
	a.SetTracer(count)
	b.SetTracer(count)
	for range 2000 {
		step()
	}
	segs := 0
	allocs := testing.AllocsPerRun(2000, func() { segs += step() })
	if segs < 2000 || n < 2*segs {
		t.Fatalf("%d segments moved, %d events", segs, n)
	}
	if allocs != 0 {
		t.Errorf("%.3f allocations per round with tracing on, want 0", allocs)
	}
}

// TestTraceOnBulk: with a tracer on both ends every segment is reported
// on both sides.
func TestTraceOnBulk(t *testing.T) {
	a, b, step := bulkPair(t)
	var sent, recv int
	a.SetTracer(func(e *Event) {
		if e.Kind == EvSend && e.Len > 0 {
			sent++
		}
	})
	b.SetTracer(func(e *Event) {
		if e.Kind == EvRecv && e.Len > 0 {
			recv++
		}
	})
	segs := 0
	for range 200 {
		segs += step()
	}
	if segs == 0 || recv != segs || sent < segs {
		t.Errorf("segments %d, traced sent %d received %d", segs, sent, recv)
	}
}
