package wire

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoHopByHop  = 0
	ProtoICMP      = 1
	ProtoTCP       = 6
	ProtoUDP       = 17
	ProtoIPv6Route = 43
	ProtoIPv6Frag  = 44
	ProtoICMPv6    = 58
	ProtoNoNext    = 59
	ProtoIPv6Opts  = 60
)

// IPv4MinHeaderLen is the length of an IPv4 header without options.
const IPv4MinHeaderLen = 20

// DefaultTTL is used by BuildIPv4 and BuildIPv6 when the header asks for 0
// (Linux net.ipv4.ip_default_ttl).
const DefaultTTL = 64

// IPv4 is a view of an IPv4 packet (header and payload). Obtain one with
// ParseIPv4; accessors on an unvalidated slice may panic.
type IPv4 []byte

// ParseIPv4 validates the IPv4 header at the start of b and returns a view
// trimmed to the header's total length (link-layer padding dropped). It
// checks version, header length (options are skipped, not interpreted) and
// total length. It does not check the header checksum (see ValidChecksum)
// and accepts fragments (see IsFragment).
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, ErrVersion
	}
	hl := int(b[0]&0x0f) * 4
	if hl < IPv4MinHeaderLen {
		return nil, ErrHeaderLen
	}
	tl := int(binary.BigEndian.Uint16(b[2:4]))
	if tl < hl {
		return nil, ErrTotalLen
	}
	if tl > len(b) {
		return nil, ErrTruncated
	}
	return IPv4(b[:tl]), nil
}

// parseIPv4Quoted is ParseIPv4 for a packet quoted in an ICMP error: the
// payload may be cut short, so total length may exceed len(b).
func parseIPv4Quoted(b []byte) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, ErrVersion
	}
	hl := int(b[0]&0x0f) * 4
	if hl < IPv4MinHeaderLen {
		return nil, ErrHeaderLen
	}
	if hl > len(b) {
		return nil, ErrTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[2:4]))
	if tl < hl {
		return nil, ErrTotalLen
	}
	if tl < len(b) {
		b = b[:tl]
	}
	return IPv4(b), nil
}

func (ip IPv4) Version() uint8   { return ip[0] >> 4 }
func (ip IPv4) HeaderLen() int   { return int(ip[0]&0x0f) * 4 }
func (ip IPv4) TOS() uint8       { return ip[1] }
func (ip IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(ip[2:4]) }
func (ip IPv4) ID() uint16       { return binary.BigEndian.Uint16(ip[4:6]) }
func (ip IPv4) flagsFrag() uint16 {
	return binary.BigEndian.Uint16(ip[6:8])
}
func (ip IPv4) DontFragment() bool  { return ip[6]&0x40 != 0 }
func (ip IPv4) MoreFragments() bool { return ip[6]&0x20 != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (ip IPv4) FragmentOffset() int { return int(ip.flagsFrag()&0x1fff) * 8 }

// IsFragment reports whether the packet is a fragment of a larger datagram
// (more-fragments set or a non-zero offset). ustack does not reassemble.
func (ip IPv4) IsFragment() bool { return ip.flagsFrag()&0x3fff != 0 }

func (ip IPv4) TTL() uint8       { return ip[8] }
func (ip IPv4) Protocol() uint8  { return ip[9] }
func (ip IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(ip[10:12]) }
func (ip IPv4) Src() netip.Addr  { return netip.AddrFrom4([4]byte(ip[12:16])) }
func (ip IPv4) Dst() netip.Addr  { return netip.AddrFrom4([4]byte(ip[16:20])) }

// Options returns the raw option bytes (possibly empty); they are not
// interpreted.
func (ip IPv4) Options() []byte { return ip[IPv4MinHeaderLen:ip.HeaderLen()] }

// Payload returns the bytes after the header up to the total length (or
// the end of the view for a truncated quoted packet).
func (ip IPv4) Payload() []byte {
	end := int(ip.TotalLen())
	if end > len(ip) {
		end = len(ip)
	}
	hl := ip.HeaderLen()
	if hl > end {
		return ip[end:end]
	}
	return ip[hl:end]
}

// ValidChecksum reports whether the header checksum is correct.
func (ip IPv4) ValidChecksum() bool {
	return Checksum(ip[:ip.HeaderLen()], 0) == 0
}

// PseudoHeaderSum returns the pseudo-header partial sum for the payload of
// this packet (protocol and payload length taken from the header).
func (ip IPv4) PseudoHeaderSum() uint32 {
	return PseudoHeaderSum(ip.Src(), ip.Dst(), ip.Protocol(), len(ip.Payload()))
}

func (ip IPv4) SetTOS(v uint8)       { ip[1] = v }
func (ip IPv4) SetTotalLen(v uint16) { binary.BigEndian.PutUint16(ip[2:4], v) }
func (ip IPv4) SetID(v uint16)       { binary.BigEndian.PutUint16(ip[4:6], v) }
func (ip IPv4) SetTTL(v uint8)       { ip[8] = v }
func (ip IPv4) SetProtocol(v uint8)  { ip[9] = v }
func (ip IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(ip[10:12], v) }
func (ip IPv4) SetSrc(a netip.Addr)  { a4 := a.As4(); copy(ip[12:16], a4[:]) }
func (ip IPv4) SetDst(a netip.Addr)  { a4 := a.As4(); copy(ip[16:20], a4[:]) }

// ComputeChecksum recomputes and stores the header checksum.
func (ip IPv4) ComputeChecksum() {
	ip.SetChecksum(0)
	ip.SetChecksum(Checksum(ip[:ip.HeaderLen()], 0))
}

// DecTTL decrements the TTL and patches the checksum incrementally
// (RFC 1624). It returns the new TTL; a TTL of 0 is left alone.
func (ip IPv4) DecTTL() uint8 {
	if ip[8] == 0 {
		return 0
	}
	old := binary.BigEndian.Uint16(ip[8:10])
	ip[8]--
	ip.SetChecksum(ChecksumUpdate16(ip.Checksum(), old, binary.BigEndian.Uint16(ip[8:10])))
	return ip[8]
}

// IPv4Header describes an IPv4 header without options for BuildIPv4.
type IPv4Header struct {
	TOS, TTL, Protocol uint8 // TTL 0 means DefaultTTL
	ID                 uint16
	DF                 bool
	Src, Dst           netip.Addr // must be IPv4
	PayloadLen         int        // bytes after the header
}

// BuildIPv4 writes a 20-byte IPv4 header (no options, not a fragment) with
// its checksum into buf and returns the header length. The payload is not
// touched; it belongs at buf[20:20+PayloadLen].
func BuildIPv4(buf []byte, h *IPv4Header) (n int, err error) {
	if len(buf) < IPv4MinHeaderLen {
		return 0, ErrBufferTooSmall
	}
	if !h.Src.Is4() || !h.Dst.Is4() {
		return 0, ErrAddress
	}
	tl := IPv4MinHeaderLen + h.PayloadLen
	if h.PayloadLen < 0 || tl > 0xffff {
		return 0, ErrTooLong
	}
	b := buf[:IPv4MinHeaderLen]
	b[0] = 0x45
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(tl))
	binary.BigEndian.PutUint16(b[4:6], h.ID)
	if h.DF {
		b[6] = 0x40
	} else {
		b[6] = 0
	}
	b[7] = 0
	ttl := h.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	b[8] = ttl
	b[9] = h.Protocol
	b[10], b[11] = 0, 0
	s, d := h.Src.As4(), h.Dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b, 0))
	return IPv4MinHeaderLen, nil
}
