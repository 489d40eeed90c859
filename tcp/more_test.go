package tcp

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

func TestOrphanFinWait2Timeout(t *testing.T) {
	v, a, b := established(t, nil)
	a.Close()
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if a.State() != FinWait2 || b.State() != CloseWait {
		t.Fatalf("%v %v", a.State(), b.State())
	}
	v.run(1000*time.Second, func() bool { return a.State() == Closed })
	// FIN at 1.03 s, its ACK back at 1.05 s: FIN-WAIT-2 for tcp_fin_timeout.
	if got := strings.Join(v.states[0][2:], "|"); got != "1.03s FIN-WAIT-1|1.05s FIN-WAIT-2|1m1.05s CLOSED" {
		t.Errorf("states %s", got)
	}
}

func TestTimeWaitReACKsFIN(t *testing.T) {
	v, a, b := established(t, nil)
	a.CloseWrite()
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	// A's final ACK is lost once: B retransmits its FIN, A (TIME-WAIT)
	// ACKs it again and restarts the 60 s.
	lost := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && !lost {
			lost = true
			return true
		}
		return false
	}
	b.CloseWrite()
	v.flush(1)
	v.run(300*time.Second, func() bool { return a.State() == Closed && b.State() == Closed })
	fins := v.times(1, func(s *Segment) bool { return s.Flags&wire.TCPFlagFIN != 0 })
	if len(fins) != 2 {
		t.Fatalf("FINs %v\n%s", fins, v.traceStr())
	}
	tw := strings.Join(v.states[0][len(v.states[0])-2:], "|")
	want := "1.14s TIME-WAIT|" + (fins[1] + 10*time.Millisecond + 60*time.Second).String() + " CLOSED"
	if tw != want {
		t.Errorf("A %s, want %s\n%s", tw, want, v.traceStr())
	}
}

func TestHalfClose(t *testing.T) {
	v, a, b := established(t, nil)
	a.CloseWrite()
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	msg := bytes.Repeat([]byte("half-close "), 5000)
	var got []byte
	sent := 0
	buf := make([]byte, 4096)
	v.hook = func() {
		for sent < len(msg) {
			n, _ := b.Send(msg[sent:])
			if n == 0 {
				break
			}
			sent += n
			if sent == len(msg) {
				b.CloseWrite()
			}
		}
		v.flush(1)
		for {
			n, _ := a.Recv(buf)
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		v.flush(0)
	}
	v.hook()
	v.run(100*time.Second, func() bool { return a.State() == Closed && b.State() == Closed })
	if !bytes.Equal(got, msg) || a.Err() != nil || b.Err() != nil {
		t.Fatalf("got %d of %d, errs %v %v", len(got), len(msg), a.Err(), b.Err())
	}
}

func TestOutOfOrderMemoryCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RMem = [3]int{4096, 16384, 16384}
	v, a, b := established(t, &cfg)
	_ = a
	in := b.Info()
	// Out-of-order data beyond the first hole: accepted up to the window
	// (= buffer), never more.
	for i := 1; i < 40; i++ {
		seg := Segment{Seq: in.RcvNxt + uint32(i)*1000, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 1000)}
		inject(v, b, seg)
		checkInvariants(t, b, "ooo")
	}
	if b.oooBytes > 16384 || b.oooBytes == 0 || b.Readable() != 0 {
		t.Fatalf("ooo bytes %d readable %d", b.oooBytes, b.Readable())
	}
	// The hole is filled: everything queued becomes readable.
	inject(v, b, Segment{Seq: in.RcvNxt, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 1000)})
	if b.oooBytes != 0 || uint64(b.Readable()) != b.Info().BytesReceived {
		t.Fatalf("after fill: ooo %d readable %d received %d", b.oooBytes, b.Readable(), b.Info().BytesReceived)
	}
}

func TestSynReceivedRST(t *testing.T) {
	syn := Segment{Seq: 777, Flags: wire.TCPFlagSYN, Window: 65535}
	c, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 5000, &syn, t0)
	if err != nil {
		t.Fatal(err)
	}
	c.Output(t0, func(*Segment) {})
	c.Input(&Segment{Seq: 778, Flags: wire.TCPFlagRST}, t0)
	if c.State() != Closed {
		t.Fatalf("state %v", c.State())
	}
	if _, err := NewPassive(cfgDefault(), Tuple{}, 1, &Segment{Flags: wire.TCPFlagSYN | wire.TCPFlagACK}, t0); err == nil {
		t.Fatal("SYN-ACK accepted as SYN")
	}
}

func TestTimeWaitAcceptsSYN(t *testing.T) {
	v, a, b := established(t, nil)
	a.CloseWrite()
	v.flush(0)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	b.CloseWrite()
	v.flush(1)
	v.advance(v.now.Sub(t0) + 100*time.Millisecond)
	if a.State() != TimeWait {
		t.Fatal(a.State())
	}
	rn := a.Info().RcvNxt
	old := Segment{Seq: rn - 10, Flags: wire.TCPFlagSYN}
	newer := Segment{Seq: rn + 100000, Flags: wire.TCPFlagSYN}
	if a.AcceptsSYN(&old) || !a.AcceptsSYN(&newer) {
		t.Errorf("AcceptsSYN old %v new %v", a.AcceptsSYN(&old), a.AcceptsSYN(&newer))
	}
	newer.Options.HasTS = true
	newer.Options.TSVal = a.tsRecent - 5
	if a.AcceptsSYN(&newer) {
		t.Error("SYN failing PAWS accepted")
	}
	if d := a.NextISS() - a.Info().SndNxt; d != 65537 {
		t.Error(d)
	}
}

func TestPersistGivesUp(t *testing.T) {
	cfgB := DefaultConfig()
	cfgB.RMem = [3]int{4096, 16384, 16384}
	v := newPair(t, cfgDefault(), &cfgB, 0)
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a := v.c[0]
	data := make([]byte, 100000)
	sent := 0
	v.hook = func() {
		for sent < len(data) {
			n, _ := a.Send(data[sent:])
			if n == 0 {
				break
			}
			sent += n
		}
		v.flush(0)
	}
	v.hook()
	v.advance(100 * time.Millisecond)
	if a.Info().SndWnd != 0 {
		t.Fatal("window not closed")
	}
	rto := a.Info().RTO
	// From now on B is gone: probes go unanswered.
	v.drop = func(from int, s *Segment) bool { return from == 1 }
	v.trace = nil
	v.run(10000*time.Second, func() bool { return a.State() == Closed })
	probes := v.times(0, func(s *Segment) bool { return len(s.Payload) == 0 && s.Flags == wire.TCPFlagACK })
	// The persist timer started when the window closed (time 0): probes at
	// cumulative RTO*2^k (capped at 120 s); 15 answered-never probes, then
	// the connection dies at the next expiry.
	var want []time.Duration
	at := time.Duration(0)
	for k := 0; k < 16; k++ {
		at += BackoffRTO(rto, k, 120*time.Second)
		if k < 15 {
			want = append(want, at)
		}
	}
	if !eqDur(probes, want) || v.now.Sub(t0) != at {
		t.Errorf("probes %v\nwant   %v\ndied at %v want %v (%v)", probes, want, v.now.Sub(t0), at, a.Err())
	}
	if !errors.Is(a.Err(), syscall.ETIMEDOUT) || v.ctr[0].TCPWinProbe != 15 {
		t.Errorf("err %v probes %d", a.Err(), v.ctr[0].TCPWinProbe)
	}
}

func TestKeepaliveParams(t *testing.T) {
	v, a, b := established(t, nil)
	a.SetKeepAlive(true)
	a.SetKeepAliveParams(10*time.Second, 5*time.Second, 3)
	start := v.now
	// While B answers, probes come every 10 s of idleness.
	v.advance(v.now.Sub(t0) + 25*time.Second)
	if n := v.ctr[0].TCPKeepAlive; n != 2 || a.State() != Established {
		t.Fatalf("keepalives %d state %v", n, a.State())
	}
	// B disappears: 3 unanswered probes 5 s apart, then reset.
	v.c[1] = nil
	_ = b
	fromB := v.times(1, func(*Segment) bool { return true })
	lastRecv := fromB[len(fromB)-1] + v.delay
	v.trace = nil
	v.run(1000*time.Second, func() bool { return a.State() == Closed })
	ka := v.times(0, func(s *Segment) bool { return s.Flags == wire.TCPFlagACK })
	rst := v.times(0, func(s *Segment) bool { return s.Flags&wire.TCPFlagRST != 0 })
	base := lastRecv // the last ACK A received
	_ = start
	want := []time.Duration{base + 10*time.Second, base + 15*time.Second, base + 20*time.Second}
	if !eqDur(ka, want) || !eqDur(rst, []time.Duration{base + 25*time.Second}) || !errors.Is(a.Err(), syscall.ETIMEDOUT) {
		t.Errorf("probes %v want %v; rst %v; err %v", ka, want, rst, a.Err())
	}
}

func TestPathMTUDrop(t *testing.T) {
	v, a, b := established(t, nil)
	// The path MTU falls to 1280: A's full-sized segments are dropped
	// until the stack reports it (ICMP) with SetMTU.
	v.drop = func(from int, s *Segment) bool { return from == 0 && len(s.Payload) > 1280-40-12 }
	msg := make([]byte, 10*1448)
	for i := range msg {
		msg[i] = byte(i)
	}
	a.Send(msg)
	v.flush(0)
	v.advance(v.now.Sub(t0) + 5*time.Millisecond)
	a.SetMTU(1280)
	if a.Info().SndMSS != 1280-40-12 || a.Info().AdvMSS != 1460 {
		t.Fatalf("mss %d adv %d", a.Info().SndMSS, a.Info().AdvMSS)
	}
	checkInvariants(t, a, "resegmented")
	v.flush(0)
	var got []byte
	buf := make([]byte, 65536)
	v.hook = func() {
		n, _ := b.Recv(buf)
		got = append(got, buf[:n]...)
		v.flush(1)
	}
	v.run(10*time.Second, func() bool { return len(got) == len(msg) })
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d of %d", len(got), len(msg))
	}
	if k := v.ctr[0]; k.TCPTimeouts != 0 {
		t.Errorf("RTOs %d: resegmented data should go at once", k.TCPTimeouts)
	}
	checkInvariants(t, a, "after")
}

func TestHandshakeOptionNegotiation(t *testing.T) {
	syn := Segment{Seq: 100, Flags: wire.TCPFlagSYN, Window: 1000}
	syn.Options = wire.TCPOptions{MSS: 9000, HasMSS: true, WScale: 15, HasWScale: true, SACKPermitted: true, HasTS: true, TSVal: 777}
	c, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 5000, &syn, t0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Segment
	c.Output(t0, func(s *Segment) { out = append(out, copySeg(s)) })
	if len(out) != 1 {
		t.Fatalf("%+v", out)
	}
	sa := out[0]
	o := sa.Options
	if sa.Flags != wire.TCPFlagSYN|wire.TCPFlagACK || sa.Seq != 5000 || sa.Ack != 101 || sa.Window != 65535 ||
		!o.HasMSS || o.MSS != 1460 || !o.HasWScale || o.WScale != 7 || !o.SACKPermitted || !o.HasTS || o.TSEcr != 777 {
		t.Fatalf("SYN-ACK %+v", sa)
	}
	ack := Segment{Seq: 101, Ack: 5001, Flags: wire.TCPFlagACK, Window: 10}
	ack.Options.HasTS = true
	ack.Options.TSVal = 778
	ack.Options.TSEcr = o.TSVal
	c.Input(&ack, t0.Add(time.Millisecond))
	in := c.Info()
	// Shift clamped to 14; SYN window unscaled, later windows scaled; MSS
	// limited by our MTU and the timestamp option.
	if in.State != Established || in.SndWScale != 14 || in.SndWnd != 10<<14 || in.SndMSS != 1460-12 || !in.Options.SACK || !in.Options.Timestamps {
		t.Fatalf("info %+v", in)
	}
	// A peer without options: MSS 536, no scaling, no SACK, no timestamps.
	syn2 := Segment{Seq: 100, Flags: wire.TCPFlagSYN, Window: 1000}
	c2, _ := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 5000, &syn2, t0)
	out = nil
	c2.Output(t0, func(s *Segment) { out = append(out, copySeg(s)) })
	if o := out[0].Options; o.HasWScale || o.SACKPermitted || o.HasTS || !o.HasMSS {
		t.Fatalf("SYN-ACK options to a bare SYN: %+v", o)
	}
	c2.Input(&Segment{Seq: 101, Ack: 5001, Flags: wire.TCPFlagACK, Window: 1000}, t0)
	if in := c2.Info(); in.SndMSS != 536 || in.SndWnd != 1000 || in.RcvWScale != 0 {
		t.Fatalf("info %+v", in)
	}
}
