package tcp

import (
	"encoding/binary"
	"time"
)

// SynCookieKeys are the two secret keys of SYN cookies: the first keys the
// time-independent hash of the 4-tuple, the second the time-dependent hash
// that protects the encoded MSS index. Choose them randomly once per stack.
type SynCookieKeys [2][16]byte

// SynCookiePeriod is the length of one cookie epoch: the counter encoded in
// a cookie is Unix time / 64 s. Linux uses 60 s; a power of two is cheaper
// and changes nothing that matters.
const SynCookiePeriod = 64 * time.Second

// SynCookieMaxAge is the number of epochs a cookie is valid for: a cookie
// made in epoch c is accepted in epochs c and c+1 (64 to 128 s), like Linux's
// MAX_SYNCOOKIE_AGE.
const SynCookieMaxAge = 2

const (
	synCookieBits = 24
	synCookieMask = 1<<synCookieBits - 1
)

// SynCookieMSSv4 and SynCookieMSSv6 are the MSS values a cookie can encode
// (2 bits), as in Linux: common IPv4 MSSs, and IPv6 MSSs for MTUs of 1280,
// 1480, 1500 and 9000.
var (
	SynCookieMSSv4 = [4]uint16{536, 1300, 1440, 1460}
	SynCookieMSSv6 = [4]uint16{1220, 1420, 1440, 8940}
)

func synCookieTable(t Tuple) *[4]uint16 {
	if t.Local.Addr().Is4() || t.Local.Addr().Is4In6() {
		return &SynCookieMSSv4
	}
	return &SynCookieMSSv6
}

func synCookieCount(now time.Time) uint32 {
	return uint32(uint64(now.Unix()) / uint64(SynCookiePeriod/time.Second))
}

func synCookieHash(keys *SynCookieKeys, t Tuple, count uint32, which int) uint32 {
	var b [40]byte
	putTuple((*[36]byte)(b[:36]), t)
	binary.BigEndian.PutUint32(b[36:], count)
	return uint32(SipHash24(&keys[which], b[:]))
}

// SynCookieISN returns the initial sequence number for a SYN-ACK sent as a
// SYN cookie instead of keeping state for the SYN from the client. t is the
// connection from the listener's view (Local = listener address), clientISN
// the SYN's sequence number and mss the MSS the client offered (536 if it
// sent none). Like Linux the cookie is
//
//	H0(t) + clientISN + (epoch << 24) + ((H1(t, epoch) + mssIndex) mod 2^24)
//
// with H0 and H1 SipHash-2-4 under keys[0] and keys[1], epoch the
// SynCookiePeriod counter and mssIndex the largest entry of SynCookieMSSv4
// (or v6) not above mss (index 0 if mss is below all of them). encodedMSS
// is that table entry: use it as the connection's MSS.
func SynCookieISN(keys *SynCookieKeys, t Tuple, clientISN uint32, mss uint16, now time.Time) (iss uint32, encodedMSS uint16) {
	tab := synCookieTable(t)
	idx := 0
	for i := len(tab) - 1; i > 0; i-- {
		if mss >= tab[i] {
			idx = i
			break
		}
	}
	count := synCookieCount(now)
	iss = synCookieHash(keys, t, 0, 0) + clientISN + count<<synCookieBits +
		((synCookieHash(keys, t, count, 1) + uint32(idx)) & synCookieMask)
	return iss, tab[idx]
}

// CheckSynCookie validates the ACK that completes a SYN-cookie handshake:
// ack is the segment's acknowledgment number (cookie ISS + 1) and clientISN
// the client's ISN, i.e. the segment's sequence number - 1 (for an ACK
// without SYN-data). It returns the MSS encoded in the cookie, or ok=false
// for a forged, mismatched or expired cookie (older than SynCookieMaxAge
// epochs, or from the future).
//
// As Linux does, a listener should only try cookies if it sent cookies
// recently (its SYN queue overflowed within the last two epochs), so that
// random ACKs cannot open connections at a rate of 4 in 2^24.
func CheckSynCookie(keys *SynCookieKeys, t Tuple, ack, clientISN uint32, now time.Time) (mss uint16, ok bool) {
	cookie := ack - 1 - synCookieHash(keys, t, 0, 0) - clientISN
	count := synCookieCount(now)
	diff := (count - cookie>>synCookieBits) & (0xffffffff >> synCookieBits)
	if diff >= SynCookieMaxAge {
		return 0, false
	}
	idx := (cookie - synCookieHash(keys, t, count-diff, 1)) & synCookieMask
	tab := synCookieTable(t)
	if idx >= uint32(len(tab)) {
		return 0, false
	}
	return tab[idx], true
}

// SynCookieOptions are the SYN options a SYN cookie carries in the low 6
// bits of the SYN-ACK's TSval when the client uses timestamps: the
// client's window scale (4 bits, 0xf = no window scaling), SACK permitted
// and ECN.
type SynCookieOptions struct {
	WScale   uint8 // client's shift count, valid when WScaleOK
	WScaleOK bool  // client sent the window scale option
	SACKOK   bool  // client sent SACK permitted
	ECNOK    bool  // ECN negotiated
}

const (
	synCookieTSBits   = 6
	synCookieTSMask   = 1<<synCookieTSBits - 1
	synCookieTSWScale = 0xf
	synCookieTSSACK   = 1 << 4
	synCookieTSECN    = 1 << 5
)

// SynCookieTSVal returns the TSval to send in a SYN-cookie SYN-ACK: tsval
// (the normal timestamp clock value) with its low 6 bits replaced by o,
// moved back by 64 ticks if needed so it never runs ahead of tsval. The
// client echoes it in TSecr of its ACK; DecodeSynCookieTS recovers o.
func SynCookieTSVal(tsval uint32, o SynCookieOptions) uint32 {
	opts := uint32(synCookieTSWScale)
	if o.WScaleOK && o.WScale < synCookieTSWScale {
		opts = uint32(o.WScale)
	}
	if o.SACKOK {
		opts |= synCookieTSSACK
	}
	if o.ECNOK {
		opts |= synCookieTSECN
	}
	ts := tsval&^synCookieTSMask | opts
	if ts > tsval {
		ts -= 1 << synCookieTSBits
	}
	return ts
}

// synCookieMaxWScale is the largest window scale shift (RFC 7323).
const synCookieMaxWScale = 14

// DecodeSynCookieTS recovers the options from the TSecr of the ACK that
// completes a SYN-cookie handshake. Like Linux, ok is false when the cookie
// claims something this configuration has disabled (timestamps, SACK or
// window scaling) or a shift count above 14; ECN is only reported when
// cfg.ECN allows it. If the ACK carries no timestamp option the connection
// has no window scaling and no SACK; do not call this then.
func DecodeSynCookieTS(tsecr uint32, cfg *Config) (o SynCookieOptions, ok bool) {
	if cfg.Timestamps == 0 {
		return SynCookieOptions{}, false
	}
	opts := tsecr & synCookieTSMask
	o.SACKOK = opts&synCookieTSSACK != 0
	if o.SACKOK && !cfg.SACK {
		return SynCookieOptions{}, false
	}
	o.ECNOK = opts&synCookieTSECN != 0 && cfg.ECN != 0
	w := opts & synCookieTSWScale
	if w == synCookieTSWScale {
		return o, true
	}
	if w > synCookieMaxWScale || !cfg.WindowScaling {
		return SynCookieOptions{}, false
	}
	o.WScale, o.WScaleOK = uint8(w), true
	return o, true
}
