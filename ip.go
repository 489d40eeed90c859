package ustack

import (
	"errors"
	"net/netip"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// inputCtx is the per-reader scratch state: no allocation per packet.
type inputCtx struct {
	s     *Stack
	seg   tcp.Segment
	dirty []*endpoint // connections that took input and need Output
	out   []byte      // scratch packet buffer for replies (ICMP, RST)
	now   time.Time   // read time of the current batch
	// twISS is the ISN for a SYN that just ended a TIME-WAIT connection.
	twISS   uint32
	twISSOK bool
}

func newInputCtx(s *Stack) *inputCtx {
	return &inputCtx{s: s, out: make([]byte, 65536)}
}

// markDirty queues e for one Output call at the end of the current batch.
func (in *inputCtx) markDirty(e *endpoint) {
	if e.dirty {
		return
	}
	e.dirty = true
	in.dirty = append(in.dirty, e)
}

// flush runs Output on every connection that got input in this batch.
func (in *inputCtx) flush() {
	for i, e := range in.dirty {
		in.dirty[i] = nil
		e.afterInput()
	}
	in.dirty = in.dirty[:0]
}

// validSource reports whether a is acceptable as a source address of a
// packet arriving from ifc. Like Linux's martian checks: no unspecified,
// multicast or limited-broadcast source; loopback sources and our own
// addresses (a LAND attack) only on lo; no IPv4 subnet broadcast source.
func (s *Stack) validSource(ifc *iface, a netip.Addr) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() ||
		(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return false
	}
	if ifc == s.lo {
		return true
	}
	if a.IsLoopback() {
		return false
	}
	if _, ours := s.table.Load().local[a]; ours {
		return false
	}
	if a.Is4() {
		for _, p := range ifc.prefixes {
			if p.Addr().Is4() && p.Bits() < 31 && isBroadcast(p, a) {
				return false
			}
		}
	}
	return true
}

// isBroadcast reports whether a is the directed broadcast address of the
// IPv4 prefix p.
func isBroadcast(p netip.Prefix, a netip.Addr) bool {
	if !p.Contains(a) {
		return false
	}
	b := a.As4()
	host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mask := uint32(1)<<(32-p.Bits()) - 1
	return host&mask == mask
}

// input handles one IP packet read from ifc.
func (s *Stack) input(in *inputCtx, ifc *iface, pkt []byte) {
	c := &s.ctr.ip
	c.InReceives.Add(1)
	if len(pkt) == 0 {
		c.InHdrErrors.Add(1)
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		s.input4(in, ifc, pkt)
	case 6:
		s.input6(in, ifc, pkt)
	default:
		c.InHdrErrors.Add(1)
	}
}

func (s *Stack) input4(in *inputCtx, ifc *iface, pkt []byte) {
	c := &s.ctr.ip
	if len(pkt) >= 4 {
		if tl := int(pkt[2])<<8 | int(pkt[3]); tl > len(pkt) {
			c.InTruncatedPkts.Add(1)
			return
		}
	}
	ip, err := wire.ParseIPv4(pkt)
	if err != nil {
		c.InHdrErrors.Add(1)
		return
	}
	if !ip.ValidChecksum() {
		c.InCsumErrors.Add(1)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	if !s.validSource(ifc, src) || dst.IsUnspecified() {
		c.InAddrErrors.Add(1)
		return
	}
	if _, ok := s.table.Load().local[dst]; !ok && !(ifc == s.lo && dst.IsLoopback()) {
		c.NotForUs.Add(1)
		return
	}
	if ip.IsFragment() {
		c.FragmentsDropped.Add(1)
		return
	}
	payload := ip.Payload()
	switch ip.Protocol() {
	case wire.ProtoTCP:
		c.InDelivers.Add(1)
		in.seg.ECN = ip.TOS() & 3
		s.tcp.input(in, src, dst, payload)
	case wire.ProtoICMP:
		c.InDelivers.Add(1)
		s.icmp4Input(in, ip, payload)
	default:
		c.InUnknownProtos.Add(1)
		s.icmp4Unreach(in, pkt, 2) // protocol unreachable, as Linux does
	}
}

func (s *Stack) input6(in *inputCtx, ifc *iface, pkt []byte) {
	c := &s.ctr.ip
	if len(pkt) >= 6 {
		if pl := int(pkt[4])<<8 | int(pkt[5]); 40+pl > len(pkt) {
			c.InTruncatedPkts.Add(1)
			return
		}
	}
	ip, err := wire.ParseIPv6(pkt)
	if err != nil {
		c.InHdrErrors.Add(1)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	if !s.validSource(ifc, src) || dst.IsUnspecified() {
		c.InAddrErrors.Add(1)
		return
	}
	if _, ok := s.table.Load().local[dst]; !ok {
		if dst.IsMulticast() {
			// Neighbor discovery, MLD and router traffic reach TUN links;
			// ustack is L3 only and ignores them.
			s.ctr.icmp6.InOtherTypes.Add(1)
			return
		}
		c.NotForUs.Add(1)
		return
	}
	proto, payload, err := ip.UpperLayer()
	if err != nil {
		if errors.Is(err, wire.ErrFragment) {
			c.FragmentsDropped.Add(1)
		} else {
			c.InHdrErrors.Add(1)
		}
		return
	}
	switch proto {
	case wire.ProtoTCP:
		c.InDelivers.Add(1)
		in.seg.ECN = ip.TrafficClass() & 3
		s.tcp.input(in, src, dst, payload)
	case wire.ProtoICMPv6:
		c.InDelivers.Add(1)
		s.icmp6Input(in, src, dst, payload)
	default:
		c.InUnknownProtos.Add(1)
		if ip.NextHeader() == proto {
			// Parameter problem, unrecognized next header, pointing at
			// the fixed header's Next Header field (RFC 8200 4).
			s.icmp6ParamProblem(in, ip, 1, 6)
		}
	}
}

// ipHeaderLen is the IP header length ustack writes for src's family.
func ipHeaderLen(src netip.Addr) int {
	if src.Is4() {
		return 20
	}
	return 40
}

// buildIP writes an IP header for a payload of plen bytes at buf[0:] and
// returns the header length.
func (s *Stack) buildIP(buf []byte, src, dst netip.Addr, proto uint8, plen int) (int, error) {
	return s.buildIPECN(buf, src, dst, proto, plen, 0)
}

// buildIPECN is buildIP with an ECN codepoint (RFC 3168) in the low two
// bits of the IPv4 TOS / IPv6 traffic class.
func (s *Stack) buildIPECN(buf []byte, src, dst netip.Addr, proto uint8, plen int, ecn uint8) (int, error) {
	if src.Is4() {
		return wire.BuildIPv4(buf, &wire.IPv4Header{
			TOS: ecn & 3, TTL: s.ttl, Protocol: proto, ID: uint16(s.ipID.Add(1)), DF: true,
			Src: src, Dst: dst, PayloadLen: plen,
		})
	}
	return wire.BuildIPv6(buf, &wire.IPv6Header{
		TrafficClass: ecn & 3, HopLimit: s.ttl, NextHeader: proto, Src: src, Dst: dst, PayloadLen: plen,
	})
}

// route finds the interface and source address for dst. A valid src is
// kept when it is one of ours.
func (s *Stack) route(dst, src netip.Addr) (*iface, netip.Addr, bool) {
	t := s.table.Load()
	if _, local := t.local[dst]; local && s.lo != nil {
		// Our own address: through lo, from the same address unless a
		// source of ours was asked for.
		if !src.IsValid() {
			return s.lo, dst, true
		}
		if _, ours := t.local[src]; ours {
			return s.lo, src, true
		}
		return nil, netip.Addr{}, false
	}
	r, ok := t.lookup(dst)
	if !ok {
		return nil, netip.Addr{}, false
	}
	if src.IsValid() {
		if _, ours := t.local[src]; ours {
			return r.ifc, src, true
		}
		return nil, netip.Addr{}, false
	}
	src, ok = r.sourceFor(dst)
	return r.ifc, src, ok
}

// writeRaw sends one complete IP packet to dst's interface.
func (s *Stack) writeRaw(ifc *iface, pkt []byte) {
	if ifc == nil {
		s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	if err := ifc.ep.WritePacket(pkt); err != nil {
		s.ctr.ip.OutDiscards.Add(1)
		return
	}
	s.ctr.ip.OutRequests.Add(1)
}
