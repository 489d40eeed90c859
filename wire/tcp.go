package wire

import "encoding/binary"

// TCP header flags (byte 13).
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// TCP header sizes.
const (
	TCPMinHeaderLen  = 20
	TCPMaxHeaderLen  = 60
	TCPMaxOptionsLen = 40
)

// TCP is a view of a TCP segment (header, options, payload). Obtain one
// with ParseTCP.
type TCP []byte

// ParseTCP validates the TCP header at the start of b: length, data offset
// and the framing of every option (see TCPOptions.Parse for the rules). It
// does not check the checksum (see ValidChecksum). The view covers all of b;
// everything after the header is payload.
func ParseTCP(b []byte) (TCP, error) {
	var o TCPOptions
	return ParseTCPWithOptions(b, &o)
}

// ParseTCPWithOptions is ParseTCP that also decodes the options into opts
// in the same pass (opts is reset; on error its contents are unspecified).
func ParseTCPWithOptions(b []byte, opts *TCPOptions) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, ErrTruncated
	}
	hl := int(b[12]>>4) * 4
	if hl < TCPMinHeaderLen || hl > len(b) {
		return nil, ErrDataOffset
	}
	if err := opts.Parse(b[TCPMinHeaderLen:hl]); err != nil {
		return nil, err
	}
	return TCP(b), nil
}

func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:2]) }
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:4]) }
func (t TCP) Seq() uint32     { return binary.BigEndian.Uint32(t[4:8]) }
func (t TCP) Ack() uint32     { return binary.BigEndian.Uint32(t[8:12]) }

// DataOffset returns the data offset field: header length in 32-bit words.
func (t TCP) DataOffset() int { return int(t[12] >> 4) }

// HeaderLen returns the header length in bytes (DataOffset*4).
func (t TCP) HeaderLen() int   { return int(t[12]>>4) * 4 }
func (t TCP) Flags() uint8     { return t[13] }
func (t TCP) Window() uint16   { return binary.BigEndian.Uint16(t[14:16]) }
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:18]) }
func (t TCP) Urgent() uint16   { return binary.BigEndian.Uint16(t[18:20]) }

// Options returns the raw option bytes.
func (t TCP) Options() []byte { return t[TCPMinHeaderLen:t.HeaderLen()] }

// Payload returns the bytes after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// ParseOptions decodes the options into opts (reset first).
func (t TCP) ParseOptions(opts *TCPOptions) error { return opts.Parse(t.Options()) }

// ValidChecksum reports whether the checksum is right; pseudoSum is
// PseudoHeaderSum(src, dst, ProtoTCP, len(t)).
func (t TCP) ValidChecksum(pseudoSum uint32) bool { return Checksum(t, pseudoSum) == 0 }

func (t TCP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(t[0:2], v) }
func (t TCP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(t[2:4], v) }
func (t TCP) SetSeq(v uint32)      { binary.BigEndian.PutUint32(t[4:8], v) }
func (t TCP) SetAck(v uint32)      { binary.BigEndian.PutUint32(t[8:12], v) }
func (t TCP) SetFlags(v uint8)     { t[13] = v }
func (t TCP) SetWindow(v uint16)   { binary.BigEndian.PutUint16(t[14:16], v) }
func (t TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(t[16:18], v) }
func (t TCP) SetUrgent(v uint16)   { binary.BigEndian.PutUint16(t[18:20], v) }

// ComputeChecksum recomputes and stores the checksum; pseudoSum is
// PseudoHeaderSum(src, dst, ProtoTCP, len(t)).
func (t TCP) ComputeChecksum(pseudoSum uint32) {
	t.SetChecksum(0)
	t.SetChecksum(Checksum(t, pseudoSum))
}

// TCPHeader describes a TCP header for BuildTCP.
type TCPHeader struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window, Urgent   uint16
	Options          *TCPOptions // nil = no options
}

// Len returns the header length BuildTCP will write (20 + padded options).
func (h *TCPHeader) Len() int {
	if h.Options == nil {
		return TCPMinHeaderLen
	}
	return TCPMinHeaderLen + h.Options.Len()
}

// BuildTCP writes header, options and payload into buf, fills in the
// checksum and returns the segment length. pseudoSum must be
// PseudoHeaderSum(src, dst, ProtoTCP, h.Len()+len(payload)). payload may
// already sit at buf[h.Len():] (then it is not copied twice; overlapping
// is allowed).
func BuildTCP(buf []byte, h *TCPHeader, payload []byte, pseudoSum uint32) (int, error) {
	hl := h.Len()
	if hl > TCPMaxHeaderLen {
		return 0, ErrOptionsTooLong
	}
	n := hl + len(payload)
	if len(buf) < n {
		return 0, ErrBufferTooSmall
	}
	b := buf[:n]
	binary.BigEndian.PutUint16(b[0:2], h.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], h.DstPort)
	binary.BigEndian.PutUint32(b[4:8], h.Seq)
	binary.BigEndian.PutUint32(b[8:12], h.Ack)
	b[12] = uint8(hl/4) << 4
	b[13] = h.Flags
	binary.BigEndian.PutUint16(b[14:16], h.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:20], h.Urgent)
	if h.Options != nil {
		h.Options.Encode(b[TCPMinHeaderLen:hl])
	}
	if len(payload) > 0 && &b[hl] != &payload[0] {
		copy(b[hl:], payload)
	}
	binary.BigEndian.PutUint16(b[16:18], Checksum(b, pseudoSum))
	return n, nil
}
