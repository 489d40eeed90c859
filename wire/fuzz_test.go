package wire

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The fuzz targets check that parsers never panic, that what they accept
// is internally consistent, and that accepted packets survive a round trip
// through the builders. Seed corpora live in testdata/fuzz/<FuzzName>/.

func FuzzIPv4(f *testing.F) {
	f.Add(mkIPv4(8))
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, err := ParseIPv4(b)
		if err != nil {
			if ip != nil {
				t.Fatal("view returned with error")
			}
			return
		}
		hl := ip.HeaderLen()
		if hl < 20 || hl > len(ip) || int(ip.TotalLen()) != len(ip) || ip.Version() != 4 {
			t.Fatalf("inconsistent view hl=%d tl=%d len=%d", hl, ip.TotalLen(), len(ip))
		}
		if len(ip.Payload()) != len(ip)-hl || len(ip.Options()) != hl-20 {
			t.Fatal("payload/options bounds")
		}
		if ip.IsFragment() != (ip.MoreFragments() || ip.FragmentOffset() != 0) {
			t.Fatal("IsFragment")
		}
		_ = ip.Src().String() + ip.Dst().String()
		_ = ip.PseudoHeaderSum()
		valid := ip.ValidChecksum()
		c := append(IPv4(nil), ip...)
		c.ComputeChecksum()
		if !c.ValidChecksum() || (valid && c.Checksum() != ip.Checksum() && !(c.Checksum() == 0 && ip.Checksum() == 0xffff)) {
			t.Fatalf("checksum %#x valid=%v recomputed %#x", ip.Checksum(), valid, c.Checksum())
		}
		// Rebuild an option-less, unfragmented header from the fields.
		if hl == 20 && !ip.IsFragment() && ip[6]&0x80 == 0 && ip.TTL() != 0 {
			buf := make([]byte, len(ip))
			n, err := BuildIPv4(buf, &IPv4Header{TOS: ip.TOS(), TTL: ip.TTL(), Protocol: ip.Protocol(), ID: ip.ID(),
				DF: ip.DontFragment(), Src: ip.Src(), Dst: ip.Dst(), PayloadLen: len(ip.Payload())})
			if err != nil || n != 20 || !bytes.Equal(buf[:20], c[:20]) {
				t.Fatalf("rebuild: %v\n% x\n% x", err, buf[:20], []byte(c[:20]))
			}
		}
		if c.TTL() > 0 {
			ttl := c.TTL()
			if c.DecTTL() != ttl-1 || !c.ValidChecksum() {
				t.Fatal("DecTTL broke the checksum")
			}
		}
		// The same bytes read as a quoted (possibly truncated) packet.
		q, err := parseIPv4Quoted(b[:len(b)/2+10])
		if err == nil {
			_ = q.Payload()
		}
	})
}

func FuzzIPv6(f *testing.F) {
	f.Add(mkIPv6(ProtoTCP, make([]byte, 20)))
	f.Add(mkIPv6(ProtoHopByHop, cat(ext(ProtoHopByHop, ProtoIPv6Frag, 8), ext(ProtoIPv6Frag, ProtoTCP, 8), make([]byte, 20))))
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, err := ParseIPv6(b)
		if err != nil {
			return
		}
		if len(ip) != 40+int(ip.PayloadLen()) || ip.Version() != 6 {
			t.Fatal("inconsistent view")
		}
		_ = ip.TrafficClass() + ip.HopLimit()
		_ = ip.FlowLabel()
		_ = ip.Src().String() + ip.Dst().String()
		proto, pl, err := ip.UpperLayer()
		it := ip.ExtHeaders()
		n, total := 0, 0
		for it.Next() {
			h := it.Header()
			if len(h.Data) < 8 || len(h.Data)%8 != 0 || !IsIPv6ExtHeader(h.Proto) {
				t.Fatalf("bad ext header %d len %d", h.Proto, len(h.Data))
			}
			if h.Proto == ProtoIPv6Frag {
				_, _, _ = h.FragOffset(), h.FragMore(), h.FragID()
			}
			n++
			total += len(h.Data)
		}
		if n > MaxIPv6ExtHeaders {
			t.Fatal("walk not bounded")
		}
		switch {
		case err == nil:
			if it.Err() != nil {
				t.Fatal("UpperLayer ok but walk failed")
			}
			up, rest := it.Upper()
			if up != proto || IsIPv6ExtHeader(proto) {
				t.Fatalf("proto %d vs %d", proto, up)
			}
			if proto != ProtoNoNext && (!bytes.Equal(rest, pl) || 40+total+len(pl) != len(ip)) {
				t.Fatal("payload bounds")
			}
		case err == ErrFragment:
			if proto != ProtoIPv6Frag || !ip.IsFragment() || len(pl) < 8 {
				t.Fatal("fragment report")
			}
		default:
			if it.Err() == nil && err != ErrFragment {
				t.Fatalf("UpperLayer %v but walk ok", err)
			}
		}
		if q, err := parseIPv6Quoted(b[:len(b)/2+20]); err == nil {
			_, _, _ = q.upperLayer(true)
		}
	})
}

func FuzzTCP(f *testing.F) {
	opts := fullOpts()
	buf := make([]byte, 100)
	n, _ := BuildTCP(buf, &TCPHeader{SrcPort: 1, DstPort: 2, Flags: TCPFlagSYN, Options: &opts}, []byte("hi"), 0)
	f.Add(buf[:n])
	f.Add(mkTCP([]byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 1}))
	f.Add(mkTCP([]byte{254, 8, 0xf9, 0x89, 1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := ParseTCP(b)
		if err != nil {
			// The option parser must agree on option-level failures.
			return
		}
		hl := seg.HeaderLen()
		if hl < 20 || hl > len(seg) || hl != seg.DataOffset()*4 || len(seg.Options()) != hl-20 || len(seg.Payload()) != len(seg)-hl {
			t.Fatal("inconsistent view")
		}
		var o TCPOptions
		if err := seg.ParseOptions(&o); err != nil {
			t.Fatalf("ParseTCP accepted but ParseOptions: %v", err)
		}
		if o.NumSACK < 0 || o.NumSACK > 4 || o.CookieLen < 0 || o.CookieLen > 16 || (o.CookieLen != 0 && !o.HasFastOpen) {
			t.Fatalf("option ranges %+v", o)
		}
		// Differential: gopacket frames the same options the same way
		// (MPTCP, kind 30, is skipped: gopacket validates its subtypes).
		if !bytes.Contains(seg.Options(), []byte{30}) {
			var g layers.TCP
			if err := g.DecodeFromBytes(seg, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("gopacket rejects what wire accepts: %v", err)
			}
			if want := optsFromGopacket(t, &g); want != o {
				t.Fatalf("options differ from gopacket\nwire     %+v\ngopacket %+v", o, want)
			}
		}
		// Re-encode: everything survives except SACK blocks that no
		// longer fit after alignment padding.
		var enc [40]byte
		l := o.Encode(enc[:])
		if l != o.Len() || l%4 != 0 || l > 40 {
			t.Fatalf("encode len %d vs %d", l, o.Len())
		}
		var o2 TCPOptions
		if err := o2.Parse(enc[:l]); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if o2.NumSACK > o.NumSACK {
			t.Fatal("SACK blocks added")
		}
		for i := 0; i < o2.NumSACK; i++ {
			if o2.SACK[i] != o.SACK[i] {
				t.Fatal("SACK blocks changed")
			}
		}
		o2.NumSACK, o2.SACK = o.NumSACK, o.SACK
		if o2 != o {
			t.Fatalf("options round trip\n%+v\n%+v", o, o2)
		}
		// Rebuild the whole segment from the parsed fields.
		h := TCPHeader{SrcPort: seg.SrcPort(), DstPort: seg.DstPort(), Seq: seg.Seq(), Ack: seg.Ack(), Flags: seg.Flags(),
			Window: seg.Window(), Urgent: seg.Urgent(), Options: &o}
		out := make([]byte, 60+len(seg.Payload()))
		ps := PseudoHeaderSum(a4src, a6dst, ProtoTCP, h.Len()+len(seg.Payload()))
		m, err := BuildTCP(out, &h, seg.Payload(), ps)
		if err != nil {
			t.Fatal(err)
		}
		seg2, err := ParseTCP(out[:m])
		if err != nil || !seg2.ValidChecksum(ps) || seg2.Seq() != seg.Seq() || seg2.Ack() != seg.Ack() || seg2.Flags() != seg.Flags() ||
			seg2.Window() != seg.Window() || seg2.Urgent() != seg.Urgent() || seg2.SrcPort() != seg.SrcPort() ||
			!bytes.Equal(seg2.Payload(), seg.Payload()) {
			t.Fatalf("rebuild: %v", err)
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	buf := make([]byte, 600)
	n, _ := BuildICMPv4Echo(buf, ICMPv4EchoRequest, 1, 2, []byte("hello"))
	f.Add(append([]byte(nil), buf[:n]...))
	n, _ = BuildICMPv4FragNeeded(buf, 1400, mkIPv4(30))
	f.Add(append([]byte(nil), buf[:n]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICMPv4(b)
		if err != nil {
			return
		}
		_, _, _, _, _ = m.Type(), m.Code(), m.ID(), m.Seq(), m.MTU()
		_, _ = m.Rest(), m.IsError()
		_ = m.ValidChecksum()
		if len(m.Body()) != len(m)-8 {
			t.Fatal("body")
		}
		ip, tr, err := m.Quoted()
		if err == nil {
			if ip.Version() != 4 || ip.HeaderLen() > len(ip) || len(tr) > len(m.Body()) {
				t.Fatal("quoted bounds")
			}
			_ = ip.Src()
		}
		c := append(ICMPv4(nil), m...)
		c.ComputeChecksum()
		if !c.ValidChecksum() {
			t.Fatal("ComputeChecksum")
		}
		// Rebuild echo / unreachable from the fields.
		out := make([]byte, len(m)+8)
		switch m.Type() {
		case ICMPv4EchoRequest, ICMPv4EchoReply:
			if m.Code() == 0 {
				k, err := BuildICMPv4Echo(out, m.Type(), m.ID(), m.Seq(), m.Body())
				if err != nil || !bytes.Equal(out[:k], c) {
					t.Fatal("echo rebuild")
				}
			}
		case ICMPv4DestUnreachable:
			if m[4] == 0 && m[5] == 0 && len(m.Body()) <= ICMPv4MaxQuote {
				k, err := BuildICMPv4Unreachable(out, m.Code(), m.MTU(), m.Body())
				if err != nil || !bytes.Equal(out[:k], c) {
					t.Fatal("unreachable rebuild")
				}
			}
		}
	})
}

func FuzzICMPv6(f *testing.F) {
	buf := make([]byte, 1400)
	n, _ := BuildICMPv6Echo(buf, a6src, a6dst, ICMPv6EchoRequest, 1, 2, []byte("hello"))
	f.Add(append([]byte(nil), buf[:n]...))
	n, _ = BuildICMPv6PacketTooBig(buf, a6src, a6dst, 1280, mkIPv6(ProtoIPv6Frag, cat(ext(ProtoIPv6Frag, ProtoTCP, 8), make([]byte, 20))))
	f.Add(append([]byte(nil), buf[:n]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseICMPv6(b)
		if err != nil {
			return
		}
		_, _, _, _, _ = m.Type(), m.Code(), m.ID(), m.Seq(), m.MTU()
		_, _ = m.Rest(), m.IsError()
		ps := PseudoHeaderSum(a6src, a6dst, ProtoICMPv6, len(m))
		_ = m.ValidChecksum(ps)
		ip, proto, tr, err := m.Quoted()
		if err == nil {
			if ip.Version() != 6 || len(tr) > len(m.Body()) || IsIPv6ExtHeader(proto) {
				t.Fatal("quoted")
			}
		}
		c := append(ICMPv6(nil), m...)
		c.ComputeChecksum(a6src, a6dst)
		if !c.ValidChecksum(ps) {
			t.Fatal("ComputeChecksum")
		}
		out := make([]byte, len(m)+8)
		switch m.Type() {
		case ICMPv6EchoRequest, ICMPv6EchoReply:
			if m.Code() == 0 {
				k, err := BuildICMPv6Echo(out, a6src, a6dst, m.Type(), m.ID(), m.Seq(), m.Body())
				if err != nil || !bytes.Equal(out[:k], c) {
					t.Fatal("echo rebuild")
				}
			}
		case ICMPv6PacketTooBig:
			if m.Code() == 0 && len(m.Body()) <= ICMPv6MaxQuote {
				k, err := BuildICMPv6PacketTooBig(out, a6src, a6dst, m.MTU(), m.Body())
				if err != nil || !bytes.Equal(out[:k], c) {
					t.Fatal("ptb rebuild")
				}
			}
		}
	})
}
