package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv4 types and codes.
const (
	ICMPv4EchoReply       = 0
	ICMPv4DestUnreachable = 3
	ICMPv4EchoRequest     = 8
	ICMPv4TimeExceeded    = 11
	ICMPv4ParamProblem    = 12

	ICMPv4NetUnreachable   = 0
	ICMPv4HostUnreachable  = 1
	ICMPv4ProtoUnreachable = 2
	ICMPv4PortUnreachable  = 3
	ICMPv4FragNeeded       = 4
)

// ICMPv6 types and codes.
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129

	ICMPv6NoRoute         = 0
	ICMPv6AdminProhibited = 1
	ICMPv6AddrUnreachable = 3
	ICMPv6PortUnreachable = 4
)

// ICMPHeaderLen is the length of the ICMP header including the 4-byte
// rest-of-header field.
const ICMPHeaderLen = 8

// Quote limits for ICMP errors: the error packet stays within the minimum
// MTU (576 for IPv4, RFC 1812; 1280 for IPv6, RFC 4443).
const (
	ICMPv4MaxQuote = 576 - IPv4MinHeaderLen - ICMPHeaderLen
	ICMPv6MaxQuote = 1280 - IPv6HeaderLen - ICMPHeaderLen
)

// ICMPv4 is a view of an ICMPv4 message. Obtain one with ParseICMPv4.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least the 8-byte ICMP header. It does
// not check the checksum (see ValidChecksum).
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPHeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv4(b), nil
}

func (m ICMPv4) Type() uint8      { return m[0] }
func (m ICMPv4) Code() uint8      { return m[1] }
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// ID and Seq are the echo identifier and sequence number.
func (m ICMPv4) ID() uint16  { return binary.BigEndian.Uint16(m[4:6]) }
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// MTU returns the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (m ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// Rest returns the 4-byte rest-of-header field.
func (m ICMPv4) Rest() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Body returns the bytes after the 8-byte header: echo data, or the quoted
// packet of an error.
func (m ICMPv4) Body() []byte { return m[ICMPHeaderLen:] }

// IsError reports whether the type is an error that quotes a packet.
func (m ICMPv4) IsError() bool {
	switch m.Type() {
	case ICMPv4DestUnreachable, ICMPv4TimeExceeded, ICMPv4ParamProblem, 4 /* source quench */, 5 /* redirect */ :
		return true
	}
	return false
}

// ValidChecksum reports whether the checksum over the message is right.
func (m ICMPv4) ValidChecksum() bool { return Checksum(m, 0) == 0 }

// Quoted parses the packet quoted in an error message: the IPv4 header
// (validated; its payload may be truncated) and the first bytes of its
// transport header (at least 8 when the sender followed RFC 792; check
// len(transport) before reading ports or a sequence number). A quoted
// fragment with a non-zero offset carries no transport header and gives
// ErrFragment.
func (m ICMPv4) Quoted() (ip IPv4, transport []byte, err error) {
	ip, err = parseIPv4Quoted(m.Body())
	if err != nil {
		return nil, nil, err
	}
	if ip.FragmentOffset() != 0 {
		return nil, nil, ErrFragment
	}
	return ip, ip.Payload(), nil
}

func (m ICMPv4) SetType(v uint8)      { m[0] = v }
func (m ICMPv4) SetCode(v uint8)      { m[1] = v }
func (m ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(m[2:4], v) }
func (m ICMPv4) SetID(v uint16)       { binary.BigEndian.PutUint16(m[4:6], v) }
func (m ICMPv4) SetSeq(v uint16)      { binary.BigEndian.PutUint16(m[6:8], v) }

// ComputeChecksum recomputes and stores the checksum.
func (m ICMPv4) ComputeChecksum() {
	m.SetChecksum(0)
	m.SetChecksum(Checksum(m, 0))
}

func icmpHeader(buf []byte, typ, code uint8, rest uint32, body []byte, max int) (int, error) {
	if len(body) > max {
		body = body[:max]
	}
	n := ICMPHeaderLen + len(body)
	if len(buf) < n {
		return 0, ErrBufferTooSmall
	}
	buf[0], buf[1], buf[2], buf[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(buf[4:8], rest)
	if len(body) > 0 && &buf[ICMPHeaderLen] != &body[0] {
		copy(buf[ICMPHeaderLen:n], body)
	}
	return n, nil
}

// BuildICMPv4Echo writes an echo request or reply (typ ICMPv4EchoRequest or
// ICMPv4EchoReply) with data and checksum into buf and returns its length.
// data may already sit at buf[8:].
func BuildICMPv4Echo(buf []byte, typ uint8, id, seq uint16, data []byte) (int, error) {
	if len(data) > 0xffff-IPv4MinHeaderLen-ICMPHeaderLen {
		return 0, ErrTooLong
	}
	n, err := icmpHeader(buf, typ, 0, uint32(id)<<16|uint32(seq), data, len(data))
	if err != nil {
		return 0, err
	}
	ICMPv4(buf[:n]).ComputeChecksum()
	return n, nil
}

// BuildICMPv4Unreachable writes a destination-unreachable message with the
// given code quoting orig (the offending IP packet, cut to ICMPv4MaxQuote
// bytes) and returns its length. mtu is the next-hop MTU, meaningful with
// code ICMPv4FragNeeded (use 0 otherwise).
func BuildICMPv4Unreachable(buf []byte, code uint8, mtu uint16, orig []byte) (int, error) {
	n, err := icmpHeader(buf, ICMPv4DestUnreachable, code, uint32(mtu), orig, ICMPv4MaxQuote)
	if err != nil {
		return 0, err
	}
	ICMPv4(buf[:n]).ComputeChecksum()
	return n, nil
}

// BuildICMPv4FragNeeded writes a "fragmentation needed and DF set" message
// (type 3 code 4) carrying the next-hop MTU.
func BuildICMPv4FragNeeded(buf []byte, mtu uint16, orig []byte) (int, error) {
	return BuildICMPv4Unreachable(buf, ICMPv4FragNeeded, mtu, orig)
}

// ICMPv6 is a view of an ICMPv6 message. Obtain one with ParseICMPv6.
type ICMPv6 []byte

// ParseICMPv6 checks that b holds at least the 8-byte header. (Messages
// like NDP have other layouts after the first 4 bytes; ustack only uses
// echo and errors.) It does not check the checksum.
func ParseICMPv6(b []byte) (ICMPv6, error) {
	if len(b) < ICMPHeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv6(b), nil
}

func (m ICMPv6) Type() uint8      { return m[0] }
func (m ICMPv6) Code() uint8      { return m[1] }
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }
func (m ICMPv6) ID() uint16       { return binary.BigEndian.Uint16(m[4:6]) }
func (m ICMPv6) Seq() uint16      { return binary.BigEndian.Uint16(m[6:8]) }

// MTU returns the MTU of a packet-too-big message.
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Rest returns the 4-byte field after the checksum (pointer of a
// parameter problem, MTU of packet too big, ID/Seq of echo).
func (m ICMPv6) Rest() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Body returns the bytes after the 8-byte header.
func (m ICMPv6) Body() []byte { return m[ICMPHeaderLen:] }

// IsError reports whether the type is an error (types 0..127).
func (m ICMPv6) IsError() bool { return m.Type() < 128 }

// ValidChecksum reports whether the checksum is right; pseudoSum is
// PseudoHeaderSum(src, dst, ProtoICMPv6, len(m)).
func (m ICMPv6) ValidChecksum(pseudoSum uint32) bool { return Checksum(m, pseudoSum) == 0 }

// Quoted parses the packet quoted in an error message: the fixed IPv6
// header (payload may be truncated), the upper-layer protocol found by
// walking its extension headers, and the first bytes of that header. A
// quoted first fragment is walked over; a later fragment (no transport
// header) gives ErrFragment.
func (m ICMPv6) Quoted() (ip IPv6, proto uint8, transport []byte, err error) {
	ip, err = parseIPv6Quoted(m.Body())
	if err != nil {
		return nil, 0, nil, err
	}
	proto, transport, err = ip.upperLayer(true)
	if err != nil {
		return nil, 0, nil, err
	}
	return ip, proto, transport, nil
}

func (m ICMPv6) SetType(v uint8)      { m[0] = v }
func (m ICMPv6) SetCode(v uint8)      { m[1] = v }
func (m ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(m[2:4], v) }
func (m ICMPv6) SetID(v uint16)       { binary.BigEndian.PutUint16(m[4:6], v) }
func (m ICMPv6) SetSeq(v uint16)      { binary.BigEndian.PutUint16(m[6:8], v) }

// ComputeChecksum recomputes and stores the checksum for the given
// source and destination.
func (m ICMPv6) ComputeChecksum(src, dst netip.Addr) {
	m.SetChecksum(0)
	m.SetChecksum(Checksum(m, PseudoHeaderSum(src, dst, ProtoICMPv6, len(m))))
}

// BuildICMPv6Echo writes an echo request or reply (ICMPv6EchoRequest /
// ICMPv6EchoReply) from src to dst with data and checksum; returns its
// length. data may already sit at buf[8:].
func BuildICMPv6Echo(buf []byte, src, dst netip.Addr, typ uint8, id, seq uint16, data []byte) (int, error) {
	if len(data) > 0xffff-ICMPHeaderLen {
		return 0, ErrTooLong
	}
	n, err := icmpHeader(buf, typ, 0, uint32(id)<<16|uint32(seq), data, len(data))
	if err != nil {
		return 0, err
	}
	ICMPv6(buf[:n]).ComputeChecksum(src, dst)
	return n, nil
}

// BuildICMPv6Unreachable writes a destination-unreachable message with the
// given code quoting orig (cut to ICMPv6MaxQuote bytes).
func BuildICMPv6Unreachable(buf []byte, src, dst netip.Addr, code uint8, orig []byte) (int, error) {
	n, err := icmpHeader(buf, ICMPv6DestUnreachable, code, 0, orig, ICMPv6MaxQuote)
	if err != nil {
		return 0, err
	}
	ICMPv6(buf[:n]).ComputeChecksum(src, dst)
	return n, nil
}

// BuildICMPv6PacketTooBig writes a packet-too-big message with the MTU,
// quoting orig (cut to ICMPv6MaxQuote bytes).
func BuildICMPv6PacketTooBig(buf []byte, src, dst netip.Addr, mtu uint32, orig []byte) (int, error) {
	n, err := icmpHeader(buf, ICMPv6PacketTooBig, 0, mtu, orig, ICMPv6MaxQuote)
	if err != nil {
		return 0, err
	}
	ICMPv6(buf[:n]).ComputeChecksum(src, dst)
	return n, nil
}
