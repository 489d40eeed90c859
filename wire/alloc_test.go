package wire

import "testing"

func buildTCPv4Packet(buf []byte, payload []byte) int {
	opts := TCPOptions{HasTS: true, TSVal: 1, TSEcr: 2, NumSACK: 2, SACK: [4]SACKBlock{{1, 2}, {3, 4}}}
	h := TCPHeader{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagACK, Window: 5, Options: &opts}
	n := h.Len() + len(payload)
	m, _ := BuildTCP(buf[20:], &h, payload, PseudoHeaderSum(a4src, a4dst, ProtoTCP, n))
	BuildIPv4(buf, &IPv4Header{Protocol: ProtoTCP, Src: a4src, Dst: a4dst, PayloadLen: m})
	return 20 + m
}

func TestAllocs(t *testing.T) {
	buf := make([]byte, 2000)
	payload := make([]byte, 1000)
	pkt := buf[:buildTCPv4Packet(buf, payload)]
	v6 := mkIPv6(ProtoHopByHop, cat(ext(ProtoHopByHop, ProtoIPv6Frag, 8), ext(ProtoIPv6Frag, ProtoTCP, 8), pkt[20:]))
	out := make([]byte, 2000)
	icmp4 := make([]byte, 600)
	icmp6 := make([]byte, 1300)
	var sinkB bool
	var o TCPOptions
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseIPv4+ParseTCP+options+checksums", func() {
			ip, _ := ParseIPv4(pkt)
			seg, _ := ParseTCP(ip.Payload())
			seg.ParseOptions(&o)
			sinkB = ip.ValidChecksum() && seg.ValidChecksum(ip.PseudoHeaderSum()) && ip.Src() == ip.Dst() && !ip.IsFragment()
		}},
		{"ParseIPv6+UpperLayer+ExtHeaders", func() {
			ip, _ := ParseIPv6(v6)
			_, pl, _ := ip.UpperLayer()
			it := ip.ExtHeaders()
			for it.Next() {
			}
			seg, _ := ParseTCP(pl)
			sinkB = seg.ValidChecksum(PseudoHeaderSum(ip.Src(), ip.Dst(), ProtoTCP, len(pl)))
		}},
		{"BuildIPv4+BuildTCP", func() { buildTCPv4Packet(out, payload) }},
		{"ParseTCPWithOptions", func() { ParseTCPWithOptions(IPv4(pkt).Payload(), &o) }},
		{"BuildIPv6", func() { BuildIPv6(out, &IPv6Header{Src: a6src, Dst: a6dst, NextHeader: ProtoTCP, PayloadLen: 100}) }},
		{"ICMPv4 build+parse+quoted", func() {
			n, _ := BuildICMPv4FragNeeded(icmp4, 1400, pkt)
			m, _ := ParseICMPv4(icmp4[:n])
			ip, _, _ := m.Quoted()
			sinkB = m.ValidChecksum() && ip.Src().IsValid()
			n, _ = BuildICMPv4Echo(icmp4, ICMPv4EchoReply, 1, 2, payload[:56])
			m, _ = ParseICMPv4(icmp4[:n])
			sinkB = m.ValidChecksum()
		}},
		{"ICMPv6 build+parse+quoted", func() {
			n, _ := BuildICMPv6PacketTooBig(icmp6, a6src, a6dst, 1280, v6)
			m, _ := ParseICMPv6(icmp6[:n])
			_, _, _, _ = m.Quoted()
			n, _ = BuildICMPv6Echo(icmp6, a6src, a6dst, ICMPv6EchoRequest, 1, 2, payload[:56])
			m, _ = ParseICMPv6(icmp6[:n])
			sinkB = m.ValidChecksum(PseudoHeaderSum(a6src, a6dst, ProtoICMPv6, n))
		}},
		{"Checksum", func() { sink = uint32(Checksum(payload, 0)) }},
	}
	for _, tc := range tests {
		if a := testing.AllocsPerRun(100, tc.f); a != 0 {
			t.Errorf("%s: %v allocs per run", tc.name, a)
		}
	}
	_ = sinkB
}

func BenchmarkParseTCP(b *testing.B) {
	buf := make([]byte, 2000)
	pkt := buf[:buildTCPv4Packet(buf, make([]byte, 1400))]
	ip, _ := ParseIPv4(pkt)
	seg := ip.Payload()
	var o TCPOptions
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		t, err := ParseTCP(seg)
		if err != nil {
			b.Fatal(err)
		}
		t.ParseOptions(&o)
	}
}

// BenchmarkParseTCPv4Full is the receive path: IP and TCP parse, options,
// both checksums over a 1400-byte payload.
func BenchmarkParseTCPv4Full(b *testing.B) {
	buf := make([]byte, 2000)
	pkt := buf[:buildTCPv4Packet(buf, make([]byte, 1400))]
	var o TCPOptions
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		ip, _ := ParseIPv4(pkt)
		t, err := ParseTCP(ip.Payload())
		if err != nil || !ip.ValidChecksum() || !t.ValidChecksum(ip.PseudoHeaderSum()) {
			b.Fatal("bad")
		}
		t.ParseOptions(&o)
	}
}

func BenchmarkBuildTCP(b *testing.B) {
	buf := make([]byte, 2000)
	payload := make([]byte, 1400)
	opts := TCPOptions{HasTS: true, TSVal: 1, TSEcr: 2}
	h := TCPHeader{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagACK, Window: 5, Options: &opts}
	b.ReportAllocs()
	b.SetBytes(int64(h.Len() + len(payload)))
	for b.Loop() {
		n := h.Len() + len(payload)
		if _, err := BuildTCP(buf, &h, payload, PseudoHeaderSum(a4src, a4dst, ProtoTCP, n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildTCPHeaderOnly builds a pure ACK (no payload).
func BenchmarkBuildTCPHeaderOnly(b *testing.B) {
	buf := make([]byte, 100)
	opts := TCPOptions{HasTS: true, TSVal: 1, TSEcr: 2, NumSACK: 1}
	h := TCPHeader{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagACK, Window: 5, Options: &opts}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildTCP(buf, &h, nil, PseudoHeaderSum(a4src, a4dst, ProtoTCP, h.Len())); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTCPWithOptions(b *testing.B) {
	buf := make([]byte, 2000)
	pkt := buf[:buildTCPv4Packet(buf, make([]byte, 1400))]
	seg := IPv4(pkt).Payload()
	var o TCPOptions
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTCPWithOptions(seg, &o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseIPv6ExtHeaders(b *testing.B) {
	v6 := mkIPv6(ProtoHopByHop, cat(ext(ProtoHopByHop, ProtoIPv6Opts, 8), ext(ProtoIPv6Opts, ProtoIPv6Frag, 16), ext(ProtoIPv6Frag, ProtoTCP, 8), make([]byte, 100)))
	b.ReportAllocs()
	for b.Loop() {
		ip, err := ParseIPv6(v6)
		if err != nil {
			b.Fatal(err)
		}
		if p, _, err := ip.UpperLayer(); err != nil || p != ProtoTCP {
			b.Fatal(err)
		}
	}
}
