package ustack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ustack/ustack/wire"
)

// TestICMPUnreachableFailsConnect answers a SYN with an ICMP destination
// unreachable quoting it: the connect fails at once with the mapped errno.
func TestICMPUnreachableFailsConnect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dst   netip.Addr
		code  uint8
		errno syscall.Errno
	}{
		{"v4 port", peer4, 3, syscall.ECONNREFUSED},
		{"v4 host", peer4, 1, syscall.EHOSTUNREACH},
		{"v6 port", peer6, 4, syscall.ECONNREFUSED},
		{"v6 noroute", peer6, 0, syscall.ENETUNREACH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := newTestStack(t)
			errc := make(chan error, 1)
			go func() {
				_, err := s.Dial("tcp", netip.AddrPortFrom(tc.dst, 80).String())
				errc <- err
			}()
			syn := readPacket(t, peer)
			var reply []byte
			if tc.dst.Is4() {
				m := make([]byte, 8+len(syn))
				m[0], m[1] = 3, tc.code
				copy(m[8:], syn)
				wire.ICMPv4(m).ComputeChecksum()
				reply = ip4Packet(t, tc.dst, addr4.Addr(), wire.ProtoICMP, m)
			} else {
				m := make([]byte, 8+len(syn))
				m[0], m[1] = 1, tc.code
				copy(m[8:], syn)
				wire.ICMPv6(m).ComputeChecksum(tc.dst, addr6.Addr())
				reply = ip6Packet(t, tc.dst, addr6.Addr(), wire.ProtoICMPv6, m)
			}
			// A quote with a wrong sequence number is ignored (RFC 5927).
			bad := append([]byte(nil), reply...)
			if tc.dst.Is4() {
				bad[20+8+20+4] ^= 0xff
				wire.ICMPv4(bad[20:]).ComputeChecksum()
			} else {
				bad[40+8+40+4] ^= 0xff
				wire.ICMPv6(bad[40:]).ComputeChecksum(tc.dst, addr6.Addr())
			}
			peer.WritePacket(bad)
			waitFor(t, "the bad ICMP error", func() bool {
				st := s.Stats()
				return st.ICMP.InDestUnreachs+st.ICMP6.InDestUnreachs == 1
			})
			if c := s.Connections(); len(c) != 1 || c[0].State.String() != "SYN-SENT" {
				t.Fatalf("after an ICMP error with a wrong sequence number: %+v", c)
			}
			peer.WritePacket(reply)
			err := <-errc
			if !errors.Is(err, tc.errno) {
				t.Fatalf("dial: %v, want %v", err, tc.errno)
			}
			if n := len(s.Connections()); n != 0 {
				t.Errorf("%d connections left", n)
			}
		})
	}
}

// TestICMPFragNeededLowersMSS: after an ICMP fragmentation-needed quoting
// one of its data segments, a connection sends segments that fit the
// reported MTU.
func TestICMPFragNeededLowersMSS(t *testing.T) {
	s, peer := newTestStack(t)
	ln, err := s.ListenTCP("tcp", ":90")
	if err != nil {
		t.Fatal(err)
	}
	us := netip.AddrPortFrom(addr4.Addr(), 90)
	them := netip.AddrPortFrom(peer4, 50000)
	peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 100, Flags: wire.TCPFlagSYN, Window: 65535,
		Options: &wire.TCPOptions{MSS: 1460, HasMSS: true}}, nil))
	_, _, sa := parseReply(t, readPacket(t, peer))
	peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 101, Ack: sa.Seq() + 1, Flags: wire.TCPFlagACK, Window: 65535}, nil))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	c.SetNoDelay(true)
	c.Write(make([]byte, 1460))
	data := readPacket(t, peer)
	if len(data) != 1500 {
		t.Fatalf("first data packet %d bytes, want 1500", len(data))
	}
	// The path MTU is 1000: ICMP type 3 code 4 with the next-hop MTU.
	// Routers quote at most 576 bytes in all (RFC 1812).
	m := make([]byte, 8+548)
	m[0], m[1] = 3, 4
	m[6], m[7] = 1000>>8, 1000&0xff
	copy(m[8:], data)
	wire.ICMPv4(m).ComputeChecksum()
	peer.WritePacket(ip4Packet(t, peer4, addr4.Addr(), wire.ProtoICMP, m))
	waitFor(t, "the ICMP error", func() bool { return s.Stats().ICMP.InPktTooBigs == 1 })
	if mss := c.Info().SndMSS; mss != 960 {
		t.Errorf("SndMSS %d after frag-needed 1000, want 960", mss)
	}
	// Ack the first segment; new data comes in packets of at most 1000.
	_, _, d := parseReply(t, data)
	peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 101, Ack: d.Seq() + 1460, Flags: wire.TCPFlagACK, Window: 65535}, nil))
	c.Write(make([]byte, 3000))
	for got := 0; got < 3000; {
		p := readPacket(t, peer)
		if len(p) > 1000 {
			t.Fatalf("packet of %d bytes after the path MTU dropped to 1000", len(p))
		}
		_, _, seg := parseReply(t, p)
		got += len(seg.Payload())
	}
}
