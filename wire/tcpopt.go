package wire

import "encoding/binary"

// TCP option kinds.
const (
	TCPOptEOL           = 0
	TCPOptNOP           = 1
	TCPOptMSS           = 2
	TCPOptWScale        = 3
	TCPOptSACKPermitted = 4
	TCPOptSACK          = 5
	TCPOptTimestamps    = 8
	TCPOptFastOpen      = 34  // RFC 7413
	TCPOptExperimental  = 254 // RFC 6994; Fast Open uses ExID TCPFastOpenExID
)

// TCPFastOpenExID is the experiment ID of the pre-RFC Fast Open option
// (kind 254).
const TCPFastOpenExID = 0xF989

// Fast Open cookie length bounds (RFC 7413 section 4.1.1).
const (
	TCPFastOpenCookieMin = 4
	TCPFastOpenCookieMax = 16
)

// SACKBlock is one SACK block: sequence numbers [Left, Right).
type SACKBlock struct{ Left, Right uint32 }

// TCPOptions holds the decoded TCP options ustack understands.
type TCPOptions struct {
	MSS    uint16
	HasMSS bool

	WScale    uint8
	HasWScale bool

	SACKPermitted bool

	SACK    [4]SACKBlock
	NumSACK int

	HasTS        bool
	TSVal, TSEcr uint32

	HasFastOpen bool
	FastOpenExp bool // the kind 254 / ExID 0xF989 form
	Cookie      [16]byte
	CookieLen   int // 0 with HasFastOpen = cookie request
}

// Parse decodes raw option bytes (the bytes between the fixed TCP header
// and the data offset) into o, which is reset first. Rules:
//   - EOL ends the list; NOP is skipped.
//   - Any other option needs a length byte >= 2 that stays inside opts,
//     else ErrOptionTruncated / ErrOptionLength.
//   - Fixed-length options with a wrong length are rejected with
//     ErrOptionLength: MSS 4, window scale 3, SACK-permitted 2,
//     timestamps 10, SACK 2+8n (n = 1..4).
//   - Fast Open (kind 34, or kind 254 with ExID 0xF989) with length 2 (4 for
//     kind 254) is a cookie request; a cookie of 4..16 bytes, even length,
//     is kept; other cookie lengths are ignored as Linux does.
//   - Unknown options (and kind 254 with other ExIDs) are skipped by length.
//   - A repeated option overwrites the earlier one.
func (o *TCPOptions) Parse(opts []byte) error {
	*o = TCPOptions{}
	if len(opts) > TCPMaxOptionsLen {
		return ErrOptionsTooLong
	}
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case TCPOptEOL:
			return nil
		case TCPOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return ErrOptionTruncated
		}
		l := int(opts[i+1])
		if l < 2 {
			return ErrOptionLength
		}
		if i+l > len(opts) {
			return ErrOptionTruncated
		}
		v := opts[i+2 : i+l]
		switch kind {
		case TCPOptMSS:
			if l != 4 {
				return ErrOptionLength
			}
			o.MSS = binary.BigEndian.Uint16(v)
			o.HasMSS = true
		case TCPOptWScale:
			if l != 3 {
				return ErrOptionLength
			}
			o.WScale = v[0]
			o.HasWScale = true
		case TCPOptSACKPermitted:
			if l != 2 {
				return ErrOptionLength
			}
			o.SACKPermitted = true
		case TCPOptSACK:
			if l < 10 || (l-2)%8 != 0 || l > 34 {
				return ErrOptionLength
			}
			o.NumSACK = (l - 2) / 8
			for j := 0; j < o.NumSACK; j++ {
				o.SACK[j].Left = binary.BigEndian.Uint32(v[j*8:])
				o.SACK[j].Right = binary.BigEndian.Uint32(v[j*8+4:])
			}
		case TCPOptTimestamps:
			if l != 10 {
				return ErrOptionLength
			}
			o.TSVal = binary.BigEndian.Uint32(v[0:4])
			o.TSEcr = binary.BigEndian.Uint32(v[4:8])
			o.HasTS = true
		case TCPOptFastOpen:
			o.setCookie(v, false)
		case TCPOptExperimental:
			if len(v) >= 2 && binary.BigEndian.Uint16(v) == TCPFastOpenExID {
				o.setCookie(v[2:], true)
			}
		}
		i += l
	}
	return nil
}

func (o *TCPOptions) setCookie(c []byte, exp bool) {
	n := len(c)
	if n != 0 && (n < TCPFastOpenCookieMin || n > TCPFastOpenCookieMax || n%2 != 0) {
		return
	}
	o.HasFastOpen = true
	o.FastOpenExp = exp
	o.CookieLen = n
	o.Cookie = [16]byte{}
	copy(o.Cookie[:], c)
}

// layout computes the encoded size and how many SACK blocks fit in 40
// bytes (blocks that do not fit are dropped, as Linux does).
func (o *TCPOptions) layout() (n, nsack int) {
	if o.HasMSS {
		n += 4
	}
	if o.HasTS {
		n += 12 // [SACKOK or NOP NOP] TS
	} else if o.SACKPermitted {
		n += 4 // NOP NOP SACKOK
	}
	if o.HasWScale {
		n += 4 // NOP WS
	}
	if o.HasFastOpen {
		n += o.fastOpenLen()
	}
	nsack = o.NumSACK
	if nsack > 4 {
		nsack = 4
	}
	if nsack < 0 {
		nsack = 0
	}
	for nsack > 0 && n+4+8*nsack > TCPMaxOptionsLen {
		nsack--
	}
	if nsack > 0 {
		n += 4 + 8*nsack // NOP NOP SACK len blocks
	}
	return n, nsack
}

func (o *TCPOptions) cookieLen() int {
	c := o.CookieLen
	if c < 0 {
		c = 0
	}
	if c > TCPFastOpenCookieMax {
		c = TCPFastOpenCookieMax
	}
	return c
}

func (o *TCPOptions) fastOpenLen() int {
	l := 2 + o.cookieLen()
	if o.FastOpenExp {
		l += 2
	}
	return (l + 3) &^ 3
}

// Len returns the encoded length of the options, a multiple of 4 and at
// most 40: every non-SACK option together takes at most 40 bytes, and SACK
// blocks that do not fit are dropped (out-of-range NumSACK and CookieLen
// are clamped).
func (o *TCPOptions) Len() int {
	n, _ := o.layout()
	return n
}

// Encode writes the options into b in Linux order (MSS, SACK-permitted +
// timestamps, window scale, SACK blocks, Fast Open followed by its NOP
// padding), aligned with NOPs, and
// returns the number of bytes written (Len()). If b is shorter than Len()
// nothing is written and 0 is returned.
func (o *TCPOptions) Encode(b []byte) int {
	n, nsack := o.layout()
	if len(b) < n {
		return 0
	}
	i := 0
	if o.HasMSS {
		b[i], b[i+1] = TCPOptMSS, 4
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	if o.HasTS {
		if o.SACKPermitted {
			b[i], b[i+1] = TCPOptSACKPermitted, 2
		} else {
			b[i], b[i+1] = TCPOptNOP, TCPOptNOP
		}
		b[i+2], b[i+3] = TCPOptTimestamps, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACKPermitted, 2
		i += 4
	}
	if o.HasWScale {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptWScale, 3, o.WScale
		i += 4
	}
	if nsack > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACK, uint8(2+8*nsack)
		i += 4
		for j := 0; j < nsack; j++ {
			binary.BigEndian.PutUint32(b[i:], o.SACK[j].Left)
			binary.BigEndian.PutUint32(b[i+4:], o.SACK[j].Right)
			i += 8
		}
	}
	if o.HasFastOpen {
		c := o.cookieLen()
		l := 2 + c
		if o.FastOpenExp {
			l += 2
		}
		if o.FastOpenExp {
			b[i], b[i+1] = TCPOptExperimental, uint8(l)
			binary.BigEndian.PutUint16(b[i+2:], TCPFastOpenExID)
			i += 4
		} else {
			b[i], b[i+1] = TCPOptFastOpen, uint8(l)
			i += 2
		}
		i += copy(b[i:i+c], o.Cookie[:c])
		// Like Linux, the option comes first and NOPs pad it to 4 bytes.
		for pad := ((l + 3) &^ 3) - l; pad > 0; pad-- {
			b[i] = TCPOptNOP
			i++
		}
	}
	return i
}
