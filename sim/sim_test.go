package sim

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

func TestEventOrder(t *testing.T) {
	s := New(1)
	var got []int
	s.At(2*time.Second, func() { got = append(got, 3) })
	s.At(time.Second, func() {
		got = append(got, 1)
		s.After(0, func() { got = append(got, 2) }) // same time, later sequence
		s.After(2*time.Second, func() { got = append(got, 5) })
	})
	s.At(2*time.Second, func() { got = append(got, 4) })
	s.At(time.Hour, func() { got = append(got, 99) })
	if err := s.Run(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := []int{1, 2, 3, 4, 5}
	if len(got) != len(want) {
		t.Fatalf("events ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events ran %v, want %v", got, want)
		}
	}
	if s.Elapsed() != 3*time.Second {
		t.Errorf("clock at %v after the last event, want 3s", s.Elapsed())
	}
	if s.Pending() != 1 {
		t.Errorf("%d events pending, want the one beyond the limit", s.Pending())
	}
}

func TestEventBudget(t *testing.T) {
	s := New(1)
	s.MaxEvents = 100
	var loop func()
	loop = func() { s.After(0, loop) }
	s.At(0, loop)
	if err := s.Run(time.Second); err == nil {
		t.Fatal("a livelocked simulation ran without error")
	}
}

// synPacket builds an IPv4 SYN from src to dst with valid checksums.
func synPacket(t *testing.T, src, dst netip.AddrPort, seq uint32) []byte {
	t.Helper()
	opts := wire.TCPOptions{MSS: 1460, HasMSS: true}
	th := wire.TCPHeader{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Flags: wire.TCPFlagSYN, Window: 65535, Options: &opts}
	n := th.Len()
	pkt := make([]byte, 20+n)
	if _, err := wire.BuildTCP(pkt[20:], &th, nil, wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.BuildIPv4(pkt, &wire.IPv4Header{TTL: 64, Protocol: wire.ProtoTCP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: n}); err != nil {
		t.Fatal(err)
	}
	return pkt
}

// A SYN to a port nobody listens on is answered with RST|ACK acking the SYN.
func TestResetWhenNothingListens(t *testing.T) {
	e := NewEnv(1, Impairment{Delay: 5 * ms}, Impairment{Delay: 5 * ms})
	var pcap bytes.Buffer
	if err := e.Sim.CapturePcap(&pcap); err != nil {
		t.Fatal(err)
	}
	src := netip.AddrPortFrom(e.A.Addr, 40000)
	e.Sim.At(time.Second, func() { e.Link.AB.send(synPacket(t, src, netip.AddrPortFrom(e.B.Addr, 81), 1000)) })
	if err := e.Sim.Run(time.Minute); err != nil {
		t.Fatal(err)
	}
	rst := e.Sim.Trace().Find(func(ev *Event) bool { return ev.Host == "B" && ev.Kind == KindSend })
	if rst == nil {
		t.Fatalf("B sent nothing:\n%s", text(e.Sim))
	}
	if rst.Flags != "R." || *rst.Seq != 0 || rst.Ack == nil || *rst.Ack != 1001 || rst.T != time.Second+5*ms {
		t.Errorf("B answered %s, want R. seq 0 ack 1001 at 1.005 s", rst)
	}
	in := e.Sim.Trace().Find(func(ev *Event) bool { return ev.Host == "A" && ev.Kind == KindRecv })
	if in == nil || in.Flags != "R." || in.T != time.Second+10*ms {
		t.Errorf("A received %v, want the RST at 1.010 s", in)
	}
	// A does not answer a RST.
	if n := e.Sim.Trace().Count(func(ev *Event) bool { return ev.Host == "A" && ev.Kind == KindSend }); n != 0 {
		t.Errorf("A sent %d segments in reply to a RST", n)
	}
	// The pcap holds the RST (the injected SYN bypassed the host's transmit).
	if got := pcapCount(t, pcap.Bytes()); got != 1 {
		t.Errorf("pcap holds %d packets, want 1", got)
	}
}

func pcapCount(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("pcap of %d bytes", len(b))
	}
	n := 0
	for off := 24; off < len(b); n++ {
		if off+16 > len(b) {
			t.Fatalf("truncated pcap record header at %d", off)
		}
		l := int(uint32(b[off+8]) | uint32(b[off+9])<<8 | uint32(b[off+10])<<16 | uint32(b[off+11])<<24)
		off += 16 + l
	}
	return n
}

func text(s *Sim) string {
	var b bytes.Buffer
	s.Trace().WriteText(&b, nil)
	return b.String()
}

// Drop rules see every packet a host sends, and random loss is decided by
// the seed alone.
func TestLinkRulesAndLossDeterministic(t *testing.T) {
	run := func(seed uint64) (string, DirStats) {
		e := NewEnv(seed, Impairment{Delay: 5 * ms, Loss: 0.3}, Impairment{})
		r := e.Sim.AddDropRule(DropNth("A", 2))
		for i := range 50 {
			src := netip.AddrPortFrom(e.A.Addr, uint16(40000+i))
			e.Sim.At(time.Duration(i)*ms, func() { e.Link.AB.send(synPacket(t, src, netip.AddrPortFrom(e.B.Addr, 81), 7)) })
		}
		if err := e.Sim.Run(time.Minute); err != nil {
			t.Fatal(err)
		}
		if r.Dropped != 1 {
			t.Errorf("rule dropped %d packets, want 1", r.Dropped)
		}
		return text(e.Sim), e.Link.AB.Stats
	}
	t1, st := run(7)
	t2, _ := run(7)
	if t1 != t2 {
		t.Fatal("same seed gave different traces")
	}
	t3, _ := run(8)
	if t1 == t3 {
		t.Error("different seeds gave the same losses")
	}
	if st.Sent != 50 || st.RuleDropped != 1 || st.Lost < 5 || st.Lost > 25 || st.Delivered != 50-1-st.Lost {
		t.Errorf("link stats %+v: want 50 sent, 1 rule drop, about 15 lost, the rest delivered", st)
	}
}

func netipAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// With automatic reading paused, Recv reads exactly what the application
// asks for, and reading opens the window again.
func TestRecvWhilePaused(t *testing.T) {
	e := NewEnv(1, Impairment{Delay: 5 * ms}, Impairment{Delay: 5 * ms})
	var server *Conn
	e.B.Listen(80, Handler{OnOpen: func(c *Conn) { server = c; c.PauseReading(true) }})
	e.Sim.At(0, func() {
		e.A.Dial(e.Server, Handler{OnOpen: func(c *Conn) { c.Write(filler(5000)) }})
	})
	var got []int
	e.Sim.At(time.Second, func() { got = append(got, server.Recv(1000), server.Recv(100000), server.Recv(10)) })
	if err := e.Sim.Run(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if server == nil || len(got) != 3 || got[0] != 1000 || got[1] != 4000 || got[2] != 0 || server.BytesRead != 5000 {
		t.Fatalf("Recv returned %v, read %d; want [1000 4000 0] and 5000\n%s", got, server.BytesRead, text(e.Sim))
	}
}
