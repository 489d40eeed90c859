package ustack

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// sinkEndpoint is a link endpoint whose reads block until Close and whose
// writes are counted and discarded: the fuzz and flood tests feed the stack
// synchronously through Stack.input and only need replies to go somewhere.
type sinkEndpoint struct {
	mtu    int
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	writes int
	// onWrite, if set, sees every packet written (under the sink's lock).
	onWrite func(pkt []byte)
}

func newSink(mtu int) *sinkEndpoint { return &sinkEndpoint{mtu: mtu, done: make(chan struct{})} }

func (e *sinkEndpoint) MTU() int { return e.mtu }

func (e *sinkEndpoint) ReadPacket(buf []byte) (int, error) {
	<-e.done
	return 0, net.ErrClosed
}

func (e *sinkEndpoint) WritePacket(pkt []byte) error {
	e.mu.Lock()
	e.writes++
	if e.onWrite != nil {
		e.onWrite(pkt)
	}
	e.mu.Unlock()
	return nil
}

func (e *sinkEndpoint) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

// fuzzStack is one stack shared by all fuzz iterations of a process: a
// listener on port 80 (v4 and v6) and a connection stuck in SYN-SENT.
type fuzzStack struct {
	s   *Stack
	ifc *iface
	in  *inputCtx
	mu  sync.Mutex
}

var (
	fuzzOnce sync.Once
	fuzzS    *fuzzStack
)

func getFuzzStack(t testing.TB) *fuzzStack {
	fuzzOnce.Do(func() {
		s, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		ep := newSink(1500)
		if err := s.AddInterface("f0", ep, addr4, addr6); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Listen("tcp", ":80"); err != nil {
			t.Fatal(err)
		}
		go s.Dial("tcp", "10.0.0.1:9") // never answered: stays in SYN-SENT
		s.mu.Lock()
		ifc := s.ifaces["f0"]
		s.mu.Unlock()
		fuzzS = &fuzzStack{s: s, ifc: ifc, in: newInputCtx(s)}
	})
	return fuzzS
}

// fixChecksums repairs the IPv4 header checksum and the TCP/ICMP checksum
// of pkt in place where the headers allow it, so that mutated packets get
// past the checksum checks and reach the deeper parsers.
func fixChecksums(pkt []byte) {
	if len(pkt) < 1 {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return
		}
		hl := int(pkt[0]&0x0f) * 4
		if hl < 20 || hl > len(pkt) {
			return
		}
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], wire.Checksum(pkt[:hl], 0))
		tl := int(binary.BigEndian.Uint16(pkt[2:4]))
		if tl < hl || tl > len(pkt) {
			return
		}
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return
		}
		l4 := pkt[hl:tl]
		src := netip.AddrFrom4([4]byte(pkt[12:16]))
		dst := netip.AddrFrom4([4]byte(pkt[16:20]))
		switch pkt[9] {
		case wire.ProtoTCP:
			if len(l4) >= 20 {
				l4[16], l4[17] = 0, 0
				binary.BigEndian.PutUint16(l4[16:], wire.Checksum(l4, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(l4))))
			}
		case wire.ProtoICMP:
			if len(l4) >= 8 {
				l4[2], l4[3] = 0, 0
				binary.BigEndian.PutUint16(l4[2:], wire.Checksum(l4, 0))
			}
		}
	case 6:
		if len(pkt) < 40 {
			return
		}
		pl := int(binary.BigEndian.Uint16(pkt[4:6]))
		if 40+pl > len(pkt) {
			return
		}
		l4 := pkt[40 : 40+pl]
		src := netip.AddrFrom16([16]byte(pkt[8:24]))
		dst := netip.AddrFrom16([16]byte(pkt[24:40]))
		switch pkt[6] {
		case wire.ProtoTCP:
			if len(l4) >= 20 {
				l4[16], l4[17] = 0, 0
				binary.BigEndian.PutUint16(l4[16:], wire.Checksum(l4, wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(l4))))
			}
		case wire.ProtoICMPv6:
			if len(l4) >= 8 {
				l4[2], l4[3] = 0, 0
				binary.BigEndian.PutUint16(l4[2:], wire.Checksum(l4, wire.PseudoHeaderSum(src, dst, wire.ProtoICMPv6, len(l4))))
			}
		}
	}
}

// splitPackets splits fuzz input into packets: each packet is a 2-byte
// big-endian length followed by that many bytes (a short last packet is
// kept as it is). At most 8 packets.
func splitPackets(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && len(out) < 8 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// corpusPacket frames packets for FuzzStackInput: mode byte then packets.
func corpusPacket(mode byte, pkts ...[]byte) []byte {
	out := []byte{mode}
	for _, p := range pkts {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// fuzzSeeds returns the interesting packets of the checked-in corpus.
func fuzzSeeds(t testing.TB) [][]byte {
	them4 := netip.AddrPortFrom(peer4, 40000)
	us4 := netip.AddrPortFrom(addr4.Addr(), 80)
	them6 := netip.AddrPortFrom(peer6, 40000)
	us6 := netip.AddrPortFrom(addr6.Addr(), 80)
	synOpts := &wire.TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true, HasTS: true, TSVal: 1}
	syn := wire.TCPHeader{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535, Options: synOpts}
	ack := wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}
	data := wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 512}
	rst := wire.TCPHeader{Seq: 1001, Flags: wire.TCPFlagRST}
	fin := wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 512}
	tfo := &wire.TCPOptions{MSS: 1460, HasMSS: true, HasFastOpen: true, CookieLen: 8}
	synTFO := wire.TCPHeader{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535, Options: tfo}
	sack := &wire.TCPOptions{NumSACK: 2, SACK: [4]wire.SACKBlock{{Left: 10, Right: 20}, {Left: 30, Right: 40}}}
	ackSack := wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512, Options: sack}

	syn4 := rawTCP4(them4, us4, syn, nil)
	syn6 := rawTCP6(them6, us6, syn, nil)
	echo4 := rawIP4(peer4, addr4.Addr(), wire.ProtoICMP, 64, echoRequest(8, 1, 1, []byte("ping"), 0))
	echo6 := rawIP6(peer6, addr6.Addr(), wire.ProtoICMPv6, echoRequest(128, 1, 1, []byte("ping"),
		wire.PseudoHeaderSum(peer6, addr6.Addr(), wire.ProtoICMPv6, 12)))

	// ICMP errors quoting a segment we could have sent.
	quoted4 := rawTCP4(netip.AddrPortFrom(addr4.Addr(), 33000), netip.AddrPortFrom(peer4, 9), syn, nil)
	unreach4 := make([]byte, 8+len(quoted4))
	unreach4[0], unreach4[1] = 3, 3
	copy(unreach4[8:], quoted4)
	wire.ICMPv4(unreach4).ComputeChecksum()
	frag4 := append([]byte(nil), unreach4...)
	frag4[1] = 4
	binary.BigEndian.PutUint16(frag4[6:], 576)
	wire.ICMPv4(frag4).ComputeChecksum()
	quoted6 := rawTCP6(netip.AddrPortFrom(addr6.Addr(), 33000), netip.AddrPortFrom(peer6, 9), syn, nil)
	ptb6 := make([]byte, 8+len(quoted6))
	ptb6[0] = 2
	binary.BigEndian.PutUint32(ptb6[4:], 1280)
	copy(ptb6[8:], quoted6)
	wire.ICMPv6(ptb6).ComputeChecksum(peer6, addr6.Addr())
	unreach6 := append([]byte(nil), ptb6...)
	unreach6[0], unreach6[1] = 1, 4
	binary.BigEndian.PutUint32(unreach6[4:], 0)
	wire.ICMPv6(unreach6).ComputeChecksum(peer6, addr6.Addr())

	// IPv6 with extension headers: hop-by-hop (PadN) then destination
	// options then TCP; and a fragment header.
	tcp6 := syn6[40:]
	ext := []byte{60, 0, 1, 4, 0, 0, 0, 0, wire.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}
	withExt := rawIP6Next(peer6, addr6.Addr(), 0, append(ext, tcp6...))
	fragHdr := []byte{wire.ProtoTCP, 0, 0, 1, 0, 0, 0, 42}
	frag6 := rawIP6Next(peer6, addr6.Addr(), 44, append(fragHdr, tcp6...))

	seeds := [][]byte{
		corpusPacket(3, syn4),
		corpusPacket(3, syn6),
		corpusPacket(3, syn4, rawTCP4(them4, us4, ack, nil), rawTCP4(them4, us4, data, []byte("hello")), rawTCP4(them4, us4, fin, nil)),
		corpusPacket(3, rawTCP4(them4, us4, rst, nil)),
		corpusPacket(3, rawTCP4(them4, us4, ackSack, nil)),
		corpusPacket(3, rawTCP4(them4, us4, synTFO, []byte("GET / HTTP/1.0\r\n\r\n"))),
		corpusPacket(3, rawTCP6(them6, us6, data, []byte("data"))),
		corpusPacket(3, echo4),
		corpusPacket(3, echo6),
		corpusPacket(3, rawIP4(peer4, addr4.Addr(), wire.ProtoICMP, 64, unreach4)),
		corpusPacket(3, rawIP4(peer4, addr4.Addr(), wire.ProtoICMP, 64, frag4)),
		corpusPacket(3, rawIP6(peer6, addr6.Addr(), wire.ProtoICMPv6, ptb6)),
		corpusPacket(3, rawIP6(peer6, addr6.Addr(), wire.ProtoICMPv6, unreach6)),
		corpusPacket(3, withExt),
		corpusPacket(3, frag6),
		corpusPacket(0, syn4), // as is: checksums exactly as written
		// Stateful mode (bit 2): ACK numbers relative to the stack's ISS.
		corpusPacket(5, syn4, rawTCP4(them4, us4, ack, nil), rawTCP4(them4, us4, data, []byte("hello")),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 1006, Ack: 1, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 512}, nil)),
		corpusPacket(5, syn6, rawTCP6(them6, us6, ack, nil), rawTCP6(them6, us6, data, []byte("hello")),
			rawTCP6(them6, us6, wire.TCPHeader{Seq: 1006, Flags: wire.TCPFlagRST}, nil)),
		corpusPacket(5, syn4, rawTCP4(them4, us4, ack, nil),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 2001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 100)),
			rawTCP4(them4, us4, ackSack, nil),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1000)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 5000, Flags: wire.TCPFlagSYN, Window: 512}, nil)),
		// Stateful with tcp_mem 1 1 2 (bit 3): out-of-order data past
		// high, then in-order data filling the hole.
		corpusPacket(13, syn4, rawTCP4(them4, us4, ack, nil),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 3001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1400)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 5001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1400)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 7001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1400)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 9001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1400)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK, Window: 512}, make([]byte, 1400)),
			rawTCP4(them4, us4, wire.TCPHeader{Seq: 2401, Ack: 1, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 512}, make([]byte, 600))),
	}
	return seeds
}

func rawIP4(src, dst netip.Addr, proto, ttl uint8, payload []byte) []byte {
	buf := make([]byte, 20+len(payload))
	if _, err := wire.BuildIPv4(buf, &wire.IPv4Header{TTL: ttl, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload)}); err != nil {
		panic(err)
	}
	copy(buf[20:], payload)
	return buf
}

func rawIP6(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	return rawIP6Next(src, dst, proto, payload)
}

func rawIP6Next(src, dst netip.Addr, next uint8, payload []byte) []byte {
	buf := make([]byte, 40+len(payload))
	if _, err := wire.BuildIPv6(buf, &wire.IPv6Header{HopLimit: 64, NextHeader: next, Src: src, Dst: dst, PayloadLen: len(payload)}); err != nil {
		panic(err)
	}
	copy(buf[40:], payload)
	return buf
}

func rawTCPSeg(src, dst netip.AddrPort, h wire.TCPHeader, payload []byte) []byte {
	h.SrcPort, h.DstPort = src.Port(), dst.Port()
	tl := h.Len() + len(payload)
	seg := make([]byte, tl)
	if _, err := wire.BuildTCP(seg, &h, payload, wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tl)); err != nil {
		panic(err)
	}
	return seg
}

func rawTCP4(src, dst netip.AddrPort, h wire.TCPHeader, payload []byte) []byte {
	return rawIP4(src.Addr(), dst.Addr(), wire.ProtoTCP, 64, rawTCPSeg(src, dst, h, payload))
}

func rawTCP6(src, dst netip.AddrPort, h wire.TCPHeader, payload []byte) []byte {
	return rawIP6(src.Addr(), dst.Addr(), wire.ProtoTCP, rawTCPSeg(src, dst, h, payload))
}

// FuzzStackInput feeds arbitrary bytes, as packets read from a link, to a
// stack with a listener and a connecting socket. The first byte selects
// checksum repair (bit 0: on), a fresh stack per input whose ACKs are
// relative to its ISS (bit 2, fuzzStateful) and with it a tiny tcp_mem
// (bit 3); the rest is a list of length-prefixed packets. The stack must never panic, and every packet is accounted for
// in the IP counters.
func FuzzStackInput(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Cleanup(func() {
		// Do not leave the shared stack running for the other tests.
		if fuzzS != nil {
			fuzzS.s.Close()
			fuzzS = nil
			fuzzOnce = sync.Once{}
		}
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 1 {
			return
		}
		mode := b[0]
		pkts := splitPackets(b[1:])
		if mode&4 != 0 {
			fuzzStateful(t, mode, pkts)
			return
		}
		fs := getFuzzStack(t)
		fs.mu.Lock()
		defer fs.mu.Unlock()
		before := fs.s.Stats().IP.InReceives
		fs.in.now = time.Now()
		for _, p := range pkts {
			p = append([]byte(nil), p...)
			if mode&1 != 0 {
				fixChecksums(p)
			}
			fs.s.input(fs.in, fs.ifc, p)
		}
		fs.in.flush()
		if got := fs.s.Stats().IP.InReceives - before; got != uint64(len(pkts)) {
			t.Fatalf("InReceives grew by %d for %d packets", got, len(pkts))
		}
	})
}

// fuzzStateful runs pkts against a fresh stack with a listener on port 80
// whose accepted connections are read until they end. The acknowledgment
// number of every TCP segment with ACK to port 80 is taken relative to the
// ISS of the SYN-ACK the stack last sent to that client port, so that
// inputs can complete handshakes and reach established connections.
func fuzzStateful(t *testing.T, mode byte, pkts [][]byte) {
	var cfg Config
	if mode&8 != 0 {
		// tcp_mem of 1 1 2 pages: the memory limits (pressure, drops
		// above high, the tcp_rmem[0] and hole-filling exceptions) are
		// in play from the first segments on.
		tc := tcp.DefaultConfig()
		tc.Mem = [3]int{1, 1, 2}
		cfg.TCP = tc
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := newSink(1500)
	iss := map[uint16]uint32{} // written under ep's lock, read after flush
	ep.onWrite = func(p []byte) {
		if _, _, seg, ok := tcpOf(p); ok && seg.SrcPort() == 80 && seg.Flags()&(wire.TCPFlagSYN|wire.TCPFlagACK) == wire.TCPFlagSYN|wire.TCPFlagACK {
			iss[seg.DstPort()] = seg.Seq()
		}
	}
	if err := s.AddInterface("f0", ep, addr4, addr6); err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	s.mu.Lock()
	ifc := s.ifaces["f0"]
	s.mu.Unlock()
	in := newInputCtx(s)
	for _, p := range pkts {
		p = append([]byte(nil), p...)
		if th := tcpHeaderOf(p); th != nil && binary.BigEndian.Uint16(th[2:4]) == 80 && th[13]&wire.TCPFlagACK != 0 {
			ep.mu.Lock()
			base, ok := iss[binary.BigEndian.Uint16(th[0:2])]
			ep.mu.Unlock()
			if ok {
				binary.BigEndian.PutUint32(th[8:12], base+binary.BigEndian.Uint32(th[8:12]))
			}
		}
		if mode&1 != 0 {
			fixChecksums(p)
		}
		in.now = time.Now()
		s.input(in, ifc, p)
		in.flush()
	}
	if got := s.Stats().IP.InReceives; got != uint64(len(pkts)) {
		t.Fatalf("InReceives %d for %d packets", got, len(pkts))
	}
}

// tcpHeaderOf returns the TCP header of an IPv4 or IPv6 packet (no
// extension headers), nil if there is none.
func tcpHeaderOf(p []byte) []byte {
	if len(p) < 1 {
		return nil
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 || p[9] != wire.ProtoTCP {
			return nil
		}
		hl := int(p[0]&15) * 4
		if hl < 20 || len(p) < hl+20 {
			return nil
		}
		return p[hl:]
	case 6:
		if len(p) < 60 || p[6] != wire.ProtoTCP {
			return nil
		}
		return p[40:]
	}
	return nil
}

// TestFuzzSeedsWellFormed checks that the corpus seeds reach the stack as
// intended: with repaired checksums every seed packet but the fragments is
// delivered to TCP or ICMP.
func TestFuzzSeedsWellFormed(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ep := newSink(1500)
	if err := s.AddInterface("f0", ep, addr4, addr6); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	ifc := s.ifaces["f0"]
	s.mu.Unlock()
	in := newInputCtx(s)
	in.now = time.Now()
	n := 0
	for _, seed := range fuzzSeeds(t) {
		for _, p := range splitPackets(seed[1:]) {
			s.input(in, ifc, p)
			n++
		}
	}
	in.flush()
	st := s.Stats()
	if st.IP.InReceives != uint64(n) || st.IP.FragmentsDropped != 1 || st.IP.InDelivers != uint64(n-1) {
		t.Fatalf("seeds: %d packets, IP stats %+v", n, st.IP)
	}
	if st.TCP.InCsumErrors != 0 || st.ICMP.InErrors != 0 || st.ICMP6.InErrors != 0 {
		t.Fatalf("seeds with bad checksums: TCP %d ICMP %d ICMP6 %d", st.TCP.InCsumErrors, st.ICMP.InErrors, st.ICMP6.InErrors)
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzStackInput from
// fuzzSeeds when USTACK_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("USTACK_WRITE_CORPUS") != "1" {
		t.Skip("set USTACK_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzStackInput")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzStackInput")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"syn4", "syn6", "handshake_data_fin4", "rst4", "ack_sack4", "syn_fastopen4", "data6",
		"echo4", "echo6", "icmp4_port_unreach", "icmp4_frag_needed", "icmp6_packet_too_big", "icmp6_port_unreach",
		"ipv6_ext_headers", "ipv6_fragment", "syn4_raw", "stateful_handshake_data_fin4", "stateful_handshake_data_rst6",
		"stateful_ooo_sack_syn4", "stateful_tcp_mem_ooo4"}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, "seed_"+names[i]), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
