package wire

// Differential tests: seeded random packets are parsed by wire and by
// github.com/gopacket/gopacket/layers, and every field must agree. Packets
// built by wire must decode in gopacket with checksums gopacket verifies.

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

const diffN = 10000

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// genTCPOptions returns random, well-formed option bytes (<= 40, multiple
// of 4) covering every option wire knows plus unknown ones.
func genTCPOptions(r *rand.Rand) []byte {
	var o []byte
	for k := r.IntN(8); k > 0; k-- {
		var opt []byte
		switch r.IntN(11) {
		case 0:
			opt = []byte{TCPOptNOP}
		case 1:
			opt = []byte{TCPOptMSS, 4, byte(r.Uint32()), byte(r.Uint32())}
		case 2:
			opt = []byte{TCPOptWScale, 3, byte(r.IntN(20))}
		case 3:
			opt = []byte{TCPOptSACKPermitted, 2}
		case 4:
			n := 1 + r.IntN(4)
			opt = append([]byte{TCPOptSACK, byte(2 + 8*n)}, randBytes(r, 8*n)...)
		case 5:
			opt = append([]byte{TCPOptTimestamps, 10}, randBytes(r, 8)...)
		case 6:
			c := 0
			if r.IntN(3) != 0 {
				c = 4 + 2*r.IntN(7)
			}
			opt = append([]byte{TCPOptFastOpen, byte(2 + c)}, randBytes(r, c)...)
		case 7:
			c := 0
			if r.IntN(3) != 0 {
				c = 4 + 2*r.IntN(7)
			}
			opt = append([]byte{TCPOptExperimental, byte(4 + c), 0xf9, 0x89}, randBytes(r, c)...)
		case 8: // other experiment
			c := r.IntN(6)
			opt = append([]byte{TCPOptExperimental, byte(4 + c), 0x12, byte(r.Uint32())}, randBytes(r, c)...)
		case 9: // unknown kinds: MD5 (19), UTO (28), AO (29), random
			kinds := []byte{19, 28, 29, 6, 7, 99, 200}
			c := r.IntN(10)
			opt = append([]byte{kinds[r.IntN(len(kinds))], byte(2 + c)}, randBytes(r, c)...)
		case 10:
			opt = []byte{TCPOptNOP, TCPOptNOP}
		}
		if len(o)+len(opt) > TCPMaxOptionsLen {
			break
		}
		o = append(o, opt...)
	}
	for len(o)%4 != 0 {
		if r.IntN(2) == 0 {
			o = append(o, TCPOptNOP)
		} else {
			// EOL then zero padding
			for len(o)%4 != 0 {
				o = append(o, TCPOptEOL)
			}
		}
	}
	return o
}

func genTCP(r *rand.Rand) []byte {
	opts := genTCPOptions(r)
	b := randBytes(r, 20)
	b[12] = byte((20+len(opts))/4)<<4 | b[12]&0x0f
	b = append(b, opts...)
	return append(b, randBytes(r, r.IntN(64))...)
}

// optsFromGopacket applies wire's documented option semantics to the
// option list gopacket decoded.
func optsFromGopacket(t *testing.T, tcp *layers.TCP) TCPOptions {
	var o TCPOptions
	for _, op := range tcp.Options {
		d := op.OptionData
		switch op.OptionType {
		case layers.TCPOptionKindEndList:
			return o
		case layers.TCPOptionKindMSS:
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
		case layers.TCPOptionKindWindowScale:
			o.HasWScale, o.WScale = true, d[0]
		case layers.TCPOptionKindSACKPermitted:
			o.SACKPermitted = true
		case layers.TCPOptionKindSACK:
			o.NumSACK = len(d) / 8
			for i := 0; i < o.NumSACK; i++ {
				o.SACK[i] = SACKBlock{binary.BigEndian.Uint32(d[8*i:]), binary.BigEndian.Uint32(d[8*i+4:])}
			}
		case layers.TCPOptionKindTimestamps:
			o.HasTS, o.TSVal, o.TSEcr = true, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case 34, 254:
			exp := op.OptionType == 254
			if exp {
				if len(d) < 2 || d[0] != 0xf9 || d[1] != 0x89 {
					continue
				}
				d = d[2:]
			}
			// Cookies of 4..16 bytes, even; other lengths are ignored.
			if len(d) == 0 || (len(d) >= 4 && len(d) <= 16 && len(d)%2 == 0) {
				o.HasFastOpen, o.FastOpenExp, o.CookieLen, o.Cookie = true, exp, len(d), [16]byte{}
				copy(o.Cookie[:], d)
			}
		}
	}
	return o
}

func compareTCP(t *testing.T, seg TCP, g *layers.TCP) {
	t.Helper()
	flags := uint8(0)
	for i, f := range []bool{g.FIN, g.SYN, g.RST, g.PSH, g.ACK, g.URG, g.ECE, g.CWR} {
		if f {
			flags |= 1 << i
		}
	}
	if seg.SrcPort() != uint16(g.SrcPort) || seg.DstPort() != uint16(g.DstPort) || seg.Seq() != g.Seq || seg.Ack() != g.Ack ||
		seg.DataOffset() != int(g.DataOffset) || seg.Flags() != flags || seg.Window() != g.Window ||
		seg.Checksum() != g.Checksum || seg.Urgent() != g.Urgent || !bytes.Equal(seg.Payload(), g.Payload) ||
		!bytes.Equal(seg.Options(), g.Contents[20:]) {
		t.Fatalf("TCP header mismatch\nwire % x\ngopacket %+v", []byte(seg), g)
	}
	var o TCPOptions
	if err := seg.ParseOptions(&o); err != nil {
		t.Fatalf("options: %v", err)
	}
	if want := optsFromGopacket(t, g); o != want {
		t.Fatalf("TCP options mismatch\nwire     %+v\ngopacket %+v\nbytes % x", o, want, seg.Options())
	}
}

func genIPv4Options(r *rand.Rand) []byte {
	var o []byte
	n := 4 * r.IntN(11)
	for len(o) < n {
		switch k := r.IntN(4); {
		case k == 0:
			o = append(o, 1) // NOP
		case k == 1 && n-len(o) >= 4:
			// Random option type, avoiding source routes (they change the
			// pseudo-header destination) and EOL/NOP.
			typ := byte(r.IntN(256))
			if typ&0x1f == 3 || typ&0x1f == 9 || typ <= 1 {
				typ = 68 // timestamp
			}
			l := 2 + r.IntN(n-len(o)-1)
			o = append(o, typ, byte(l))
			o = append(o, randBytes(r, l-2)...)
		default:
			o = append(o, 0) // EOL (rest is padding)
			for len(o) < n {
				o = append(o, 0)
			}
		}
	}
	return o
}

func genIPv4(r *rand.Rand, depth int) (pkt []byte, upper []byte) {
	opts := genIPv4Options(r)
	hl := 20 + len(opts)
	proto := []uint8{ProtoTCP, ProtoICMP, 253, 200}[r.IntN(4)]
	if depth > 0 && proto == ProtoICMP {
		proto = ProtoTCP
	}
	switch proto {
	case ProtoTCP:
		upper = genTCP(r)
	case ProtoICMP:
		upper = genICMP(r, false)
	default:
		upper = randBytes(r, r.IntN(100))
	}
	b := randBytes(r, 20)
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(upper)))
	if r.IntN(3) != 0 {
		b[6] &= 0x40 // DF only or nothing: not a fragment
		b[7] = 0
	}
	b[9] = proto
	b = append(b, opts...)
	b = append(b, upper...)
	if r.IntN(2) == 0 {
		IPv4(b).ComputeChecksum()
	}
	b = append(b, randBytes(r, r.IntN(3))...) // link padding
	return b, upper
}

func genICMP(r *rand.Rand, v6 bool) []byte {
	var types []uint8
	if v6 {
		types = []uint8{ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6DestUnreachable, ICMPv6PacketTooBig, ICMPv6TimeExceeded, 200}
	} else {
		types = []uint8{ICMPv4EchoRequest, ICMPv4EchoReply, ICMPv4DestUnreachable, ICMPv4TimeExceeded, 42}
	}
	b := randBytes(r, 8)
	b[0] = types[r.IntN(len(types))]
	if (b[0] == ICMPv4DestUnreachable || b[0] == ICMPv4TimeExceeded) && !v6 || (v6 && b[0] < 128) {
		// Quote a packet, truncated like a real error to its headers plus
		// at least 8 bytes.
		var inner, upper []byte
		if v6 {
			inner, upper = genIPv6(r, 1)
			ip, _ := ParseIPv6(inner)
			inner = ip
		} else {
			inner, upper = genIPv4(r, 1)
			ip, _ := ParseIPv4(inner)
			inner = ip
		}
		if n := len(inner) - len(upper) + 8 + r.IntN(100); n < len(inner) {
			inner = inner[:n]
		}
		return append(b, inner...)
	}
	return append(b, randBytes(r, r.IntN(64))...)
}

func genIPv6(r *rand.Rand, depth int) (pkt []byte, upper []byte) {
	proto := []uint8{ProtoTCP, ProtoICMPv6, 200}[r.IntN(3)]
	if depth > 0 && proto == ProtoICMPv6 {
		proto = ProtoTCP
	}
	switch proto {
	case ProtoTCP:
		upper = genTCP(r)
	case ProtoICMPv6:
		upper = genICMP(r, true)
	default:
		upper = randBytes(r, 1+r.IntN(50))
	}
	// Extension header chain, built back to front.
	var chain []uint8
	if r.IntN(3) == 0 {
		chain = append(chain, ProtoHopByHop)
	}
	for k := r.IntN(4); k > 0; k-- {
		chain = append(chain, []uint8{ProtoIPv6Opts, ProtoIPv6Route, ProtoIPv6Frag}[r.IntN(3)])
	}
	next := proto
	var exts []byte
	for i := len(chain) - 1; i >= 0; i-- {
		var e []byte
		switch chain[i] {
		case ProtoIPv6Frag:
			e = randBytes(r, 8)
			e[0] = next
			if r.IntN(2) == 0 { // atomic
				e[2], e[3] = 0, e[3]&0x06
			}
		case ProtoIPv6Route:
			e = randBytes(r, 8*(1+r.IntN(3)))
			e[0], e[1] = next, byte(len(e)/8-1)
			e[2], e[3] = byte(2+r.IntN(3)), 0 // type 2..4, segments left 0
		default: // hop-by-hop or destination options: PadN-filled
			e = ext(chain[i], next, 8*(1+r.IntN(3)))
		}
		exts = append(e, exts...)
		next = chain[i]
	}
	p := append(exts, upper...)
	b := randBytes(r, 40)
	b[0] = 0x60 | b[0]&0x0f
	binary.BigEndian.PutUint16(b[4:], uint16(len(p)))
	b[6] = next
	b = append(b, p...)
	return append(b, randBytes(r, r.IntN(3))...), upper
}

func decodeG(t *testing.T, b []byte, first gopacket.LayerType) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil && !strings.Contains(el.Error().Error(), "not currently supported") &&
		!strings.Contains(el.Error().Error(), "Unable to decode IPProtocol") {
		t.Fatalf("gopacket: %v\n% x", el.Error(), b)
	}
	return p
}

func TestDiffIPv4(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var nTCP, nICMP, nFrag int
	for i := 0; i < diffN; i++ {
		b, upper := genIPv4(r, 0)
		ip, err := ParseIPv4(b)
		if err != nil {
			t.Fatalf("wire: %v\n% x", err, b)
		}
		p := decodeG(t, b, layers.LayerTypeIPv4)
		g := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.Version() != g.Version || ip.HeaderLen() != int(g.IHL)*4 || ip.TOS() != g.TOS || ip.TotalLen() != g.Length ||
			ip.ID() != g.Id || ip.DontFragment() != (g.Flags&layers.IPv4DontFragment != 0) ||
			ip.MoreFragments() != (g.Flags&layers.IPv4MoreFragments != 0) || ip.FragmentOffset() != int(g.FragOffset)*8 ||
			ip.TTL() != g.TTL || ip.Protocol() != uint8(g.Protocol) || ip.Checksum() != g.Checksum ||
			ip.Src() != netip.AddrFrom4([4]byte(g.SrcIP)) || ip.Dst() != netip.AddrFrom4([4]byte(g.DstIP)) ||
			!bytes.Equal(ip.Payload(), g.Payload) || !bytes.Equal(ip.Payload(), upper) ||
			!bytes.Equal(ip.Options(), g.Contents[20:]) {
			t.Fatalf("IPv4 mismatch\nwire % x\ngopacket %+v", []byte(ip), g)
		}
		_, v := g.VerifyChecksum()
		if ip.ValidChecksum() != v.Valid {
			t.Fatalf("checksum validity: wire %v gopacket %v", ip.ValidChecksum(), v.Valid)
		}
		if ip.IsFragment() {
			nFrag++
			if p.Layer(gopacket.LayerTypeFragment) == nil && len(ip.Payload()) > 0 {
				t.Fatal("gopacket does not see a fragment")
			}
			continue
		}
		switch ip.Protocol() {
		case ProtoTCP:
			nTCP++
			seg, err := ParseTCP(ip.Payload())
			if err != nil {
				t.Fatalf("wire TCP: %v", err)
			}
			gt := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			compareTCP(t, seg, gt)
			gt.SetNetworkLayerForChecksum(g)
			_, v := gt.VerifyChecksum()
			if seg.ValidChecksum(ip.PseudoHeaderSum()) != v.Valid {
				t.Fatal("TCP checksum validity differs")
			}
		case ProtoICMP:
			nICMP++
			m, err := ParseICMPv4(ip.Payload())
			if err != nil {
				t.Fatal(err)
			}
			gi := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			compareICMPv4(t, m, gi)
		}
	}
	t.Logf("%d IPv4 packets: %d TCP, %d ICMP, %d fragments", diffN, nTCP, nICMP, nFrag)
}

func compareICMPv4(t *testing.T, m ICMPv4, g *layers.ICMPv4) {
	t.Helper()
	if m.Type() != g.TypeCode.Type() || m.Code() != g.TypeCode.Code() || m.Checksum() != g.Checksum ||
		m.ID() != g.Id || m.Seq() != g.Seq || !bytes.Equal(m.Body(), g.Payload) {
		t.Fatalf("ICMPv4 mismatch % x vs %+v", []byte(m), g)
	}
	if m.Type() == ICMPv4DestUnreachable && m.MTU() != g.Seq {
		t.Fatal("MTU")
	}
	_, v := g.VerifyChecksum()
	if m.ValidChecksum() != v.Valid {
		t.Fatal("ICMPv4 checksum validity differs")
	}
	if m.IsError() {
		ip, tr, err := m.Quoted()
		if err == ErrFragment {
			if binary.BigEndian.Uint16(m.Body()[6:8])&0x1fff == 0 {
				t.Fatal("quoted packet wrongly called a fragment")
			}
			return
		}
		if err != nil {
			t.Fatalf("quoted: %v", err)
		}
		q := gopacket.NewPacket(m.Body(), layers.LayerTypeIPv4, gopacket.Default)
		gq, ok := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("gopacket cannot read quoted packet")
		}
		if ip.Src() != netip.AddrFrom4([4]byte(gq.SrcIP)) || ip.Dst() != netip.AddrFrom4([4]byte(gq.DstIP)) ||
			ip.Protocol() != uint8(gq.Protocol) || !bytes.Equal(tr, gq.Payload) {
			t.Fatalf("quoted mismatch")
		}
	}
}

func TestDiffIPv6(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	var nExt, nFrag, nTCP, nICMP int
	for i := 0; i < diffN; i++ {
		b, upper := genIPv6(r, 0)
		ip, err := ParseIPv6(b)
		if err != nil {
			t.Fatalf("wire: %v", err)
		}
		p := decodeG(t, b, layers.LayerTypeIPv6)
		g := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip.Version() != g.Version || ip.TrafficClass() != g.TrafficClass || ip.FlowLabel() != g.FlowLabel ||
			ip.PayloadLen() != g.Length || ip.NextHeader() != uint8(g.NextHeader) || ip.HopLimit() != g.HopLimit ||
			ip.Src() != netip.AddrFrom16([16]byte(g.SrcIP)) || ip.Dst() != netip.AddrFrom16([16]byte(g.DstIP)) ||
			len(ip) != 40+int(g.Length) {
			t.Fatalf("IPv6 mismatch % x vs %+v", []byte(ip), g)
		}
		// Walk extension headers alongside gopacket's layers. gopacket's
		// packet decoder treats everything after any fragment header as a
		// fragment; for an atomic fragment (RFC 6946) decode the rest again
		// from the header it names.
		var gExt []gopacket.Layer
		if g.HopByHop != nil {
			gExt = append(gExt, g.HopByHop)
		}
		more, up := gWalkExt(t, p, false)
		gExt = append(gExt, more...)
		it := ip.ExtHeaders()
		k := 0
		for it.Next() {
			h := it.Header()
			if k >= len(gExt) || !bytes.Equal(h.Data, gExt[k].LayerContents()) {
				t.Fatalf("ext header %d mismatch", k)
			}
			if f, ok := gExt[k].(*layers.IPv6Fragment); ok {
				if h.FragOffset() != int(f.FragmentOffset)*8 || h.FragMore() != f.MoreFragments || h.FragID() != f.Identification {
					t.Fatal("fragment header fields")
				}
				if h.FragOffset() != 0 || h.FragMore() {
					break // gopacket stops at a real fragment
				}
			}
			k++
			nExt++
		}
		if it.Err() != nil {
			t.Fatalf("ext walk: %v", it.Err())
		}
		proto, pl, err := ip.UpperLayer()
		if err == ErrFragment {
			nFrag++
			if up.Layer(gopacket.LayerTypeFragment) == nil {
				t.Fatal("gopacket does not see a fragment")
			}
			continue
		}
		if err != nil || !bytes.Equal(pl, upper) || k != len(gExt) {
			t.Fatalf("upper layer: %d %v (k=%d of %d)", proto, err, k, len(gExt))
		}
		p = up
		switch proto {
		case ProtoTCP:
			nTCP++
			seg, err := ParseTCP(pl)
			if err != nil {
				t.Fatal(err)
			}
			gt, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok {
				t.Fatalf("gopacket found no TCP: %v\n% x", p, b)
			}
			compareTCP(t, seg, gt)
		case ProtoICMPv6:
			nICMP++
			m, err := ParseICMPv6(pl)
			if err != nil {
				t.Fatal(err)
			}
			compareICMPv6(t, m, p, g)
		default:
			if l := p.Layers()[len(p.Layers())-1]; !bytes.Equal(pl, append(l.LayerContents(), l.LayerPayload()...)) {
				t.Fatal("payload")
			}
		}
	}
	t.Logf("%d IPv6 packets: %d extension headers, %d fragments, %d TCP, %d ICMPv6", diffN, nExt, nFrag, nTCP, nICMP)
}

// gWalkExt collects gopacket's IPv6 extension-header layers, decoding
// again past atomic fragments (and first fragments if firstOK), and returns
// them with the packet holding the upper layer.
func gWalkExt(t *testing.T, p gopacket.Packet, firstOK bool) ([]gopacket.Layer, gopacket.Packet) {
	var ext []gopacket.Layer
	for more := true; more; {
		more = false
		for _, l := range p.Layers() {
			switch l.LayerType() {
			case layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Fragment:
				ext = append(ext, l)
			}
			if f, ok := l.(*layers.IPv6Fragment); ok && f.FragmentOffset == 0 && (!f.MoreFragments || firstOK) {
				p = gopacket.NewPacket(f.Payload, f.NextHeader.LayerType(), gopacket.Default)
				more = true
				break
			}
		}
	}
	return ext, p
}

func compareICMPv6(t *testing.T, m ICMPv6, p gopacket.Packet, ip *layers.IPv6) {
	t.Helper()
	g := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if m.Type() != g.TypeCode.Type() || m.Code() != g.TypeCode.Code() || m.Checksum() != g.Checksum ||
		!bytes.Equal(m[4:], g.Payload) {
		t.Fatalf("ICMPv6 mismatch")
	}
	if e, ok := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok {
		if m.ID() != e.Identifier || m.Seq() != e.SeqNumber || !bytes.Equal(m.Body(), e.Payload) {
			t.Fatal("echo mismatch")
		}
	}
	if m.Type() == ICMPv6PacketTooBig && m.MTU() != binary.BigEndian.Uint32(g.Payload) {
		t.Fatal("MTU")
	}
	g.SetNetworkLayerForChecksum(ip)
	_, v := g.VerifyChecksum()
	if m.ValidChecksum(PseudoHeaderSum(netip.AddrFrom16([16]byte(ip.SrcIP)), netip.AddrFrom16([16]byte(ip.DstIP)), ProtoICMPv6, len(m))) != v.Valid {
		t.Fatal("ICMPv6 checksum validity differs")
	}
	if m.IsError() {
		qip, proto, tr, err := m.Quoted()
		if err == ErrFragment {
			ext, _ := gWalkExt(t, gopacket.NewPacket(m.Body(), layers.LayerTypeIPv6, gopacket.Default), true)
			if f, ok := ext[len(ext)-1].(*layers.IPv6Fragment); !ok || f.FragmentOffset == 0 {
				t.Fatal("quoted packet wrongly called a fragment")
			}
			return
		}
		if err != nil {
			t.Fatalf("quoted: %v", err)
		}
		q := gopacket.NewPacket(m.Body(), layers.LayerTypeIPv6, gopacket.Default)
		gq, ok := q.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok || qip.Src() != netip.AddrFrom16([16]byte(gq.SrcIP)) {
			t.Fatalf("quoted mismatch")
		}
		_, qu := gWalkExt(t, q, true)
		if proto == ProtoTCP && len(tr) >= 20 && len(tr) >= int(tr[12]>>4)*4 {
			if gt, ok := qu.Layer(layers.LayerTypeTCP).(*layers.TCP); !ok || binary.BigEndian.Uint16(tr) != uint16(gt.SrcPort) {
				t.Fatal("quoted TCP port")
			}
		}
	}
}

// randOptions returns random TCPOptions as an engine would fill them.
func randOptions(r *rand.Rand) TCPOptions {
	var o TCPOptions
	if r.IntN(2) == 0 {
		o.HasMSS, o.MSS = true, uint16(r.Uint32())
	}
	if r.IntN(2) == 0 {
		o.HasWScale, o.WScale = true, uint8(r.IntN(15))
	}
	o.SACKPermitted = r.IntN(2) == 0
	if r.IntN(2) == 0 {
		o.HasTS, o.TSVal, o.TSEcr = true, r.Uint32(), r.Uint32()
	}
	if r.IntN(3) == 0 {
		o.HasFastOpen, o.FastOpenExp = true, r.IntN(2) == 0
		if r.IntN(3) != 0 {
			o.CookieLen = 4 + 2*r.IntN(7)
			for i := 0; i < o.CookieLen; i++ {
				o.Cookie[i] = byte(r.Uint32())
			}
		}
	}
	if r.IntN(2) == 0 {
		o.NumSACK = 1 + r.IntN(4)
		for i := 0; i < o.NumSACK; i++ {
			o.SACK[i] = SACKBlock{r.Uint32(), r.Uint32()}
		}
	}
	return o
}

// builtPacket builds a random packet with wire's builders: IPv4 or IPv6,
// carrying TCP (all options), ICMP echo or an ICMP error.
func builtPacket(r *rand.Rand, buf []byte) (pkt []byte, kind string) {
	v6 := r.IntN(2) == 0
	var src, dst netip.Addr
	hl := 20
	if v6 {
		src, dst, hl = randAddr6(r), randAddr6(r), 40
	} else {
		src, dst = randAddr4(r), randAddr4(r)
	}
	l4 := buf[hl:]
	var n int
	var proto uint8
	var err error
	switch r.IntN(4) {
	case 0, 1:
		kind, proto = "tcp", ProtoTCP
		o := randOptions(r)
		h := TCPHeader{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
			Flags: uint8(r.Uint32()), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()), Options: &o}
		payload := randBytes(r, r.IntN(200))
		n, err = BuildTCP(l4, &h, payload, PseudoHeaderSum(src, dst, ProtoTCP, h.Len()+len(payload)))
	case 2:
		kind = "echo"
		data := randBytes(r, r.IntN(100))
		if v6 {
			proto = ProtoICMPv6
			n, err = BuildICMPv6Echo(l4, src, dst, []uint8{ICMPv6EchoRequest, ICMPv6EchoReply}[r.IntN(2)], uint16(r.Uint32()), uint16(r.Uint32()), data)
		} else {
			proto = ProtoICMP
			n, err = BuildICMPv4Echo(l4, []uint8{ICMPv4EchoRequest, ICMPv4EchoReply}[r.IntN(2)], uint16(r.Uint32()), uint16(r.Uint32()), data)
		}
	case 3:
		kind = "error"
		inner := make([]byte, 1600)
		var m int
		if v6 {
			proto = ProtoICMPv6
			ib, _ := builtPacketTCP(r, inner, dst, src)
			m = len(ib)
			if r.IntN(2) == 0 {
				n, err = BuildICMPv6PacketTooBig(l4, src, dst, uint32(1280+r.IntN(8000)), inner[:m])
			} else {
				n, err = BuildICMPv6Unreachable(l4, src, dst, uint8(r.IntN(7)), inner[:m])
			}
		} else {
			proto = ProtoICMP
			ib, _ := builtPacketTCP(r, inner, dst, src)
			m = len(ib)
			if r.IntN(2) == 0 {
				n, err = BuildICMPv4FragNeeded(l4, uint16(68+r.IntN(9000)), inner[:m])
			} else {
				n, err = BuildICMPv4Unreachable(l4, uint8(r.IntN(4)), 0, inner[:m])
			}
		}
	}
	if err != nil {
		panic(err)
	}
	if v6 {
		_, err = BuildIPv6(buf, &IPv6Header{TrafficClass: uint8(r.Uint32()), FlowLabel: r.Uint32(), NextHeader: proto,
			HopLimit: uint8(r.Uint32()), Src: src, Dst: dst, PayloadLen: n})
	} else {
		_, err = BuildIPv4(buf, &IPv4Header{TOS: uint8(r.Uint32()), TTL: uint8(r.Uint32()), Protocol: proto,
			ID: uint16(r.Uint32()), DF: r.IntN(2) == 0, Src: src, Dst: dst, PayloadLen: n})
	}
	if err != nil {
		panic(err)
	}
	return buf[:hl+n], kind
}

// builtPacketTCP builds an IP+TCP packet from src to dst (the family of src).
func builtPacketTCP(r *rand.Rand, buf []byte, src, dst netip.Addr) ([]byte, error) {
	hl := 20
	if src.Is6() {
		hl = 40
	}
	o := randOptions(r)
	h := TCPHeader{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: r.Uint32(), Flags: TCPFlagACK, Options: &o}
	payload := randBytes(r, r.IntN(1400))
	n, err := BuildTCP(buf[hl:], &h, payload, PseudoHeaderSum(src, dst, ProtoTCP, h.Len()+len(payload)))
	if err != nil {
		return nil, err
	}
	if src.Is6() {
		BuildIPv6(buf, &IPv6Header{NextHeader: ProtoTCP, Src: src, Dst: dst, PayloadLen: n})
	} else {
		BuildIPv4(buf, &IPv4Header{Protocol: ProtoTCP, Src: src, Dst: dst, PayloadLen: n, DF: true})
	}
	return buf[:hl+n], nil
}

// Packets built by wire decode cleanly in gopacket, every checksum verifies
// in gopacket's own code, and re-serialising gopacket's decoded TCP layer
// with computed checksums reproduces wire's bytes exactly.
func TestDiffBuiltAcceptedByGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	buf := make([]byte, 2000)
	counts := map[string]int{}
	for i := 0; i < diffN; i++ {
		pkt, kind := builtPacket(r, buf)
		counts[kind]++
		first := layers.LayerTypeIPv4
		if pkt[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
		p := decodeG(t, pkt, first)
		var nl gopacket.NetworkLayer
		if g, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			nl = g
			if _, v := g.VerifyChecksum(); !v.Valid {
				t.Fatal("IPv4 checksum rejected by gopacket")
			}
		} else {
			nl = p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		}
		switch l := p.Layers()[1].(type) {
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(nl)
			if _, v := l.VerifyChecksum(); !v.Valid {
				t.Fatalf("TCP checksum rejected by gopacket")
			}
			seg, _ := ParseTCP(nl.LayerPayload())
			compareTCP(t, seg, l)
			// Independent serialisation of the same header.
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, l, gopacket.Payload(l.Payload)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sb.Bytes(), seg) {
				t.Fatalf("gopacket serialisation differs\nwire     % x\ngopacket % x", []byte(seg), sb.Bytes())
			}
		case *layers.ICMPv4:
			if _, v := l.VerifyChecksum(); !v.Valid {
				t.Fatal("ICMPv4 checksum rejected by gopacket")
			}
			m, _ := ParseICMPv4(nl.LayerPayload())
			compareICMPv4(t, m, l)
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(nl)
			if _, v := l.VerifyChecksum(); !v.Valid {
				t.Fatal("ICMPv6 checksum rejected by gopacket")
			}
			m, _ := ParseICMPv6(nl.LayerPayload())
			compareICMPv6(t, m, p, nl.(*layers.IPv6))
		default:
			t.Fatalf("unexpected layer %v", l.LayerType())
		}
	}
	t.Logf("built packets accepted by gopacket: %v", counts)
}
