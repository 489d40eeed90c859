package ustack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

var (
	addr4   = netip.MustParsePrefix("10.0.0.2/24")
	peer4   = netip.MustParseAddr("10.0.0.1")
	addr6   = netip.MustParsePrefix("fd00::2/64")
	peer6   = netip.MustParseAddr("fd00::1")
	faraway = netip.MustParseAddr("192.0.2.7")
)

// newTestStack returns a stack on one end of a pipe and the other end, which
// the test drives by hand.
func newTestStack(t *testing.T) (*Stack, link.Endpoint) {
	t.Helper()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := link.Pipe(1500)
	if err := s.AddInterface("p0", a, addr4, addr6); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		b.Close()
	})
	return s, b
}

// readPacket reads one packet from ep or fails after a few seconds.
func readPacket(t *testing.T, ep link.Endpoint) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 65536)
		n, err := ep.ReadPacket(buf)
		ch <- res{buf[:n], err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.b
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5 s")
		return nil
	}
}

func ip4Packet(t *testing.T, src, dst netip.Addr, proto uint8, payload []byte) []byte {
	t.Helper()
	buf := make([]byte, 20+len(payload))
	if _, err := wire.BuildIPv4(buf, &wire.IPv4Header{TTL: 64, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload)}); err != nil {
		t.Fatal(err)
	}
	copy(buf[20:], payload)
	return buf
}

func ip6Packet(t *testing.T, src, dst netip.Addr, proto uint8, payload []byte) []byte {
	t.Helper()
	buf := make([]byte, 40+len(payload))
	if _, err := wire.BuildIPv6(buf, &wire.IPv6Header{HopLimit: 64, NextHeader: proto, Src: src, Dst: dst, PayloadLen: len(payload)}); err != nil {
		t.Fatal(err)
	}
	copy(buf[40:], payload)
	return buf
}

func echoRequest(typ uint8, id, seq uint16, data []byte, pseudo uint32) []byte {
	m := make([]byte, 8+len(data))
	m[0] = typ
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], wire.Checksum(m, pseudo))
	return m
}

// waitFor polls cond until it holds or fails the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEchoV4(t *testing.T) {
	s, peer := newTestStack(t)
	data := []byte("ustack ping payload")
	req := echoRequest(8, 0x1234, 7, data, 0)
	if err := peer.WritePacket(ip4Packet(t, peer4, addr4.Addr(), wire.ProtoICMP, req)); err != nil {
		t.Fatal(err)
	}
	p := readPacket(t, peer)
	ip, err := wire.ParseIPv4(p)
	if err != nil {
		t.Fatal(err)
	}
	if !ip.ValidChecksum() {
		t.Error("bad IP checksum in reply")
	}
	if ip.Src() != addr4.Addr() || ip.Dst() != peer4 || ip.Protocol() != wire.ProtoICMP {
		t.Fatalf("reply %v -> %v proto %d", ip.Src(), ip.Dst(), ip.Protocol())
	}
	m := ip.Payload()
	if m[0] != 0 || m[1] != 0 {
		t.Errorf("type/code %d/%d, want 0/0", m[0], m[1])
	}
	if wire.Checksum(m, 0) != 0 {
		t.Error("bad ICMP checksum in reply")
	}
	if !bytes.Equal(m[4:], req[4:]) {
		t.Error("id/seq/data not echoed")
	}
	st := s.Stats()
	if st.ICMP.InEchos != 1 || st.ICMP.OutEchoReps != 1 || st.IP.InDelivers != 1 || st.IP.OutRequests != 1 {
		t.Errorf("stats %+v %+v", st.IP, st.ICMP)
	}
}

func TestEchoV6(t *testing.T) {
	s, peer := newTestStack(t)
	data := bytes.Repeat([]byte{0xa5}, 100)
	req := echoRequest(128, 0x4321, 9, data, wire.PseudoHeaderSum(peer6, addr6.Addr(), wire.ProtoICMPv6, 8+len(data)))
	if err := peer.WritePacket(ip6Packet(t, peer6, addr6.Addr(), wire.ProtoICMPv6, req)); err != nil {
		t.Fatal(err)
	}
	p := readPacket(t, peer)
	ip, err := wire.ParseIPv6(p)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Src() != addr6.Addr() || ip.Dst() != peer6 || ip.NextHeader() != wire.ProtoICMPv6 {
		t.Fatalf("reply %v -> %v next %d", ip.Src(), ip.Dst(), ip.NextHeader())
	}
	m := ip.Payload()
	if m[0] != 129 || m[1] != 0 {
		t.Errorf("type/code %d/%d, want 129/0", m[0], m[1])
	}
	if wire.Checksum(m, wire.PseudoHeaderSum(ip.Src(), ip.Dst(), wire.ProtoICMPv6, len(m))) != 0 {
		t.Error("bad ICMPv6 checksum in reply")
	}
	if !bytes.Equal(m[4:], req[4:]) {
		t.Error("id/seq/data not echoed")
	}
	if st := s.Stats(); st.ICMP6.InEchos != 1 || st.ICMP6.OutEchoReps != 1 {
		t.Errorf("stats %+v", st.ICMP6)
	}
}

func TestDropCounters(t *testing.T) {
	s, peer := newTestStack(t)
	good := ip4Packet(t, peer4, addr4.Addr(), wire.ProtoICMP, echoRequest(8, 1, 1, nil, 0))

	badIPCsum := append([]byte(nil), good...)
	badIPCsum[10] ^= 0xff
	badICMPCsum := append([]byte(nil), good...)
	badICMPCsum[20+2] ^= 0xff
	frag := ip4Packet(t, peer4, addr4.Addr(), wire.ProtoICMP, echoRequest(8, 1, 1, nil, 0))
	frag[6] = 0x20 // MF
	wire.IPv4(frag).ComputeChecksum()
	truncated := good[:len(good)-2]
	badVersion := append([]byte(nil), good...)
	badVersion[0] = 0x55
	v6req := echoRequest(128, 1, 1, nil, wire.PseudoHeaderSum(peer6, addr6.Addr(), wire.ProtoICMPv6, 8))
	badV6Csum := ip6Packet(t, peer6, addr6.Addr(), wire.ProtoICMPv6, v6req)
	badV6Csum[40+3] ^= 1

	pkts := [][]byte{
		badIPCsum,
		badICMPCsum,
		frag,
		truncated,
		badVersion,
		{},
		ip4Packet(t, peer4, faraway, wire.ProtoICMP, echoRequest(8, 1, 1, nil, 0)),                                 // not for us
		ip4Packet(t, netip.MustParseAddr("224.0.0.1"), addr4.Addr(), wire.ProtoICMP, echoRequest(8, 1, 1, nil, 0)), // bad source
		ip4Packet(t, peer4, addr4.Addr(), 132, []byte("sctp?")),                                                    // unknown protocol
		ip6Packet(t, peer6, addr6.Addr(), 132, []byte("sctp?")),                                                    // unknown protocol
		badV6Csum,
	}
	for _, p := range pkts {
		if len(p) == 0 {
			continue // a pipe does not carry empty packets
		}
		if err := peer.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	want := IPStats{
		InReceives: 10, InCsumErrors: 1, FragmentsDropped: 1, InTruncatedPkts: 1, InHdrErrors: 1,
		NotForUs: 1, InAddrErrors: 1, InUnknownProtos: 2, InDelivers: 2,
		OutRequests: 2, // protocol unreachable (v4) and parameter problem (v6) for the unknown protocols
	}
	waitFor(t, "counters", func() bool { return s.Stats().IP.InReceives == want.InReceives })
	st := s.Stats()
	if st.IP != want {
		t.Errorf("IP stats\n got %+v\nwant %+v", st.IP, want)
	}
	if st.ICMP.InCsumErrors != 1 || st.ICMP6.InCsumErrors != 1 {
		t.Errorf("ICMP csum errors v4 %d v6 %d", st.ICMP.InCsumErrors, st.ICMP6.InCsumErrors)
	}
	// The only replies: protocol unreachable (v4), parameter problem (v6).
	p := readPacket(t, peer)
	ip, err := wire.ParseIPv4(p)
	if err != nil {
		t.Fatal(err)
	}
	m := ip.Payload()
	if m[0] != 3 || m[1] != 2 || wire.Checksum(m, 0) != 0 {
		t.Errorf("want protocol unreachable, got type %d code %d", m[0], m[1])
	}
	p = readPacket(t, peer)
	ip6, err := wire.ParseIPv6(p)
	if err != nil {
		t.Fatal(err)
	}
	m = ip6.Payload()
	if m[0] != 4 || m[1] != 1 || m[7] != 6 || wire.Checksum(m, wire.PseudoHeaderSum(ip6.Src(), ip6.Dst(), wire.ProtoICMPv6, len(m))) != 0 {
		t.Errorf("want parameter problem code 1 pointer 6, got type %d code %d pointer %d", m[0], m[1], m[7])
	}
}

func TestRoutes(t *testing.T) {
	s, _ := newTestStack(t)
	a2, b2 := link.Pipe(1500)
	defer b2.Close()
	if err := s.AddInterface("p1", a2, netip.MustParsePrefix("10.1.0.2/16")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), peer4, "p0"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRoute(netip.MustParsePrefix("192.0.2.0/24"), netip.MustParseAddr("10.1.0.1"), "p1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dst, src, ifname string
	}{
		{"10.0.0.9", "10.0.0.2", "p0"},
		{"10.1.200.1", "10.1.0.2", "p1"},
		{"192.0.2.7", "10.1.0.2", "p1"},
		{"198.51.100.1", "10.0.0.2", "p0"},
		{"fd00::77", "fd00::2", "p0"},
	} {
		ifc, src, ok := s.route(netip.MustParseAddr(tc.dst), netip.Addr{})
		if !ok || ifc.name != tc.ifname || src.String() != tc.src {
			t.Errorf("route %s: ok=%v src=%v", tc.dst, ok, src)
		}
	}
	if _, _, ok := s.route(netip.MustParseAddr("2001:db8::1"), netip.Addr{}); ok {
		t.Error("route for v6 without default route")
	}
	if err := s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), peer4, "nope"); err == nil {
		t.Error("route on unknown interface accepted")
	}
	if err := s.AddInterface("p0", a2); err == nil {
		t.Error("duplicate interface accepted")
	}
}

func TestCloseStops(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := link.Pipe(1500)
	defer b.Close()
	if err := s.AddInterface("p0", a, addr4); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddInterface("p1", a, addr4); !errors.Is(err, net.ErrClosed) {
		t.Errorf("AddInterface after Close: %v", err)
	}
	if err := a.WritePacket(make([]byte, 20)); err == nil {
		t.Error("endpoint still open after Close")
	}
}

func TestICMPErrorRateLimit(t *testing.T) {
	s, peer := newTestStack(t)
	pkt := ip4Packet(t, peer4, addr4.Addr(), 132, []byte("sctp?"))
	for i := 0; i < 200; i++ {
		peer.WritePacket(pkt)
	}
	waitFor(t, "200 packets", func() bool { return s.Stats().IP.InReceives == 200 })
	st := s.Stats().ICMP
	// The burst of 50 plus what refilled while the packets were processed.
	if st.OutDestUnreachs < 50 || st.OutDestUnreachs > 150 || st.OutDestUnreachs+st.OutRateLimited != 200 {
		t.Errorf("sent %d protocol unreachables, limited %d", st.OutDestUnreachs, st.OutRateLimited)
	}
}
