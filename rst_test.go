package ustack

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/wire"
)

func tcpSegment(t *testing.T, src, dst netip.AddrPort, h wire.TCPHeader, payload []byte) []byte {
	t.Helper()
	h.SrcPort, h.DstPort = src.Port(), dst.Port()
	tl := h.Len() + len(payload)
	seg := make([]byte, tl)
	if _, err := wire.BuildTCP(seg, &h, payload, wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, tl)); err != nil {
		t.Fatal(err)
	}
	if src.Addr().Is4() {
		return ip4Packet(t, src.Addr(), dst.Addr(), wire.ProtoTCP, seg)
	}
	return ip6Packet(t, src.Addr(), dst.Addr(), wire.ProtoTCP, seg)
}

// parseReply parses a TCP reply and checks both checksums.
func parseReply(t *testing.T, p []byte) (netip.Addr, netip.Addr, wire.TCP) {
	t.Helper()
	var src, dst netip.Addr
	var payload []byte
	if p[0]>>4 == 4 {
		ip, err := wire.ParseIPv4(p)
		if err != nil || !ip.ValidChecksum() {
			t.Fatalf("bad IPv4 reply: %v", err)
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	} else {
		ip, err := wire.ParseIPv6(p)
		if err != nil {
			t.Fatal(err)
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	}
	seg, err := wire.ParseTCP(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !seg.ValidChecksum(wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(seg))) {
		t.Fatal("bad TCP checksum in reply")
	}
	return src, dst, seg
}

// TestResetClosedPort checks the RFC 9293 3.10.7.1 replies for a port with
// no connection and no listener.
func TestResetClosedPort(t *testing.T) {
	s, peer := newTestStack(t)
	for _, fam := range []struct {
		name     string
		us, them netip.Addr
	}{{"v4", addr4.Addr(), peer4}, {"v6", addr6.Addr(), peer6}} {
		t.Run(fam.name, func(t *testing.T) {
			us := netip.AddrPortFrom(fam.us, 81)
			them := netip.AddrPortFrom(fam.them, 40000)
			// SYN with 3 bytes of data: RST|ACK, seq 0, ack = seq + 1 + 3.
			peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 1024}, []byte("abc")))
			src, dst, r := parseReply(t, readPacket(t, peer))
			if src != fam.us || dst != fam.them || r.SrcPort() != 81 || r.DstPort() != 40000 {
				t.Fatalf("RST %v:%d -> %v:%d", src, r.SrcPort(), dst, r.DstPort())
			}
			if r.Flags() != wire.TCPFlagRST|wire.TCPFlagACK || r.Seq() != 0 || r.Ack() != 1004 || len(r.Payload()) != 0 {
				t.Errorf("reply to SYN: flags %#x seq %d ack %d", r.Flags(), r.Seq(), r.Ack())
			}
			// ACK: RST with seq = SEG.ACK, no ACK flag.
			peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 5, Ack: 77777, Flags: wire.TCPFlagACK, Window: 1024}, nil))
			_, _, r = parseReply(t, readPacket(t, peer))
			if r.Flags() != wire.TCPFlagRST || r.Seq() != 77777 {
				t.Errorf("reply to ACK: flags %#x seq %d", r.Flags(), r.Seq())
			}
			// FIN without ACK: ack = seq + 1.
			peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 9, Flags: wire.TCPFlagFIN, Window: 1024}, nil))
			_, _, r = parseReply(t, readPacket(t, peer))
			if r.Flags() != wire.TCPFlagRST|wire.TCPFlagACK || r.Ack() != 10 {
				t.Errorf("reply to FIN: flags %#x ack %d", r.Flags(), r.Ack())
			}
			// RST: no reply. Then a bad checksum: no reply, counted.
			peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 9, Flags: wire.TCPFlagRST}, nil))
			bad := tcpSegment(t, them, us, wire.TCPHeader{Seq: 9, Flags: wire.TCPFlagSYN}, nil)
			bad[len(bad)-20+16] ^= 0xff
			peer.WritePacket(bad)
			// A final SYN proves the previous two got no reply.
			peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 41, Flags: wire.TCPFlagSYN}, nil))
			_, _, r = parseReply(t, readPacket(t, peer))
			if r.Ack() != 42 {
				t.Errorf("got a reply to the RST or the corrupted segment (ack %d)", r.Ack())
			}
		})
	}
	st := s.Stats()
	if st.TCP.InSegs != 12 || st.TCP.OutRsts != 8 || st.TCP.NoPort != 8 || st.TCP.InCsumErrors != 2 || st.TCP.InErrs != 2 {
		t.Errorf("TCP stats: InSegs %d OutRsts %d NoPort %d InCsumErrors %d InErrs %d",
			st.TCP.InSegs, st.TCP.OutRsts, st.TCP.NoPort, st.TCP.InCsumErrors, st.TCP.InErrs)
	}
}

func TestListenAddresses(t *testing.T) {
	s, _ := newTestStack(t)
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	if got := ln.Addr().String(); got != "[::]:80" {
		t.Errorf("Addr %s", got)
	}
	for _, bad := range []struct{ net, addr string }{
		{"tcp4", "10.0.0.2:80"}, // taken by the wildcard
		{"tcp6", "[fd00::2]:80"},
		{"tcp", "10.0.0.99:81"}, // not our address
		{"udp", ":81"},
		{"tcp4", "[fd00::2]:81"},
		{"tcp", "example.com:81"},
	} {
		if l, err := s.Listen(bad.net, bad.addr); err == nil {
			l.Close()
			t.Errorf("Listen(%q, %q) succeeded", bad.net, bad.addr)
		}
	}
	ln.Close()
	ln4, err := s.Listen("tcp4", "10.0.0.2:80")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	defer ln4.Close()
	if tu := s.tcp.listenerFor(netip.MustParseAddrPort("[fd00::2]:80")); tu != nil {
		t.Error("v6 lookup found the v4 listener")
	}
	ln0, err := s.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln0.Close()
	port := ln0.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	if port < 32768 || port > 60999 {
		t.Errorf("ephemeral listen port %d", port)
	}
	if len(s.Connections()) != 2 {
		t.Errorf("Connections: %+v", s.Connections())
	}
}
