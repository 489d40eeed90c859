package ustack

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Stack-level hardening tests: hostile packets are fed synchronously to a
// stack's input path (Stack.input, as the link reader does) and the
// outcome (counters, replies, connections) is asserted exactly.

// hStack is a stack on a sink link, driven synchronously.
type hStack struct {
	t   *testing.T
	s   *Stack
	ep  *sinkEndpoint
	ifc *iface
	in  *inputCtx

	mu   sync.Mutex
	sent [][]byte // packets the stack wrote to the link (when recording)
	rec  func(p []byte) bool
}

func newHStack(t *testing.T, cfg Config) *hStack {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &hStack{t: t, s: s}
	h.ep = newSink(1500)
	h.ep.onWrite = func(p []byte) {
		h.mu.Lock()
		if h.rec == nil || h.rec(p) {
			h.sent = append(h.sent, append([]byte(nil), p...))
		}
		h.mu.Unlock()
	}
	if err := s.AddInterface("h0", h.ep, addr4, addr6); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.mu.Lock()
	h.ifc = s.ifaces["h0"]
	s.mu.Unlock()
	h.in = newInputCtx(s)
	return h
}

// feed hands packets to the stack as one reader batch.
func (h *hStack) feed(pkts ...[]byte) {
	h.in.now = time.Now()
	for _, p := range pkts {
		h.s.input(h.in, h.ifc, append([]byte(nil), p...))
	}
	h.in.flush()
}

// take returns and forgets the packets sent so far.
func (h *hStack) take() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.sent
	h.sent = nil
	return out
}

// waitSent waits until a recorded packet satisfies ok and returns it.
func (h *hStack) waitSent(what string, ok func(p []byte) bool) []byte {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, p := range h.take() {
			if ok(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s sent within 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tcpOf parses a TCP/IPv4 or TCP/IPv6 packet the stack sent.
func tcpOf(p []byte) (src, dst netip.Addr, seg wire.TCP, ok bool) {
	var payload []byte
	switch p[0] >> 4 {
	case 4:
		ip, err := wire.ParseIPv4(p)
		if err != nil || ip.Protocol() != wire.ProtoTCP {
			return
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	case 6:
		ip, err := wire.ParseIPv6(p)
		if err != nil || ip.NextHeader() != wire.ProtoTCP {
			return
		}
		src, dst, payload = ip.Src(), ip.Dst(), ip.Payload()
	default:
		return
	}
	s, err := wire.ParseTCP(payload)
	if err != nil {
		return
	}
	return src, dst, s, true
}

// rawTCPHdr builds a TCP segment from raw header bytes (data offset,
// options as given) with a correct checksum.
func rawTCPHdr(src, dst netip.AddrPort, seq, ack uint32, flags uint8, doff int, opts, payload []byte) []byte {
	b := make([]byte, 20+len(opts)+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte(doff << 4)
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	copy(b[20:], opts)
	copy(b[20+len(opts):], payload)
	binary.BigEndian.PutUint16(b[16:], wire.Checksum(b, wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, len(b))))
	return b
}

var (
	hUs4   = netip.AddrPortFrom(addr4.Addr(), 80)
	hThem4 = netip.AddrPortFrom(peer4, 40000)
	hUs6   = netip.AddrPortFrom(addr6.Addr(), 80)
	hThem6 = netip.AddrPortFrom(peer6, 40000)
)

// TestHardMalformedTCP: segments with a bad checksum, bad data offsets or
// malformed options are dropped and counted (TCP InErrs, InCsumErrors);
// none creates a connection or gets a reply, and none hangs the parser.
func TestHardMalformedTCP(t *testing.T) {
	h := newHStack(t, Config{})
	if _, err := h.s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	syn := uint8(wire.TCPFlagSYN)
	cases := []struct {
		name string
		seg  []byte
		csum bool // counted as a checksum error
	}{
		{"bad checksum", func() []byte {
			b := rawTCPHdr(hThem4, hUs4, 1, 0, syn, 5, nil, nil)
			b[16] ^= 0x55
			return b
		}(), true},
		{"data offset 0", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 0, nil, nil), false},
		{"data offset 4", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 4, nil, nil), false},
		{"data offset past segment", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 15, []byte{1, 1, 1, 1}, nil), false},
		{"truncated header", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 5, nil, nil)[:19], false},
		{"truncated MSS option", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{1, 1, 2, 4}, nil), false},
		{"option length past header", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 7, []byte{1, 1, 1, 1, 8, 10, 0, 0}, nil), false},
		{"zero-length option", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{2, 0, 5, 180}, nil), false},
		{"zero-length unknown option", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{99, 0, 0, 0}, nil), false},
		{"option length 1", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{3, 1, 7, 0}, nil), false},
		{"kind without length at end", rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{1, 1, 1, 4}, nil), false},
		{"source port 0", rawTCPHdr(netip.AddrPortFrom(peer4, 0), hUs4, 1, 0, syn, 5, nil, nil), false},
		{"destination port 0", rawTCPHdr(hThem4, netip.AddrPortFrom(addr4.Addr(), 0), 1, 0, syn, 5, nil, nil), false},
	}
	for i, c := range cases {
		before := h.s.Stats()
		var pkt []byte
		if i%2 == 0 {
			pkt = rawIP4(peer4, addr4.Addr(), wire.ProtoTCP, 64, c.seg)
		} else {
			// The same segment over IPv6 (checksum recomputed for v6).
			seg := append([]byte(nil), c.seg...)
			if len(seg) >= 18 && !c.csum {
				seg[16], seg[17] = 0, 0
				binary.BigEndian.PutUint16(seg[16:], wire.Checksum(seg, wire.PseudoHeaderSum(peer6, addr6.Addr(), wire.ProtoTCP, len(seg))))
			}
			pkt = rawIP6(peer6, addr6.Addr(), wire.ProtoTCP, seg)
		}
		h.feed(pkt)
		after := h.s.Stats()
		d := func(a, b uint64) uint64 { return a - b }
		if d(after.TCP.InErrs, before.TCP.InErrs) != 1 || d(after.TCP.InSegs, before.TCP.InSegs) != 1 {
			t.Errorf("%s: InErrs +%d InSegs +%d, want +1 +1", c.name, d(after.TCP.InErrs, before.TCP.InErrs), d(after.TCP.InSegs, before.TCP.InSegs))
		}
		if got := d(after.TCP.InCsumErrors, before.TCP.InCsumErrors); (got == 1) != c.csum {
			t.Errorf("%s: InCsumErrors +%d", c.name, got)
		}
		if after.TCP.PassiveOpens != 0 || after.TCP.OutRsts != 0 || after.TCP.NoPort != 0 {
			t.Errorf("%s: passive opens %d, RSTs %d, NoPort %d", c.name, after.TCP.PassiveOpens, after.TCP.OutRsts, after.TCP.NoPort)
		}
		if p := h.take(); len(p) != 0 {
			t.Errorf("%s: %d replies", c.name, len(p))
		}
	}
	if n := len(h.s.Connections()); n != 2 { // the v4 and v6 listeners
		t.Errorf("%d connections/listeners, want the 2 listeners", n)
	}
	// A well-formed SYN still works afterwards.
	h.feed(rawIP4(peer4, addr4.Addr(), wire.ProtoTCP, 64, rawTCPHdr(hThem4, hUs4, 1, 0, syn, 6, []byte{2, 4, 5, 180}, nil)))
	h.waitSent("SYN-ACK", func(p []byte) bool {
		_, _, s, ok := tcpOf(p)
		return ok && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK && s.Ack() == 2
	})
}

// TestHardSynFinAndFlagsToListener: SYN+FIN, SYN+RST, no-flag and FIN-only
// segments to a listener never create a connection; RST is never answered.
func TestHardSynFinAndFlagsToListener(t *testing.T) {
	h := newHStack(t, Config{})
	if _, err := h.s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	for _, fl := range []uint8{
		wire.TCPFlagSYN | wire.TCPFlagFIN,
		wire.TCPFlagSYN | wire.TCPFlagRST,
		wire.TCPFlagRST,
		wire.TCPFlagRST | wire.TCPFlagACK,
		0,
		wire.TCPFlagFIN,
		wire.TCPFlagPSH | wire.TCPFlagURG,
	} {
		h.feed(rawIP4(peer4, addr4.Addr(), wire.ProtoTCP, 64, rawTCPHdr(hThem4, hUs4, 100, 0, fl, 5, nil, []byte("x"))))
		if p := h.take(); len(p) != 0 {
			t.Errorf("flags %#x: %d replies", fl, len(p))
		}
	}
	if st := h.s.Stats(); st.TCP.PassiveOpens != 0 || len(h.s.Connections()) != 2 {
		t.Fatalf("connections created: %+v", h.s.Connections())
	}
}

// TestHardMalformedIP: IP-level garbage is counted under its reason and
// dropped.
func TestHardMalformedIP(t *testing.T) {
	h := newHStack(t, Config{})
	if _, err := h.s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	seg4 := rawTCPHdr(hThem4, hUs4, 1, 0, wire.TCPFlagSYN, 5, nil, nil)
	good4 := rawIP4(peer4, addr4.Addr(), wire.ProtoTCP, 64, seg4)
	fix := func(p []byte) []byte {
		// Header checksum over what the IHL claims, within the packet.
		hl := min(max(int(p[0]&15)*4, 20), len(p))
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], wire.Checksum(p[:hl], 0))
		return p
	}
	mod := func(f func(p []byte)) []byte {
		p := append([]byte(nil), good4...)
		f(p)
		return fix(p)
	}
	seg6 := rawTCPHdr(hThem6, hUs6, 1, 0, wire.TCPFlagSYN, 5, nil, nil)
	good6 := rawIP6(peer6, addr6.Addr(), wire.ProtoTCP, seg6)
	mod6 := func(f func(p []byte)) []byte {
		p := append([]byte(nil), good6...)
		f(p)
		return p
	}
	cases := []struct {
		name string
		pkt  []byte
		want func(st IPStats) uint64
	}{
		{"IHL 4", mod(func(p []byte) { p[0] = 0x44 }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"IHL 0", mod(func(p []byte) { p[0] = 0x40 }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"IHL past packet", mod(func(p []byte) { p[0] = 0x4f }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"total length < IHL", mod(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 12) }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"total length 0", mod(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 0) }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"total length past packet", mod(func(p []byte) { binary.BigEndian.PutUint16(p[2:], uint16(len(p)+1)) }), func(s IPStats) uint64 { return s.InTruncatedPkts }},
		{"bad header checksum", func() []byte { p := append([]byte(nil), good4...); p[10] ^= 1; return p }(), func(s IPStats) uint64 { return s.InCsumErrors }},
		{"short packet", good4[:10], func(s IPStats) uint64 { return s.InHdrErrors + s.InTruncatedPkts }},
		{"version 5", mod(func(p []byte) { p[0] = 0x55 }), func(s IPStats) uint64 { return s.InHdrErrors }},
		{"source 0.0.0.0", mod(func(p []byte) { copy(p[12:16], []byte{0, 0, 0, 0}) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"source broadcast", mod(func(p []byte) { copy(p[12:16], []byte{255, 255, 255, 255}) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"source multicast", mod(func(p []byte) { copy(p[12:16], []byte{224, 0, 0, 5}) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"source loopback", mod(func(p []byte) { copy(p[12:16], []byte{127, 0, 0, 1}) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"destination broadcast", mod(func(p []byte) { copy(p[16:20], []byte{255, 255, 255, 255}) }), func(s IPStats) uint64 { return s.NotForUs }},
		{"destination multicast", mod(func(p []byte) { copy(p[16:20], []byte{224, 0, 0, 1}) }), func(s IPStats) uint64 { return s.NotForUs }},
		{"destination subnet broadcast", mod(func(p []byte) { copy(p[16:20], []byte{10, 0, 0, 255}) }), func(s IPStats) uint64 { return s.NotForUs }},
		{"fragment MF", mod(func(p []byte) { p[6] = 0x20 }), func(s IPStats) uint64 { return s.FragmentsDropped }},
		{"fragment offset", mod(func(p []byte) { p[7] = 0x10 }), func(s IPStats) uint64 { return s.FragmentsDropped }},
		{"v6 payload length past packet", mod6(func(p []byte) { binary.BigEndian.PutUint16(p[4:], uint16(len(p))) }), func(s IPStats) uint64 { return s.InTruncatedPkts }},
		{"v6 short header", good6[:30], func(s IPStats) uint64 { return s.InHdrErrors + s.InTruncatedPkts }},
		{"v6 source multicast", mod6(func(p []byte) { p[8], p[9] = 0xff, 0x02 }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"v6 source loopback", mod6(func(p []byte) { copy(p[8:24], netip.IPv6Loopback().AsSlice()) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"v6 source unspecified", mod6(func(p []byte) { copy(p[8:24], make([]byte, 16)) }), func(s IPStats) uint64 { return s.InAddrErrors }},
		{"v6 fragment header", rawIP6Next(peer6, addr6.Addr(), 44, append([]byte{wire.ProtoTCP, 0, 0, 1, 0, 0, 0, 9}, seg6...)), func(s IPStats) uint64 { return s.FragmentsDropped }},
		{"v6 truncated extension header", rawIP6Next(peer6, addr6.Addr(), 0, []byte{wire.ProtoTCP, 200, 0, 0, 0, 0, 0, 0}), func(s IPStats) uint64 { return s.InHdrErrors }},
	}
	for _, c := range cases {
		before := h.s.Stats()
		h.feed(c.pkt)
		after := h.s.Stats()
		if got := c.want(after.IP) - c.want(before.IP); got != 1 {
			t.Errorf("%s: reason counter +%d, want +1 (IP stats now %+v)", c.name, got, after.IP)
		}
		if after.IP.InDelivers != before.IP.InDelivers || after.TCP.InSegs != before.TCP.InSegs {
			t.Errorf("%s: delivered to TCP", c.name)
		}
		if p := h.take(); len(p) != 0 {
			t.Errorf("%s: %d replies", c.name, len(p))
		}
	}
	// Trailing bytes after the IP total length (link padding) are ignored:
	// the SYN is accepted.
	padded := append(append([]byte(nil), good4...), 0xde, 0xad, 0xbe, 0xef, 0, 0)
	h.feed(padded)
	h.waitSent("SYN-ACK to the padded SYN", func(p []byte) bool {
		_, _, s, ok := tcpOf(p)
		return ok && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK && s.Ack() == 2
	})
}

// TestHardTTLZero: a packet arriving with TTL 0 (or hop limit 0) addressed
// to us is delivered, as Linux does: TTL only matters when forwarding,
// which ustack does not do.
func TestHardTTLZero(t *testing.T) {
	h := newHStack(t, Config{})
	echo := rawIP4(peer4, addr4.Addr(), wire.ProtoICMP, 0, echoRequest(8, 1, 1, []byte("ttl0"), 0))
	h.feed(echo)
	st := h.s.Stats()
	if st.IP.InDelivers != 1 || st.ICMP.InEchos != 1 || st.ICMP.OutEchoReps != 1 {
		t.Fatalf("TTL 0 echo: IP %+v ICMP %+v", st.IP, st.ICMP)
	}
	p := h.waitSent("echo reply", func(p []byte) bool { return p[0]>>4 == 4 && p[9] == wire.ProtoICMP })
	if p[8] != 64 {
		t.Errorf("reply TTL %d, want 64", p[8])
	}
}

// TestHardSpoofedOwnSource: packets claiming to come from one of our own
// addresses (LAND attack) or from our subnet's broadcast address are
// martians for Linux (dropped by fib_validate_source / as a broadcast
// source). They must be dropped and counted under InAddrErrors.
func TestHardSpoofedOwnSource(t *testing.T) {
	h := newHStack(t, Config{})
	if _, err := h.s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	var bugs []string
	for _, c := range []struct {
		name string
		pkt  []byte
	}{
		{"v4 source = our address (LAND)", rawTCP4(hUs4, hUs4, wire.TCPHeader{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000}, nil)},
		{"v4 source = subnet broadcast", rawTCP4(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.255"), 1234), hUs4, wire.TCPHeader{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000}, nil)},
		{"v6 source = our address (LAND)", rawTCP6(hUs6, hUs6, wire.TCPHeader{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000}, nil)},
	} {
		before := h.s.Stats()
		h.feed(c.pkt)
		after := h.s.Stats()
		replies := h.take()
		if after.IP.InAddrErrors-before.IP.InAddrErrors != 1 || len(replies) != 0 {
			bugs = append(bugs, c.name+": accepted (passive opens "+itoa(after.TCP.PassiveOpens-before.TCP.PassiveOpens)+", replies "+itoa(uint64(len(replies)))+")")
		}
	}
	if len(bugs) > 0 {
		t.Fatalf("martian sources not dropped: %v", bugs)
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// handshake opens a connection from them to the listener at us through
// the synchronous input path and returns the server's ISS+1 and the accepted
// connection.
func (h *hStack) handshake(ln net.Listener, them, us netip.AddrPort, iss uint32) (uint32, *TCPConn) {
	h.t.Helper()
	h.take()
	mk := func(hdr wire.TCPHeader, payload []byte) []byte {
		if us.Addr().Is4() {
			return rawTCP4(them, us, hdr, payload)
		}
		return rawTCP6(them, us, hdr, payload)
	}
	h.feed(mk(wire.TCPHeader{Seq: iss, Flags: wire.TCPFlagSYN, Window: 65535, Options: &wire.TCPOptions{MSS: 1460, HasMSS: true}}, nil))
	sa := h.waitSent("SYN-ACK", func(p []byte) bool {
		_, dst, s, ok := tcpOf(p)
		return ok && dst == them.Addr() && s.DstPort() == them.Port() && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK && s.Ack() == iss+1
	})
	_, _, s, _ := tcpOf(sa)
	sisn := s.Seq()
	h.feed(mk(wire.TCPHeader{Seq: iss + 1, Ack: sisn + 1, Flags: wire.TCPFlagACK, Window: 65535}, nil))
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	select {
	case c, ok := <-ch:
		if !ok {
			h.t.Fatal("accept failed")
		}
		h.t.Cleanup(func() { c.Close() })
		return sisn + 1, c.(*TCPConn)
	case <-time.After(5 * time.Second):
		h.t.Fatal("handshake: accept timed out")
	}
	return 0, nil
}

// TestHardICMPErrorsEstablished: ICMP errors quoting an established
// connection. Destination unreachable is a soft error there (RFC 1122
// 4.2.3.9, RFC 5927 4.1: never abort an established connection);
// fragmentation needed / packet too big only lowers the MSS when the quoted
// sequence number is in flight (RFC 5927 4.2) and the MTU is plausible.
func TestHardICMPErrorsEstablished(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "v4"
		if v6 {
			name = "v6"
		}
		t.Run(name, func(t *testing.T) {
			h := newHStack(t, Config{})
			ln, err := h.s.Listen("tcp", ":80")
			if err != nil {
				t.Fatal(err)
			}
			us, them := hUs4, hThem4
			if v6 {
				us, them = hUs6, hThem6
			}
			sndNxt, c := h.handshake(ln, them, us, 1000)
			mss0 := c.Info().SndMSS
			// icmp builds an error quoting a segment from us to them with
			// sequence number seq.
			icmp := func(unreach bool, mtu int, seq uint32, quoteLen int) []byte {
				quoted := rawTCPSeg(us, them, wire.TCPHeader{Seq: seq, Ack: 1001, Flags: wire.TCPFlagACK, Window: 100}, nil)
				var ipq []byte
				if v6 {
					ipq = rawIP6(us.Addr(), them.Addr(), wire.ProtoTCP, quoted)
				} else {
					ipq = rawIP4(us.Addr(), them.Addr(), wire.ProtoTCP, 64, quoted)
				}
				hl := 20
				if v6 {
					hl = 40
				}
				ipq = ipq[:min(len(ipq), hl+quoteLen)]
				m := make([]byte, 8+len(ipq))
				copy(m[8:], ipq)
				if v6 {
					if unreach {
						m[0], m[1] = 1, 4
					} else {
						m[0] = 2
						binary.BigEndian.PutUint32(m[4:], uint32(mtu))
					}
					wire.ICMPv6(m).ComputeChecksum(them.Addr(), us.Addr())
					return rawIP6(them.Addr(), us.Addr(), wire.ProtoICMPv6, m)
				}
				m[0] = 3
				if unreach {
					m[1] = 3
				} else {
					m[1] = 4
					binary.BigEndian.PutUint16(m[6:], uint16(mtu))
				}
				wire.ICMPv4(m).ComputeChecksum()
				return rawIP4(them.Addr(), us.Addr(), wire.ProtoICMP, 64, m)
			}
			small := 1000
			tiny := 300
			if v6 {
				small, tiny = 1280, 1000
			}
			steps := []struct {
				name    string
				pkt     []byte
				wantMSS int
			}{
				{"unreachable, valid seq", icmp(true, 0, sndNxt, 20), mss0},
				{"unreachable, quote of 4 bytes", icmp(true, 0, sndNxt, 4), mss0},
				{"too big, seq below SND.UNA", icmp(false, small, sndNxt-1, 20), mss0},
				{"too big, seq above SND.NXT", icmp(false, small, sndNxt+100000, 20), mss0},
				{"too big, implausible MTU", icmp(false, tiny, sndNxt, 20), mss0},
				{"too big, MTU 0", icmp(false, 0, sndNxt, 20), mss0},
				{"too big, valid", icmp(false, small, sndNxt, 20), small - hl(v6) - 20},
			}
			for _, st := range steps {
				h.feed(st.pkt)
				if c.State() != tcp.Established {
					t.Fatalf("%s: connection state %v", st.name, c.State())
				}
				if got := c.Info().SndMSS; got != st.wantMSS {
					t.Fatalf("%s: MSS %d, want %d", st.name, got, st.wantMSS)
				}
			}
			// The connection still delivers data.
			h.feed(func() []byte {
				hdr := wire.TCPHeader{Seq: 1001, Ack: sndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 65535}
				if v6 {
					return rawTCP6(them, us, hdr, []byte("hello"))
				}
				return rawTCP4(them, us, hdr, []byte("hello"))
			}())
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("read %q %v", buf[:n], err)
			}
		})
	}
}

func hl(v6 bool) int {
	if v6 {
		return 40
	}
	return 20
}

// heapNow returns the live heap after garbage collection.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHardSYNFlood: 100,000 SYNs from spoofed addresses and ports against a
// listener. The SYN queue stays at its limit, SYN cookies answer the rest,
// memory stays bounded, and a legitimate client still connects and
// exchanges data.
func TestHardSYNFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("SYN flood skipped in -short mode")
	}
	h := newHStack(t, Config{})
	legit := netip.AddrPortFrom(peer4, 55555)
	h.rec = func(p []byte) bool { // keep only what goes to the legitimate client
		_, dst, s, ok := tcpOf(p)
		return ok && dst == legit.Addr() && s.DstPort() == legit.Port()
	}
	ln, err := h.s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	heap0 := heapNow()
	const n = 100000
	batch := make([][]byte, 0, 64)
	x := uint32(2463534242)
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		src := netip.AddrFrom4([4]byte{10, 0, 0, byte(3 + x%250)})
		port := uint16(1024 + (x>>8)%60000)
		batch = append(batch, rawTCP4(netip.AddrPortFrom(src, port), hUs4,
			wire.TCPHeader{Seq: x, Flags: wire.TCPFlagSYN, Window: 65535, Options: &wire.TCPOptions{MSS: 1460, HasMSS: true}}, nil))
		if len(batch) == cap(batch) || i == n-1 {
			h.feed(batch...)
			batch = batch[:0]
		}
	}
	heap1 := heapNow()
	st := h.s.Stats()
	conns := len(h.s.Connections()) - 2
	t.Logf("after %d SYNs: heap %d KiB -> %d KiB (+%d KiB), half-open %d, cookies sent %d, ListenDrops %d, writes %d",
		n, heap0>>10, heap1>>10, (int64(heap1)-int64(heap0))>>10, conns, st.TCP.SyncookiesSent, st.TCP.ListenDrops, h.ep.writes)
	cfg := tcp.DefaultConfig()
	if conns > cfg.MaxSynBacklog {
		t.Errorf("%d half-open connections, tcp_max_syn_backlog %d", conns, cfg.MaxSynBacklog)
	}
	if st.TCP.SyncookiesSent < uint64(n-cfg.MaxSynBacklog-1000) {
		t.Errorf("only %d SYN cookies sent", st.TCP.SyncookiesSent)
	}
	// Bound: the SYN queue (4096 half-open connections) plus slack; what
	// grows with the number of SYNs (cookies) must not show.
	if growth := int64(heap1) - int64(heap0); growth > 64<<20 {
		t.Errorf("heap grew by %d MiB during the flood", growth>>20)
	}
	// The legitimate client: SYN, SYN-ACK (a cookie), ACK, data.
	sndNxt, c := h.handshake(ln, legit, hUs4, 777)
	h.feed(rawTCP4(legit, hUs4, wire.TCPHeader{Seq: 778, Ack: sndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 65535}, []byte("legit")))
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "legit" {
		t.Fatalf("legitimate client read %q %v", buf[:k], err)
	}
}

// TestHardACKAndRSTFloodListener: 100,000 stray ACKs and RSTs to a
// listener create nothing; ACKs are answered with RSTs (seq = SEG.ACK),
// RSTs never; memory stays flat.
func TestHardACKAndRSTFloodListener(t *testing.T) {
	h := newHStack(t, Config{})
	h.rec = func([]byte) bool { return false }
	if _, err := h.s.Listen("tcp", ":80"); err != nil {
		t.Fatal(err)
	}
	heap0 := heapNow()
	const n = 50000
	x := uint32(88172645)
	batch := make([][]byte, 0, 64)
	for i := 0; i < 2*n; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		fl := uint8(wire.TCPFlagACK)
		if i >= n {
			fl = wire.TCPFlagRST
			if i%2 == 0 {
				fl |= wire.TCPFlagACK
			}
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(3 + x%250)}), uint16(1024+x>>20))
		batch = append(batch, rawTCP4(src, hUs4, wire.TCPHeader{Seq: x, Ack: x * 7, Flags: fl, Window: 1000}, nil))
		if len(batch) == cap(batch) || i == 2*n-1 {
			h.feed(batch...)
			batch = batch[:0]
		}
	}
	heap1 := heapNow()
	st := h.s.Stats()
	t.Logf("ACK+RST flood: heap %d KiB -> %d KiB, RSTs sent %d, writes %d", heap0>>10, heap1>>10, st.TCP.OutRsts, h.ep.writes)
	if st.TCP.OutRsts != n || uint64(h.ep.writes) != n {
		t.Errorf("RSTs sent %d (link writes %d), want %d: one per ACK, none per RST", st.TCP.OutRsts, h.ep.writes, n)
	}
	if st.TCP.PassiveOpens != 0 || len(h.s.Connections()) != 2 || st.TCP.SyncookiesRecv != 0 {
		t.Errorf("connections created: opens %d cookies accepted %d", st.TCP.PassiveOpens, st.TCP.SyncookiesRecv)
	}
	if growth := int64(heap1) - int64(heap0); growth > 4<<20 {
		t.Errorf("heap grew by %d KiB", growth>>10)
	}
}

// TestHardFloodEstablished: 100,000 blind segments against an established
// connection (in-window RSTs, SYNs, ACKs of unsent data, out-of-window
// data) leave it established and intact; challenge ACKs stay within
// tcp_invalid_ratelimit; memory stays flat.
func TestHardFloodEstablished(t *testing.T) {
	h := newHStack(t, Config{})
	ln, err := h.s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	sndNxt, c := h.handshake(ln, hThem4, hUs4, 5000)
	rcvNxt := uint32(5001)
	h.rec = func([]byte) bool { return false }
	before := h.s.Stats()
	writes0 := h.ep.writes
	heap0 := heapNow()
	start := time.Now()
	const n = 100000
	batch := make([][]byte, 0, 64)
	for i := 0; i < n; i++ {
		var hdr wire.TCPHeader
		k := uint32(i)
		switch i % 4 {
		case 0: // in-window RST, never exact
			hdr = wire.TCPHeader{Seq: rcvNxt + 1 + k%60000, Flags: wire.TCPFlagRST}
		case 1: // SYN
			hdr = wire.TCPHeader{Seq: rcvNxt + k, Flags: wire.TCPFlagSYN, Window: 1000}
		case 2: // data with an ACK of unsent data
			hdr = wire.TCPHeader{Seq: rcvNxt, Ack: sndNxt + 1 + k, Flags: wire.TCPFlagACK, Window: 1000}
		case 3: // ACK far outside the window
			hdr = wire.TCPHeader{Seq: rcvNxt + 1<<30 + k, Ack: sndNxt, Flags: wire.TCPFlagACK, Window: 1000}
		}
		var payload []byte
		if i%4 == 2 {
			payload = []byte("evil")
		}
		batch = append(batch, rawTCP4(hThem4, hUs4, hdr, payload))
		if len(batch) == cap(batch) || i == n-1 {
			h.feed(batch...)
			batch = batch[:0]
		}
	}
	elapsed := time.Since(start)
	heap1 := heapNow()
	st := h.s.Stats()
	replies := h.ep.writes - writes0
	maxReplies := int(elapsed/(500*time.Millisecond)) + 2
	t.Logf("%d blind segments in %v: %d replies, challenge ACKs %d, skipped %d, heap %d KiB -> %d KiB",
		n, elapsed, replies, st.TCP.TCPChallengeACK-before.TCP.TCPChallengeACK, st.TCP.TCPACKSkippedChallenge-before.TCP.TCPACKSkippedChallenge, heap0>>10, heap1>>10)
	if c.State() != tcp.Established || c.Info().BytesReceived != 0 {
		t.Fatalf("after the flood: state %v, %d bytes received", c.State(), c.Info().BytesReceived)
	}
	if replies > maxReplies {
		t.Errorf("%d replies in %v, want at most %d (one per 500 ms)", replies, elapsed, maxReplies)
	}
	if growth := int64(heap1) - int64(heap0); growth > 4<<20 {
		t.Errorf("heap grew by %d KiB", growth>>10)
	}
	// The real peer's data still arrives and our data still goes out.
	h.rec = nil
	h.feed(rawTCP4(hThem4, hUs4, wire.TCPHeader{Seq: rcvNxt, Ack: sndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 65535}, []byte("real")))
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "real" {
		t.Fatalf("read %q %v", buf[:k], err)
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	h.waitSent("data", func(p []byte) bool {
		_, _, s, ok := tcpOf(p)
		return ok && string(s.Payload()) == "pong" && s.Seq() == sndNxt
	})
}

// TestHardUnpredictableISNAndPorts: ISNs and ephemeral ports are not
// predictable from earlier ones (RFC 6528, RFC 6056). 256 connections to
// 256 different destinations: ISNs and ports pass randomness checks (no
// constant or repeating differences, balanced low bits, no linear
// congruential relation). 64 connections to one destination: ports are
// distinct and advance by irregular steps (RFC 6056 algorithm 4 with
// Linux's random increments), ISNs pass the same checks.
func TestHardUnpredictableISNAndPorts(t *testing.T) {
	h := newHStack(t, Config{})
	syns := make(chan []byte, 4096)
	h.rec = func(p []byte) bool {
		if _, _, s, ok := tcpOf(p); ok && s.Flags() == wire.TCPFlagSYN {
			select {
			case syns <- append([]byte(nil), p...):
			default:
			}
		}
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	type key struct {
		dst   netip.AddrPort
		sport uint16
	}
	seen := map[key]bool{}
	dial := func(dst string) (isn, port uint32) {
		wg.Add(1)
		go func() { defer wg.Done(); h.s.DialContext(ctx, "tcp", dst) }()
		// One dial at a time, so the order is the order of creation.
		for {
			select {
			case p := <-syns:
				_, d, s, _ := tcpOf(p)
				ap := netip.AddrPortFrom(d, s.DstPort())
				k := key{ap, s.SrcPort()}
				if ap.String() != dst || seen[k] {
					continue // a retransmitted SYN of an earlier dial
				}
				seen[k] = true
				return s.Seq(), uint32(s.SrcPort())
			case <-time.After(5 * time.Second):
				t.Fatalf("no SYN for dial to %s", dst)
			}
		}
	}
	var isns, ports []uint32
	for i := 0; i < 256; i++ {
		isn, port := dial(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(3 + i%200)}), uint16(1000+i)).String())
		isns = append(isns, isn)
		ports = append(ports, port)
	}
	for _, p := range ports {
		if p < 32768 || p > 60999 {
			t.Errorf("port %d outside ip_local_port_range", p)
		}
	}
	checkUnpredictable(t, "ISN (different destinations)", isns)
	checkUnpredictable(t, "port (different destinations)", ports)

	isns, ports = nil, nil
	used := map[uint32]bool{}
	for i := 0; i < 64; i++ {
		isn, port := dial("10.0.0.1:443")
		if used[port] {
			t.Fatalf("port %d given twice to connections to the same destination", port)
		}
		used[port] = true
		isns = append(isns, isn)
		ports = append(ports, port)
	}
	steps := map[uint32]int{}
	for i := 1; i < len(ports); i++ {
		steps[(ports[i]-ports[i-1])%28232]++
	}
	if len(steps) < 4 {
		t.Errorf("ports to one destination advance by only %d distinct steps: %v", len(steps), steps)
	}
	checkUnpredictable(t, "ISN (one destination)", isns)
}

// checkUnpredictable applies simple tests to a sequence of values of
// nbits random bits.
func checkUnpredictable(t *testing.T, what string, v []uint32) {
	t.Helper()
	n := len(v)
	diffs := map[uint32]int{}
	for i := 1; i < n; i++ {
		diffs[v[i]-v[i-1]]++
	}
	if len(diffs) < n-1-n/16 {
		t.Errorf("%s: only %d distinct differences in %d", what, len(diffs), n-1)
	}
	// Second differences (constant for a quadratic sequence).
	d2 := map[uint32]int{}
	for i := 2; i < n; i++ {
		d2[(v[i]-v[i-1])-(v[i-1]-v[i-2])]++
	}
	if len(d2) < n-2-n/16 {
		t.Errorf("%s: only %d distinct second differences", what, len(d2))
	}
	// Low bits: each of the 4 lowest bits set in about half the samples
	// (binomial, n=256: mean 128, sd 8; allow 5 sd).
	for b := 0; b < 4; b++ {
		ones := 0
		for _, x := range v {
			ones += int(x >> b & 1)
		}
		if ones < n/2-40 || ones > n/2+40 {
			t.Errorf("%s: bit %d set in %d of %d", what, b, ones, n)
		}
	}
	// Parity of consecutive values must not be predictable either.
	same := 0
	for i := 1; i < n; i++ {
		if v[i]&1 == v[i-1]&1 {
			same++
		}
	}
	if same < (n-1)/2-45 || same > (n-1)/2+45 {
		t.Errorf("%s: consecutive parities equal %d of %d times", what, same, n-1)
	}
	// No linear congruential relation x[i+1] = a*x[i] + c (mod 2^32):
	// solve a and c from 3 values where possible and count correct
	// predictions of the next one.
	hits := 0
	tries := 0
	for i := 0; i+3 < n; i++ {
		d1, d2 := v[i+1]-v[i], v[i+2]-v[i+1]
		if d1&1 == 0 {
			continue
		}
		a := d2 * inv32(d1)
		c := v[i+1] - a*v[i]
		tries++
		if a*v[i+2]+c == v[i+3] {
			hits++
		}
	}
	if tries > 10 && hits > 1 {
		t.Errorf("%s: a linear recurrence predicted %d of %d next values", what, hits, tries)
	}
	// Entropy check on the low byte: the distribution of 256 samples over
	// 16 buckets of the low nibble must not be degenerate.
	var buckets [16]int
	for _, x := range v {
		buckets[x&15]++
	}
	for k, c := range buckets {
		if c > n/16*3 {
			t.Errorf("%s: low nibble %d appears %d times of %d", what, k, c, n)
		}
	}
}

// inv32 is the inverse of odd x modulo 2^32 (Newton iteration).
func inv32(x uint32) uint32 {
	y := x
	for i := 0; i < 5; i++ {
		y *= 2 - x*y
	}
	return y
}

// TestHardPortExhaustion: when every ephemeral port to a destination is
// in use, Dial fails at once with EADDRNOTAVAIL.
func TestHardPortExhaustion(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.IPLocalPortRange = [2]int{40000, 40003}
	h := newHStack(t, Config{TCP: cfg})
	h.rec = func([]byte) bool { return false }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.s.DialContext(ctx, "tcp", "10.0.0.1:443") }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.s.Connections()) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections", len(h.s.Connections()))
		}
		time.Sleep(time.Millisecond)
	}
	_, err := h.s.DialContext(ctx, "tcp", "10.0.0.1:443")
	if !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("fifth dial: %v, want EADDRNOTAVAIL", err)
	}
	// Another destination still has all four ports.
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	if _, err := h.s.DialContext(dctx, "tcp", "10.0.0.1:444"); errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("dial to another port: %v", err)
	}
}

// TestHardMaxTimeWaitBuckets: with tcp_max_tw_buckets = 2, closing more
// connections must not keep more than 2 in TIME-WAIT (Linux destroys the
// excess and counts TCPTimeWaitOverflow).
func TestHardMaxTimeWaitBuckets(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.MaxTwBuckets = 2
	p := newPairCfg(t, cfg)
	ln, err := p.B.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 1)); c.Close() }()
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := p.A.Dial("tcp", "10.0.0.2:9")
		if err != nil {
			t.Fatal(err)
		}
		c.Close() // active close: A goes to TIME-WAIT
	}
	tw := func() int {
		n := 0
		for _, c := range p.A.Connections() {
			if c.State == tcp.TimeWait {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(p.A.Connections()) != tw() || p.A.Stats().TCP.TCPTimeWaitOverflow+uint64(tw()) < 5 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	n, over := tw(), p.A.Stats().TCP.TCPTimeWaitOverflow
	if n > 2 || n+int(over) != 5 || len(p.A.Connections()) != n {
		t.Fatalf("tcp_max_tw_buckets = 2: %d connections in TIME-WAIT, TCPTimeWaitOverflow %d, %d connections in all; want at most 2 and the other closes counted",
			n, over, len(p.A.Connections()))
	}
}

func newPairCfg(t *testing.T, cfg tcp.Config) *pair {
	t.Helper()
	a, b := link.Pipe(1500)
	sa, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return &pair{A: sa, B: sb}
}

// TestHardAcceptQueueFull: with net.core.somaxconn = 2 and an application
// that never calls Accept, the third handshake's ACK is dropped and counted
// (ListenOverflows, ListenDrops; tcp_abort_on_overflow = 0: no RST, the
// client retransmits), and further SYNs are dropped while the queue is
// full. Accepting one connection makes room again and the retransmitted
// ACK completes the third handshake.
func TestHardAcceptQueueFull(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.Somaxconn = 2
	h := newHStack(t, Config{TCP: cfg})
	ln, err := h.s.Listen("tcp4", ":80")
	if err != nil {
		t.Fatal(err)
	}
	client := func(i int) netip.AddrPort { return netip.AddrPortFrom(peer4, uint16(41000+i)) }
	// Three SYNs (all answered), then the three ACKs: the third finds the
	// accept queue full.
	isn := map[int]uint32{}
	for i := 0; i < 3; i++ {
		h.take()
		h.feed(rawTCP4(client(i), hUs4, wire.TCPHeader{Seq: 100, Flags: wire.TCPFlagSYN, Window: 65535}, nil))
		sa := h.waitSent("SYN-ACK", func(p []byte) bool {
			_, _, s, ok := tcpOf(p)
			return ok && s.DstPort() == client(i).Port() && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK
		})
		_, _, s, _ := tcpOf(sa)
		isn[i] = s.Seq()
	}
	for i := 0; i < 3; i++ {
		h.feed(rawTCP4(client(i), hUs4, wire.TCPHeader{Seq: 101, Ack: isn[i] + 1, Flags: wire.TCPFlagACK, Window: 65535}, nil))
	}
	st := h.s.Stats()
	if st.TCP.ListenOverflows != 1 || st.TCP.ListenDrops != 1 {
		t.Fatalf("third ACK with a full accept queue: ListenOverflows %d ListenDrops %d", st.TCP.ListenOverflows, st.TCP.ListenDrops)
	}
	states := map[tcp.State]int{}
	for _, c := range h.s.Connections() {
		states[c.State]++
	}
	// The SYN queue is min(somaxconn, tcp_max_syn_backlog) = 2 as well: the
	// third client got a SYN cookie, so nothing of it is kept.
	if states[tcp.Established] != 2 || states[tcp.SynReceived] != 0 || st.TCP.SyncookiesSent != 1 {
		t.Fatalf("states %v, cookies sent %d; want 2 ESTABLISHED (queued), 1 cookie", states, st.TCP.SyncookiesSent)
	}
	// A new SYN while the queue is full: dropped, no SYN-ACK.
	h.take()
	h.feed(rawTCP4(client(9), hUs4, wire.TCPHeader{Seq: 100, Flags: wire.TCPFlagSYN, Window: 65535}, nil))
	if p := h.take(); len(p) != 0 {
		t.Fatalf("SYN answered while the accept queue is full: %d packets", len(p))
	}
	if st := h.s.Stats(); st.TCP.ListenDrops != 2 || st.TCP.ListenOverflows != 2 {
		t.Fatalf("ListenDrops %d ListenOverflows %d, want 2 and 2", st.TCP.ListenDrops, st.TCP.ListenOverflows)
	}
	// Accept one: the next SYN is answered.
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.feed(rawTCP4(client(10), hUs4, wire.TCPHeader{Seq: 100, Flags: wire.TCPFlagSYN, Window: 65535}, nil))
	h.waitSent("SYN-ACK after Accept", func(p []byte) bool {
		_, _, s, ok := tcpOf(p)
		return ok && s.DstPort() == client(10).Port() && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK
	})
	// The third client's retransmitted ACK (a valid cookie) now completes
	// its handshake.
	h.feed(rawTCP4(client(2), hUs4, wire.TCPHeader{Seq: 101, Ack: isn[2] + 1, Flags: wire.TCPFlagACK, Window: 65535}, nil))
	for _, want := range []uint16{client(1).Port(), client(2).Port()} {
		c2, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if got := c2.RemoteAddr().(*net.TCPAddr).Port; got != int(want) {
			t.Fatalf("accepted port %d, want %d", got, want)
		}
	}

}

// TestHardCloseStopsDeadlineTimers: closing a TCPConn must release its
// deadline timers. Otherwise every closed connection with a long deadline
// keeps a runtime timer, its closure and channel alive until the deadline
// passes (the soak test retained 29 MB after 63,000 connections with
// 5-minute deadlines).
func TestHardCloseStopsDeadlineTimers(t *testing.T) {
	p := newPair(t, 1500)
	c, s := p.dialAccept(t, "tcp", ":7", "10.0.0.2:7")
	for _, x := range []*TCPConn{c, s} {
		if err := x.SetDeadline(time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		x.Close()
		for _, d := range []*deadline{&x.rd, &x.wd} {
			d.mu.Lock()
			pending := d.timer != nil
			d.mu.Unlock()
			if pending {
				t.Fatal("TCPConn.Close left a read/write deadline timer pending: " +
					"each closed connection would pin a timer, closure and channel until its deadline passes")
			}
		}
	}
}
