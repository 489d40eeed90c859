package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6HeaderLen is the length of the fixed IPv6 header.
const IPv6HeaderLen = 40

// MaxIPv6ExtHeaders bounds the extension-header walk in UpperLayer.
const MaxIPv6ExtHeaders = 16

// IPv6 is a view of an IPv6 packet (fixed header and payload). Obtain one
// with ParseIPv6.
type IPv6 []byte

// ParseIPv6 validates the fixed IPv6 header at the start of b and returns a
// view trimmed to 40 + payload length. Extension headers are validated
// lazily by UpperLayer. Jumbograms (payload length 0 with a jumbo option)
// are not supported: payload length 0 means an empty payload.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 6 {
		return nil, ErrVersion
	}
	tl := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	if tl > len(b) {
		return nil, ErrTruncated
	}
	return IPv6(b[:tl]), nil
}

// parseIPv6Quoted is ParseIPv6 for a packet quoted in an ICMPv6 error,
// whose payload may be cut short.
func parseIPv6Quoted(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 6 {
		return nil, ErrVersion
	}
	tl := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	if tl < len(b) {
		b = b[:tl]
	}
	return IPv6(b), nil
}

func (ip IPv6) Version() uint8 { return ip[0] >> 4 }
func (ip IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(ip[0:2]) >> 4)
}
func (ip IPv6) FlowLabel() uint32  { return binary.BigEndian.Uint32(ip[0:4]) & 0xfffff }
func (ip IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(ip[4:6]) }
func (ip IPv6) NextHeader() uint8  { return ip[6] }
func (ip IPv6) HopLimit() uint8    { return ip[7] }
func (ip IPv6) Src() netip.Addr    { return netip.AddrFrom16([16]byte(ip[8:24])) }
func (ip IPv6) Dst() netip.Addr    { return netip.AddrFrom16([16]byte(ip[24:40])) }

// Payload returns everything after the fixed header (extension headers
// included).
func (ip IPv6) Payload() []byte {
	end := IPv6HeaderLen + int(ip.PayloadLen())
	if end > len(ip) {
		end = len(ip)
	}
	return ip[IPv6HeaderLen:end]
}

func (ip IPv6) SetTrafficClass(v uint8) {
	w := binary.BigEndian.Uint16(ip[0:2])&0xf00f | uint16(v)<<4
	binary.BigEndian.PutUint16(ip[0:2], w)
}
func (ip IPv6) SetFlowLabel(v uint32) {
	w := binary.BigEndian.Uint32(ip[0:4])&^0xfffff | v&0xfffff
	binary.BigEndian.PutUint32(ip[0:4], w)
}
func (ip IPv6) SetPayloadLen(v uint16) { binary.BigEndian.PutUint16(ip[4:6], v) }
func (ip IPv6) SetNextHeader(v uint8)  { ip[6] = v }
func (ip IPv6) SetHopLimit(v uint8)    { ip[7] = v }
func (ip IPv6) SetSrc(a netip.Addr)    { a16 := a.As16(); copy(ip[8:24], a16[:]) }
func (ip IPv6) SetDst(a netip.Addr)    { a16 := a.As16(); copy(ip[24:40], a16[:]) }

// IPv6ExtHeader is one extension header met by an IPv6ExtIter.
type IPv6ExtHeader struct {
	Proto uint8  // this header's type: ProtoHopByHop, ProtoIPv6Route, ProtoIPv6Frag, ProtoIPv6Opts
	Next  uint8  // the next header field
	Data  []byte // the whole extension header, including its first two bytes
}

// FragOffset returns the fragment offset in bytes of a fragment header.
func (h *IPv6ExtHeader) FragOffset() int {
	return int(binary.BigEndian.Uint16(h.Data[2:4]) &^ 7)
}

// FragMore returns the M (more fragments) flag of a fragment header.
func (h *IPv6ExtHeader) FragMore() bool { return h.Data[3]&1 != 0 }

// FragID returns the identification of a fragment header.
func (h *IPv6ExtHeader) FragID() uint32 { return binary.BigEndian.Uint32(h.Data[4:8]) }

// IsIPv6ExtHeader reports whether proto is an extension header that
// UpperLayer walks over.
func IsIPv6ExtHeader(proto uint8) bool {
	switch proto {
	case ProtoHopByHop, ProtoIPv6Route, ProtoIPv6Frag, ProtoIPv6Opts:
		return true
	}
	return false
}

// IPv6ExtIter walks the extension headers of an IPv6 packet without
// allocating. Use:
//
//	it := ip.ExtHeaders()
//	for it.Next() { h := it.Header(); ... }
//	if it.Err() != nil { drop }
//	proto, payload := it.Upper()
type IPv6ExtIter struct {
	next  uint8
	rest  []byte
	count int
	err   error
	cur   IPv6ExtHeader
}

// ExtHeaders returns an iterator over the extension headers.
func (ip IPv6) ExtHeaders() IPv6ExtIter {
	return IPv6ExtIter{next: ip.NextHeader(), rest: ip.Payload()}
}

// Next advances to the next extension header and reports whether there is
// one. It returns false at the upper-layer header or on error.
func (it *IPv6ExtIter) Next() bool {
	if it.err != nil || !IsIPv6ExtHeader(it.next) {
		return false
	}
	if it.next == ProtoHopByHop && it.count != 0 {
		it.err = ErrHopByHopNotFirst
		return false
	}
	if it.count >= MaxIPv6ExtHeaders {
		it.err = ErrTooManyExt
		return false
	}
	if len(it.rest) < 8 {
		it.err = ErrExtHeader
		return false
	}
	n := 8
	if it.next != ProtoIPv6Frag {
		n = (int(it.rest[1]) + 1) * 8
		if n > len(it.rest) {
			it.err = ErrExtHeader
			return false
		}
	}
	it.cur = IPv6ExtHeader{Proto: it.next, Next: it.rest[0], Data: it.rest[:n]}
	it.next = it.rest[0]
	it.rest = it.rest[n:]
	it.count++
	return true
}

// Header returns the current extension header (valid after Next returned true).
func (it *IPv6ExtIter) Header() *IPv6ExtHeader { return &it.cur }

// Err returns the error that stopped the walk, if any.
func (it *IPv6ExtIter) Err() error { return it.err }

// Upper returns the upper-layer protocol and its bytes once Next returned
// false without error.
func (it *IPv6ExtIter) Upper() (uint8, []byte) { return it.next, it.rest }

// UpperLayer walks the extension headers (hop-by-hop, routing, fragment,
// destination options; at most MaxIPv6ExtHeaders) and returns the
// upper-layer protocol number and its bytes. Atomic fragments (fragment
// header with offset 0 and M clear, RFC 6946) are walked over. A real
// fragment returns proto ProtoIPv6Frag, the bytes from the fragment header
// on, and ErrFragment: ustack does not reassemble. Protocol ProtoNoNext
// returns an empty payload and no error.
func (ip IPv6) UpperLayer() (proto uint8, payload []byte, err error) {
	return ip.upperLayer(false)
}

// upperLayer is UpperLayer; with firstFragOK a first fragment (offset 0,
// M set) is walked over like an atomic one, as ICMP error quotes need.
func (ip IPv6) upperLayer(firstFragOK bool) (proto uint8, payload []byte, err error) {
	it := ip.ExtHeaders()
	for {
		before := it.rest
		if !it.Next() {
			break
		}
		if h := it.Header(); h.Proto == ProtoIPv6Frag && (h.FragOffset() != 0 || (h.FragMore() && !firstFragOK)) {
			return ProtoIPv6Frag, before, ErrFragment
		}
	}
	if it.err != nil {
		return 0, nil, it.err
	}
	proto, payload = it.Upper()
	if proto == ProtoNoNext {
		payload = payload[:0]
	}
	return proto, payload, nil
}

// IsFragment reports whether the packet carries a (non-atomic) fragment header.
func (ip IPv6) IsFragment() bool {
	_, _, err := ip.UpperLayer()
	return err == ErrFragment
}

// IPv6Header describes a fixed IPv6 header for BuildIPv6.
type IPv6Header struct {
	TrafficClass uint8
	FlowLabel    uint32
	NextHeader   uint8
	HopLimit     uint8 // 0 means DefaultTTL
	Src, Dst     netip.Addr
	PayloadLen   int // bytes after the fixed header
}

// BuildIPv6 writes the 40-byte fixed IPv6 header into buf and returns 40.
func BuildIPv6(buf []byte, h *IPv6Header) (int, error) {
	if len(buf) < IPv6HeaderLen {
		return 0, ErrBufferTooSmall
	}
	if !h.Src.Is6() || !h.Dst.Is6() {
		return 0, ErrAddress
	}
	if h.PayloadLen < 0 || h.PayloadLen > 0xffff {
		return 0, ErrTooLong
	}
	b := buf[:IPv6HeaderLen]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(h.PayloadLen))
	b[6] = h.NextHeader
	hl := h.HopLimit
	if hl == 0 {
		hl = DefaultTTL
	}
	b[7] = hl
	s, d := h.Src.As16(), h.Dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return IPv6HeaderLen, nil
}
