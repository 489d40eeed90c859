package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var (
	a4src = netip.MustParseAddr("10.0.0.1")
	a4dst = netip.MustParseAddr("10.0.0.2")
	a6src = netip.MustParseAddr("2001:db8::1")
	a6dst = netip.MustParseAddr("2001:db8::2")
)

func mkIPv4(payload int) []byte {
	b := make([]byte, 20+payload)
	BuildIPv4(b, &IPv4Header{Protocol: ProtoTCP, Src: a4src, Dst: a4dst, PayloadLen: payload, ID: 7, DF: true, TTL: 9})
	return b
}

func TestIPv4RoundTrip(t *testing.T) {
	b := mkIPv4(5)
	copy(b[20:], "hello")
	b = append(b, 0, 0, 0) // link padding is trimmed
	ip, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Version() != 4 || ip.HeaderLen() != 20 || ip.TotalLen() != 25 || len(ip) != 25 || ip.ID() != 7 ||
		!ip.DontFragment() || ip.MoreFragments() || ip.FragmentOffset() != 0 || ip.IsFragment() ||
		ip.TTL() != 9 || ip.Protocol() != ProtoTCP || ip.Src() != a4src || ip.Dst() != a4dst ||
		string(ip.Payload()) != "hello" || !ip.ValidChecksum() || len(ip.Options()) != 0 {
		t.Fatalf("bad fields % x", []byte(ip))
	}
	// Fragment recognition.
	b[6], b[7] = 0x20, 0 // MF
	if ip, _ := ParseIPv4(b); !ip.IsFragment() || !ip.MoreFragments() {
		t.Fatal("MF not a fragment")
	}
	b[6], b[7] = 0x40, 0x03 // DF + offset 3*8
	if ip, _ := ParseIPv4(b); !ip.IsFragment() || ip.FragmentOffset() != 24 || !ip.DontFragment() {
		t.Fatal("offset not a fragment")
	}
	// Options are skipped.
	o := make([]byte, 28)
	BuildIPv4(o, &IPv4Header{Protocol: ProtoICMP, Src: a4src, Dst: a4dst, PayloadLen: 4})
	o[0] = 0x46
	copy(o[20:], []byte{7, 3, 4, 0}) // record route stub
	copy(o[24:], "data")
	binary.BigEndian.PutUint16(o[2:], 28)
	IPv4(o).ComputeChecksum()
	ip, err = ParseIPv4(o)
	if err != nil || string(ip.Payload()) != "data" || len(ip.Options()) != 4 || !ip.ValidChecksum() {
		t.Fatalf("options: %v %q", err, ip.Payload())
	}
}

func TestIPv4Malformed(t *testing.T) {
	good := mkIPv4(8)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrTruncated},
		{"19 bytes", good[:19], ErrTruncated},
		{"version 6", mod(func(b []byte) []byte { b[0] = 0x65; return b }), ErrVersion},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0x05; return b }), ErrVersion},
		{"IHL 4", mod(func(b []byte) []byte { b[0] = 0x44; return b }), ErrHeaderLen},
		{"IHL 0", mod(func(b []byte) []byte { b[0] = 0x40; return b }), ErrHeaderLen},
		{"total < IHL", mod(func(b []byte) []byte { b[0] = 0x48; return b }), ErrTotalLen},
		{"total 0", mod(func(b []byte) []byte { b[2], b[3] = 0, 0; return b }), ErrTotalLen},
		{"total > len", mod(func(b []byte) []byte { b[3]++; return b }), ErrTruncated},
		{"IHL 15 > total", mod(func(b []byte) []byte { b[0] = 0x4f; return b }), ErrTotalLen},
	}
	for _, c := range cases {
		if _, err := ParseIPv4(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
	if _, err := BuildIPv4(make([]byte, 19), &IPv4Header{Src: a4src, Dst: a4dst}); !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("small buffer: %v", err)
	}
	if _, err := BuildIPv4(make([]byte, 20), &IPv4Header{Src: a6src, Dst: a4dst}); !errors.Is(err, ErrAddress) {
		t.Errorf("v6 addr: %v", err)
	}
	if _, err := BuildIPv4(make([]byte, 20), &IPv4Header{Src: a4src, Dst: a4dst, PayloadLen: 65516}); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := BuildIPv4(make([]byte, 20), &IPv4Header{Src: a4src, Dst: a4dst, PayloadLen: -1}); !errors.Is(err, ErrTooLong) {
		t.Errorf("negative: %v", err)
	}
}

// ext builds an extension header of the given type and total length
// (multiple of 8) with PadN options.
func ext(proto, next uint8, n int) []byte {
	b := make([]byte, n)
	b[0] = next
	if proto == ProtoIPv6Frag {
		return b
	}
	b[1] = uint8(n/8 - 1)
	if n > 2 {
		b[2] = 1 // PadN
		b[3] = uint8(n - 4)
	}
	return b
}

func mkIPv6(next uint8, payload []byte) []byte {
	b := make([]byte, 40+len(payload))
	BuildIPv6(b, &IPv6Header{NextHeader: next, Src: a6src, Dst: a6dst, PayloadLen: len(payload), TrafficClass: 0xb8, FlowLabel: 0x12345, HopLimit: 3})
	copy(b[40:], payload)
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestIPv6RoundTrip(t *testing.T) {
	tcp := []byte("TCPHDRxx")
	frag := ext(ProtoIPv6Frag, ProtoTCP, 8) // atomic fragment
	rt := ext(ProtoIPv6Route, ProtoIPv6Frag, 24)
	rt[2], rt[3] = 4, 0 // routing type 4, segments left 0
	p := cat(ext(ProtoHopByHop, ProtoIPv6Opts, 8), ext(ProtoIPv6Opts, ProtoIPv6Route, 16), rt, frag, tcp)
	b := append(mkIPv6(ProtoHopByHop, p), 0xee) // trailer trimmed
	ip, err := ParseIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Version() != 6 || ip.TrafficClass() != 0xb8 || ip.FlowLabel() != 0x12345 || int(ip.PayloadLen()) != len(p) ||
		ip.NextHeader() != ProtoHopByHop || ip.HopLimit() != 3 || ip.Src() != a6src || ip.Dst() != a6dst || len(ip) != 40+len(p) {
		t.Fatalf("fields % x", []byte(ip))
	}
	proto, pl, err := ip.UpperLayer()
	if err != nil || proto != ProtoTCP || !bytes.Equal(pl, tcp) || ip.IsFragment() {
		t.Fatalf("upper: %d %q %v", proto, pl, err)
	}
	it := ip.ExtHeaders()
	var kinds []uint8
	for it.Next() {
		kinds = append(kinds, it.Header().Proto)
	}
	if !bytes.Equal(kinds, []uint8{ProtoHopByHop, ProtoIPv6Opts, ProtoIPv6Route, ProtoIPv6Frag}) || it.Err() != nil {
		t.Fatalf("ext walk %v %v", kinds, it.Err())
	}
	// A real fragment is reported.
	frag[2], frag[3] = 0, 1 // offset 0, M
	binary.BigEndian.PutUint32(frag[4:], 0xdeadbeef)
	b = mkIPv6(ProtoIPv6Frag, cat(frag, tcp))
	ip, _ = ParseIPv6(b)
	proto, pl, err = ip.UpperLayer()
	if !errors.Is(err, ErrFragment) || proto != ProtoIPv6Frag || !bytes.Equal(pl, cat(frag, tcp)) || !ip.IsFragment() {
		t.Fatalf("fragment: %d %v", proto, err)
	}
	it = ip.ExtHeaders()
	if !it.Next() || it.Header().FragID() != 0xdeadbeef || !it.Header().FragMore() || it.Header().FragOffset() != 0 {
		t.Fatal("frag header fields")
	}
	// No next header.
	ip, _ = ParseIPv6(mkIPv6(ProtoNoNext, []byte("junk")))
	if proto, pl, err := ip.UpperLayer(); proto != ProtoNoNext || len(pl) != 0 || err != nil {
		t.Fatal("no next header")
	}
}

func TestIPv6Malformed(t *testing.T) {
	good := mkIPv6(ProtoTCP, make([]byte, 20))
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		err  error
	}{
		{"39 bytes", good[:39], ErrTruncated},
		{"version 4", mod(func(b []byte) []byte { b[0] = 0x40; return b }), ErrVersion},
		{"payload len past end", mod(func(b []byte) []byte { b[5]++; return b }), ErrTruncated},
	}
	for _, c := range cases {
		if _, err := ParseIPv6(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
	many := make([][]byte, 0, MaxIPv6ExtHeaders+1)
	for i := 0; i <= MaxIPv6ExtHeaders; i++ {
		many = append(many, ext(ProtoIPv6Opts, ProtoIPv6Opts, 8))
	}
	extCases := []struct {
		name string
		next uint8
		p    []byte
		err  error
	}{
		{"ext shorter than 8", ProtoIPv6Opts, make([]byte, 7), ErrExtHeader},
		{"ext length past end", ProtoIPv6Opts, func() []byte { e := ext(ProtoIPv6Opts, ProtoTCP, 16); e[1] = 2; return e }(), ErrExtHeader},
		{"fragment truncated", ProtoIPv6Frag, make([]byte, 6), ErrExtHeader},
		{"hop-by-hop not first", ProtoIPv6Opts, cat(ext(ProtoIPv6Opts, ProtoHopByHop, 8), ext(ProtoHopByHop, ProtoTCP, 8)), ErrHopByHopNotFirst},
		{"too many ext headers", ProtoIPv6Opts, cat(many...), ErrTooManyExt},
	}
	for _, c := range extCases {
		ip, err := ParseIPv6(mkIPv6(c.next, c.p))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, _, err := ip.UpperLayer(); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
	if _, err := BuildIPv6(make([]byte, 39), &IPv6Header{Src: a6src, Dst: a6dst}); !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("small: %v", err)
	}
	if _, err := BuildIPv6(make([]byte, 40), &IPv6Header{Src: a4src, Dst: a6dst}); !errors.Is(err, ErrAddress) {
		t.Errorf("v4 addr: %v", err)
	}
	if _, err := BuildIPv6(make([]byte, 40), &IPv6Header{Src: a6src, Dst: a6dst, PayloadLen: 65536}); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
}

func fullOpts() TCPOptions {
	o := TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true,
		HasTS: true, TSVal: 0x01020304, TSEcr: 0x05060708, HasFastOpen: true, CookieLen: 8}
	copy(o.Cookie[:], "cookie!!")
	return o
}

func TestTCPRoundTrip(t *testing.T) {
	opts := fullOpts()
	h := TCPHeader{SrcPort: 1234, DstPort: 80, Seq: 0xfffffff0, Ack: 42, Flags: TCPFlagSYN | TCPFlagACK | TCPFlagECE,
		Window: 65535, Urgent: 3, Options: &opts}
	payload := []byte("payload!")
	buf := make([]byte, 100)
	n := h.Len() + len(payload)
	got, err := BuildTCP(buf, &h, payload, PseudoHeaderSum(a4src, a4dst, ProtoTCP, n))
	if err != nil || got != n {
		t.Fatalf("build %d %v", got, err)
	}
	seg, err := ParseTCP(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if seg.SrcPort() != 1234 || seg.DstPort() != 80 || seg.Seq() != 0xfffffff0 || seg.Ack() != 42 || seg.Flags() != h.Flags ||
		seg.Window() != 65535 || seg.Urgent() != 3 || seg.HeaderLen() != h.Len() || seg.DataOffset()*4 != h.Len() ||
		!bytes.Equal(seg.Payload(), payload) || !seg.ValidChecksum(PseudoHeaderSum(a4src, a4dst, ProtoTCP, n)) {
		t.Fatalf("fields % x", []byte(seg))
	}
	var o TCPOptions
	if err := seg.ParseOptions(&o); err != nil || o != opts {
		t.Fatalf("options %+v %v, want %+v", o, err, opts)
	}
	// Every option combination round-trips and stays within 40 bytes.
	for mask := 0; mask < 1<<7; mask++ {
		in := TCPOptions{}
		if mask&1 != 0 {
			in.HasMSS, in.MSS = true, 536
		}
		if mask&2 != 0 {
			in.HasWScale, in.WScale = true, 14
		}
		if mask&4 != 0 {
			in.SACKPermitted = true
		}
		if mask&8 != 0 {
			in.HasTS, in.TSVal, in.TSEcr = true, 1, 0xffffffff
		}
		if mask&16 != 0 {
			in.HasFastOpen, in.FastOpenExp = true, mask&64 != 0
			in.CookieLen = 4 * (mask % 5)
			copy(in.Cookie[:in.CookieLen], "0123456789abcdef")
		}
		if mask&32 != 0 {
			in.NumSACK = 4
			for i := range in.SACK {
				in.SACK[i] = SACKBlock{uint32(i * 100), uint32(i*100 + 50)}
			}
		}
		if mask&16 != 0 && in.CookieLen == 0 {
			in.Cookie = [16]byte{}
		}
		var b [60]byte
		l := in.Encode(b[:])
		if l != in.Len() || l%4 != 0 {
			t.Fatalf("mask %d: Encode %d Len %d", mask, l, in.Len())
		}
		var out TCPOptions
		if err := out.Parse(b[:l]); err != nil {
			t.Fatalf("mask %d: %v", mask, err)
		}
		if l > 40 {
			t.Fatalf("mask %d: %d bytes of options", mask, l)
		}
		// SACK blocks that did not fit were dropped.
		want := in
		want.NumSACK = out.NumSACK
		for i := out.NumSACK; i < 4; i++ {
			want.SACK[i] = SACKBlock{}
		}
		if out != want || (in.NumSACK > 0 && out.NumSACK == 0 && !in.HasFastOpen) {
			t.Fatalf("mask %d: got %+v want %+v", mask, out, want)
		}
	}
}

func TestTCPOptionsLinuxLayout(t *testing.T) {
	// SYN as Linux sends it: MSS, SACK_PERM+TS, NOP+WS.
	o := TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSVal: 1, TSEcr: 0, HasWScale: true, WScale: 7}
	var b [40]byte
	n := o.Encode(b[:])
	want := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	if !bytes.Equal(b[:n], want) {
		t.Fatalf("got % x\nwant % x", b[:n], want)
	}
	// TS + SACK: 3 blocks fit, the 4th is dropped.
	o = TCPOptions{HasTS: true, NumSACK: 4}
	if o.Len() != 12+4+24 {
		t.Fatalf("TS+4 SACK len %d", o.Len())
	}
	// Too short a buffer writes nothing.
	if o.Encode(b[:10]) != 0 {
		t.Fatal("short buffer encoded")
	}
	// The largest option set fits exactly; SACK blocks are dropped.
	big := TCPOptions{HasMSS: true, HasTS: true, HasWScale: true, SACKPermitted: true, HasFastOpen: true, FastOpenExp: true, CookieLen: 16, NumSACK: 4}
	if big.Len() != 40 {
		t.Fatalf("len %d", big.Len())
	}
	// Out-of-range counts are clamped, not trusted.
	odd := TCPOptions{NumSACK: 99, HasFastOpen: true, CookieLen: 99}
	if l := odd.Len(); l > 40 || odd.Encode(b[:]) != l {
		t.Fatalf("clamped len %d", l)
	}
	if _, err := BuildTCP(make([]byte, 19), &TCPHeader{}, nil, 0); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatal(err)
	}
	if _, err := BuildTCP(make([]byte, 21), &TCPHeader{}, []byte("ab"), 0); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatal(err)
	}
}

func mkTCP(opts []byte) []byte {
	b := make([]byte, 20+len(opts))
	b[12] = uint8(len(b)/4) << 4
	copy(b[20:], opts)
	return b
}

func TestTCPMalformed(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		err  error
	}{
		{"short", make([]byte, 19), ErrTruncated},
		{"data offset 4", func() []byte { b := mkTCP(nil); b[12] = 4 << 4; return b }(), ErrDataOffset},
		{"data offset 0", func() []byte { b := mkTCP(nil); b[12] = 0; return b }(), ErrDataOffset},
		{"data offset past end", func() []byte { b := mkTCP(nil); b[12] = 6 << 4; return b }(), ErrDataOffset},
		{"data offset 15 past end", func() []byte { b := mkTCP(make([]byte, 36)); b[12] = 15 << 4; return b }(), ErrDataOffset},
		{"option length 0", mkTCP([]byte{99, 0, 0, 0}), ErrOptionLength},
		{"option length 1", mkTCP([]byte{99, 1, 0, 0}), ErrOptionLength},
		{"kind without length byte", mkTCP([]byte{1, 1, 1, 2}), ErrOptionTruncated},
		{"length past header end", mkTCP([]byte{99, 5, 0, 0}), ErrOptionTruncated},
		{"MSS length 3", mkTCP([]byte{2, 3, 0, 0}), ErrOptionLength},
		{"MSS length 5", mkTCP([]byte{2, 5, 0, 0, 0, 1, 1, 1}), ErrOptionLength},
		{"WS length 4", mkTCP([]byte{3, 4, 0, 0}), ErrOptionLength},
		{"WS length 2", mkTCP([]byte{3, 2, 1, 1}), ErrOptionLength},
		{"SACK-perm length 3", mkTCP([]byte{4, 3, 0, 1}), ErrOptionLength},
		{"TS length 8", mkTCP([]byte{8, 8, 0, 0, 0, 0, 0, 0}), ErrOptionLength},
		{"TS length 12", mkTCP([]byte{8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), ErrOptionLength},
		{"TS past end", mkTCP([]byte{1, 1, 8, 10, 0, 0, 0, 0}), ErrOptionTruncated},
		{"SACK length 2", mkTCP([]byte{5, 2, 1, 1}), ErrOptionLength},
		{"SACK length 12", mkTCP([]byte{5, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), ErrOptionLength},
		{"SACK length 6", mkTCP([]byte{5, 6, 0, 0, 0, 0, 1, 1}), ErrOptionLength},
	}
	for _, c := range cases {
		if _, err := ParseTCP(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
	var o TCPOptions
	if err := o.Parse(make([]byte, 44)); !errors.Is(err, ErrOptionsTooLong) {
		t.Errorf("44-byte options: %v", err)
	}
}

func TestTCPOptionsLenient(t *testing.T) {
	cases := []struct {
		name string
		opts []byte
		want TCPOptions
	}{
		{"EOL stops parsing", []byte{0, 2, 0, 0}, TCPOptions{}},
		{"data after EOL ignored", []byte{2, 4, 1, 0, 0, 99, 0, 0}, TCPOptions{HasMSS: true, MSS: 256}},
		{"unknown skipped", []byte{99, 4, 0, 0, 2, 4, 0, 1}, TCPOptions{HasMSS: true, MSS: 1}},
		{"254 other ExID skipped", []byte{254, 4, 0x12, 0x34, 4, 2, 1, 1}, TCPOptions{SACKPermitted: true}},
		{"FO cookie request", []byte{34, 2, 1, 1}, TCPOptions{HasFastOpen: true}},
		{"FO exp request", []byte{254, 4, 0xf9, 0x89}, TCPOptions{HasFastOpen: true, FastOpenExp: true}},
		{"FO odd cookie ignored", []byte{34, 7, 1, 2, 3, 4, 5, 0}, TCPOptions{}},
		{"FO 2-byte cookie ignored", []byte{34, 4, 1, 2}, TCPOptions{}},
		{"FO exp cookie", []byte{254, 8, 0xf9, 0x89, 1, 2, 3, 4}, TCPOptions{HasFastOpen: true, FastOpenExp: true, CookieLen: 4, Cookie: [16]byte{1, 2, 3, 4}}},
		{"254 length 3", []byte{254, 3, 0xf9, 0}, TCPOptions{}},
		{"repeat overwrites", []byte{3, 3, 1, 3, 3, 2, 0, 0}, TCPOptions{HasWScale: true, WScale: 2}},
		// Regression (found by the gopacket differential test): a later
		// Fast Open option must not keep the earlier option's cookie bytes.
		{"FO cookie then request", []byte{34, 6, 9, 9, 9, 9, 254, 4, 0xf9, 0x89, 1, 1}, TCPOptions{HasFastOpen: true, FastOpenExp: true}},
		{"SACK 1 block", []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, TCPOptions{NumSACK: 1, SACK: [4]SACKBlock{{1, 2}}}},
	}
	for _, c := range cases {
		var o TCPOptions
		if err := o.Parse(c.opts); err != nil || o != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, o, err, c.want)
		}
		if _, err := ParseTCP(mkTCP(c.opts)); err != nil {
			t.Errorf("%s: ParseTCP %v", c.name, err)
		}
	}
}

func TestICMPv4(t *testing.T) {
	buf := make([]byte, 600)
	n, err := BuildICMPv4Echo(buf, ICMPv4EchoRequest, 0x1234, 7, []byte("ping"))
	if err != nil || n != 12 {
		t.Fatal(n, err)
	}
	m, err := ParseICMPv4(buf[:n])
	if err != nil || m.Type() != ICMPv4EchoRequest || m.Code() != 0 || m.ID() != 0x1234 || m.Seq() != 7 ||
		string(m.Body()) != "ping" || !m.ValidChecksum() || m.IsError() {
		t.Fatalf("echo % x", []byte(m))
	}
	// Frag needed quoting a TCP/IPv4 packet of 1000 bytes: cut to 548.
	orig := make([]byte, 1000)
	BuildIPv4(orig, &IPv4Header{Protocol: ProtoTCP, Src: a4src, Dst: a4dst, PayloadLen: 980, DF: true})
	BuildTCP(orig[20:], &TCPHeader{SrcPort: 5555, DstPort: 80, Seq: 99}, make([]byte, 960), 0)
	n, err = BuildICMPv4FragNeeded(buf, 1400, orig)
	if err != nil || n != 576-20 {
		t.Fatal(n, err)
	}
	m, _ = ParseICMPv4(buf[:n])
	if m.Type() != 3 || m.Code() != 4 || m.MTU() != 1400 || !m.ValidChecksum() || !m.IsError() {
		t.Fatalf("frag needed % x", []byte(m[:8]))
	}
	ip, tr, err := m.Quoted()
	if err != nil || ip.Src() != a4src || ip.Dst() != a4dst || ip.Protocol() != ProtoTCP || len(tr) != 548-20 ||
		binary.BigEndian.Uint16(tr[0:2]) != 5555 || binary.BigEndian.Uint32(tr[4:8]) != 99 {
		t.Fatalf("quoted %v", err)
	}
	// Quoting only header + 8 bytes.
	n, _ = BuildICMPv4Unreachable(buf, ICMPv4PortUnreachable, 0, orig[:28])
	m, _ = ParseICMPv4(buf[:n])
	if _, tr, err := m.Quoted(); err != nil || len(tr) != 8 {
		t.Fatalf("short quote %d %v", len(tr), err)
	}
	bad := []struct {
		name string
		b    []byte
		err  error
	}{
		{"7 bytes", buf[:7], ErrTruncated},
	}
	for _, c := range bad {
		if _, err := ParseICMPv4(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	quoted := []struct {
		name  string
		inner []byte
		err   error
	}{
		{"quote shorter than IP header", orig[:19], ErrTruncated},
		{"quote not IPv4", append([]byte{0x60}, orig[1:28]...), ErrVersion},
		{"quote IHL 4", append([]byte{0x44}, orig[1:28]...), ErrHeaderLen},
		{"quote IHL past quote", append([]byte{0x4f}, orig[1:28]...), ErrTruncated},
		{"quote total < IHL", append(append([]byte{}, orig[:2]...), append([]byte{0, 10}, orig[4:28]...)...), ErrTotalLen},
	}
	for _, c := range quoted {
		n, _ := BuildICMPv4Unreachable(buf, 1, 0, c.inner)
		m, _ := ParseICMPv4(buf[:n])
		if _, _, err := m.Quoted(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v want %v", c.name, err, c.err)
		}
	}
	if _, err := BuildICMPv4Echo(buf[:11], 0, 1, 1, []byte("ping")); !errors.Is(err, ErrBufferTooSmall) {
		t.Error(err)
	}
}

func TestICMPv6(t *testing.T) {
	buf := make([]byte, 1400)
	n, err := BuildICMPv6Echo(buf, a6src, a6dst, ICMPv6EchoReply, 0xabcd, 9, []byte("pong!"))
	if err != nil || n != 13 {
		t.Fatal(n, err)
	}
	m, err := ParseICMPv6(buf[:n])
	if err != nil || m.Type() != ICMPv6EchoReply || m.ID() != 0xabcd || m.Seq() != 9 || string(m.Body()) != "pong!" ||
		!m.ValidChecksum(PseudoHeaderSum(a6src, a6dst, ProtoICMPv6, n)) || m.IsError() {
		t.Fatalf("echo % x", []byte(m))
	}
	if m.ValidChecksum(PseudoHeaderSum(a6dst, a6dst, ProtoICMPv6, n)) {
		t.Fatal("pseudo-header not covered")
	}
	tcp := make([]byte, 1400)
	BuildTCP(tcp, &TCPHeader{SrcPort: 443, DstPort: 40000, Seq: 1}, nil, 0)
	orig := mkIPv6(ProtoIPv6Opts, cat(ext(ProtoIPv6Opts, ProtoTCP, 8), tcp))
	n, err = BuildICMPv6PacketTooBig(buf, a6dst, a6src, 1280, orig)
	if err != nil || n != 1232+8 {
		t.Fatal(n, err)
	}
	m, _ = ParseICMPv6(buf[:n])
	if m.Type() != ICMPv6PacketTooBig || m.MTU() != 1280 || !m.IsError() || !m.ValidChecksum(PseudoHeaderSum(a6dst, a6src, ProtoICMPv6, n)) {
		t.Fatal("ptb")
	}
	ip, proto, tr, err := m.Quoted()
	if err != nil || proto != ProtoTCP || ip.Src() != a6src || binary.BigEndian.Uint16(tr) != 443 || len(tr) != 1232-48 {
		t.Fatalf("quoted %d %v", proto, err)
	}
	n, _ = BuildICMPv6Unreachable(buf, a6dst, a6src, ICMPv6PortUnreachable, orig[:56])
	m, _ = ParseICMPv6(buf[:n])
	if m.Type() != 1 || m.Code() != 4 {
		t.Fatal("unreach")
	}
	if _, proto, tr, err := m.Quoted(); err != nil || proto != ProtoTCP || len(tr) != 8 {
		t.Fatalf("short quote %v", err)
	}
	if _, err := ParseICMPv6(buf[:7]); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	quoted := []struct {
		name  string
		inner []byte
		err   error
	}{
		{"quote shorter than IPv6 header", orig[:39], ErrTruncated},
		{"quote not IPv6", append([]byte{0x45}, orig[1:48]...), ErrVersion},
		{"quote ext header cut", orig[:44], ErrExtHeader},
	}
	for _, c := range quoted {
		n, _ := BuildICMPv6Unreachable(buf, a6dst, a6src, 0, c.inner)
		m, _ := ParseICMPv6(buf[:n])
		if _, _, _, err := m.Quoted(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v want %v", c.name, err, c.err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestSettersAndIncrementalTCP(t *testing.T) {
	opts := TCPOptions{HasTS: true, TSVal: 1, TSEcr: 2}
	h := TCPHeader{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagACK, Window: 5, Options: &opts}
	buf := make([]byte, 200)
	payload := []byte("some data")
	n := h.Len() + len(payload)
	ps := PseudoHeaderSum(a6src, a6dst, ProtoTCP, n)
	BuildTCP(buf, &h, payload, ps)
	seg, err := ParseTCP(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	var o TCPOptions
	if s2, err := ParseTCPWithOptions(buf[:n], &o); err != nil || len(s2) != n || o != opts {
		t.Fatalf("ParseTCPWithOptions %v %+v", err, o)
	}
	if _, err := ParseTCPWithOptions(mkTCP([]byte{2, 3, 0, 0}), &o); !errors.Is(err, ErrOptionLength) {
		t.Fatal(err)
	}
	// Patch fields one at a time with RFC 1624 updates; the result must
	// equal a full recomputation.
	c := seg.Checksum()
	c = ChecksumUpdate32(c, seg.Seq(), 0xdeadbeef)
	seg.SetSeq(0xdeadbeef)
	c = ChecksumUpdate32(c, seg.Ack(), 77)
	seg.SetAck(77)
	c = ChecksumUpdate16(c, seg.Window(), 1000)
	seg.SetWindow(1000)
	c = ChecksumUpdate16(c, seg.SrcPort(), 8080)
	seg.SetSrcPort(8080)
	seg.SetChecksum(c)
	if !seg.ValidChecksum(ps) {
		t.Fatal("incremental TCP update invalid")
	}
	seg.SetDstPort(9)
	seg.SetFlags(TCPFlagFIN | TCPFlagACK)
	seg.SetUrgent(1)
	seg.ComputeChecksum(ps)
	if !seg.ValidChecksum(ps) || seg.DstPort() != 9 || seg.Flags() != TCPFlagFIN|TCPFlagACK || seg.Urgent() != 1 || seg.Seq() != 0xdeadbeef {
		t.Fatal("setters")
	}
	// IPv6 setters.
	b6 := mkIPv6(ProtoTCP, buf[:n])
	ip, _ := ParseIPv6(b6)
	ip.SetTrafficClass(0xfe)
	ip.SetFlowLabel(0xfffff)
	ip.SetHopLimit(1)
	ip.SetNextHeader(ProtoUDP)
	ip.SetSrc(a6dst)
	ip.SetDst(a6src)
	ip.SetPayloadLen(3)
	if ip.Version() != 6 || ip.TrafficClass() != 0xfe || ip.FlowLabel() != 0xfffff || ip.HopLimit() != 1 || ip.NextHeader() != ProtoUDP ||
		ip.Src() != a6dst || ip.Dst() != a6src || len(ip.Payload()) != 3 {
		t.Fatal("IPv6 setters")
	}
	// IPv4 setters with the incremental address update.
	b4 := mkIPv4(0)
	ip4, _ := ParseIPv4(b4)
	newSrc := netip.MustParseAddr("192.0.2.99")
	c4 := ChecksumUpdate32(ip4.Checksum(), binary.BigEndian.Uint32(ip4[12:16]), binary.BigEndian.Uint32(newSrc.AsSlice()))
	ip4.SetSrc(newSrc)
	ip4.SetChecksum(c4)
	if !ip4.ValidChecksum() || ip4.Src() != newSrc {
		t.Fatal("IPv4 incremental address update")
	}
	ip4.SetTOS(4)
	ip4.SetID(5)
	ip4.SetTTL(6)
	ip4.SetProtocol(7)
	ip4.SetDst(newSrc)
	ip4.SetTotalLen(20)
	ip4.ComputeChecksum()
	if !ip4.ValidChecksum() || ip4.TOS() != 4 || ip4.ID() != 5 || ip4.TTL() != 6 || ip4.Protocol() != 7 || ip4.Dst() != newSrc {
		t.Fatal("IPv4 setters")
	}
	// ICMP setters.
	m := make([]byte, 16)
	BuildICMPv4Echo(m, ICMPv4EchoRequest, 1, 1, make([]byte, 8))
	mv, _ := ParseICMPv4(m)
	mv.SetType(ICMPv4EchoReply)
	mv.SetCode(0)
	mv.SetID(2)
	mv.SetSeq(3)
	mv.ComputeChecksum()
	if !mv.ValidChecksum() || mv.Type() != 0 || mv.ID() != 2 || mv.Seq() != 3 || mv.Rest() != 2<<16|3 {
		t.Fatal("ICMPv4 setters")
	}
	m6v, _ := ParseICMPv6(append([]byte(nil), m...))
	m6v.SetType(ICMPv6EchoReply)
	m6v.SetCode(0)
	m6v.SetID(4)
	m6v.SetSeq(5)
	m6v.ComputeChecksum(a6src, a6dst)
	if !m6v.ValidChecksum(PseudoHeaderSum(a6src, a6dst, ProtoICMPv6, len(m6v))) || m6v.ID() != 4 || m6v.Seq() != 5 || m6v.Rest() != 4<<16|5 {
		t.Fatal("ICMPv6 setters")
	}
}

func TestICMPBuildErrors(t *testing.T) {
	big := make([]byte, 70000)
	small := make([]byte, 7)
	cases := []struct {
		name string
		err  error
		f    func() (int, error)
	}{
		{"v4 echo too long", ErrTooLong, func() (int, error) { return BuildICMPv4Echo(big, 8, 0, 0, big[:65508]) }},
		{"v6 echo too long", ErrTooLong, func() (int, error) { return BuildICMPv6Echo(big, a6src, a6dst, 128, 0, 0, big[:65528]) }},
		{"v6 echo small", ErrBufferTooSmall, func() (int, error) { return BuildICMPv6Echo(small, a6src, a6dst, 128, 0, 0, nil) }},
		{"v4 unreachable small", ErrBufferTooSmall, func() (int, error) { return BuildICMPv4Unreachable(small, 1, 0, nil) }},
		{"v6 unreachable small", ErrBufferTooSmall, func() (int, error) { return BuildICMPv6Unreachable(small, a6src, a6dst, 1, nil) }},
		{"v6 too big small", ErrBufferTooSmall, func() (int, error) { return BuildICMPv6PacketTooBig(small, a6src, a6dst, 1280, nil) }},
	}
	for _, c := range cases {
		if _, err := c.f(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	// An echo whose data already sits in place is not copied onto itself.
	buf := make([]byte, 20)
	copy(buf[8:], "in place")
	if n, err := BuildICMPv4Echo(buf, 8, 1, 2, buf[8:16]); err != nil || string(buf[8:n]) != "in place" {
		t.Fatal("in-place echo")
	}
	// DecTTL leaves TTL 0 alone.
	b := mkIPv4(0)
	ip := IPv4(b)
	ip.SetTTL(0)
	ip.ComputeChecksum()
	if ip.DecTTL() != 0 || !ip.ValidChecksum() {
		t.Fatal("DecTTL at 0")
	}
}
