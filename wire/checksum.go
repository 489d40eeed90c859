package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// ChecksumAdd adds the bytes of b, taken as big-endian 16-bit words, to the
// running one's-complement sum and returns the new sum, not folded to 16
// bits and not complemented. A trailing odd byte is padded with a zero byte,
// so when a message is summed in several calls every chunk except the last
// must have an even length.
//
// Speed: whole 64-byte blocks are read as sixteen 32-bit words added into
// four independent uint64 accumulators (no carry chain, so the adds run in
// parallel; carries collect in the high halves and are folded at the end).
// Input under 512 bytes and the last 0..63 bytes use an 8-byte
// add-with-carry chain, faster at header sizes. Words are read little-endian and the folded result
// swapped, since one's-complement sums are byte-order independent
// (RFC 1071). See BenchmarkChecksum and BenchmarkChecksumVariants.
func ChecksumAdd(sum uint32, b []byte) uint32 {
	var acc, c uint64
	if len(b) >= 512 {
		acc = sumBlocks(b)
		b = b[len(b)&^63:]
	}
	// Short input (a typical header) and the last 0..63 bytes go through
	// an 8-byte add-with-carry chain, which beats the split adds there.
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	acc = foldTo32(acc) + c
	if len(b) >= 4 {
		acc += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		// Big-endian word [b0, 0] read little-endian is b0.
		acc += uint64(b[0])
	}
	for acc > 0xffff {
		acc = (acc & 0xffff) + (acc >> 16)
	}
	r := uint64(sum) + uint64(bits.ReverseBytes16(uint16(acc)))
	return uint32(r&0xffffffff) + uint32(r>>32)
}

func foldTo32(a uint64) uint64 {
	return (a & 0xffffffff) + (a >> 32)
}

// sumBlocks returns the little-endian one's-complement sum of the whole
// 64-byte blocks of b, folded to at most 33 bits.
func sumBlocks(b []byte) uint64 {
	var acc uint64
	for len(b) >= 64 {
		// Each block adds < 2^34 to an accumulator; at most 1 GiB per
		// round keeps the four accumulators far from overflow.
		blk := b[:min(len(b), 1<<30)&^63]
		b = b[len(blk):]
		var a0, a1, a2, a3 uint64
		for len(blk) >= 64 {
			a0 += uint64(binary.LittleEndian.Uint32(blk[0:])) + uint64(binary.LittleEndian.Uint32(blk[16:])) +
				uint64(binary.LittleEndian.Uint32(blk[32:])) + uint64(binary.LittleEndian.Uint32(blk[48:]))
			a1 += uint64(binary.LittleEndian.Uint32(blk[4:])) + uint64(binary.LittleEndian.Uint32(blk[20:])) +
				uint64(binary.LittleEndian.Uint32(blk[36:])) + uint64(binary.LittleEndian.Uint32(blk[52:]))
			a2 += uint64(binary.LittleEndian.Uint32(blk[8:])) + uint64(binary.LittleEndian.Uint32(blk[24:])) +
				uint64(binary.LittleEndian.Uint32(blk[40:])) + uint64(binary.LittleEndian.Uint32(blk[56:]))
			a3 += uint64(binary.LittleEndian.Uint32(blk[12:])) + uint64(binary.LittleEndian.Uint32(blk[28:])) +
				uint64(binary.LittleEndian.Uint32(blk[44:])) + uint64(binary.LittleEndian.Uint32(blk[60:]))
			blk = blk[64:]
		}
		acc = foldTo32(acc) + foldTo32(a0) + foldTo32(a1) + foldTo32(a2) + foldTo32(a3)
	}
	return foldTo32(acc)
}

// checksumAddSlow is the plain RFC 1071 reference loop, used by tests and
// the benchmark baseline.
func checksumAddSlow(sum uint32, b []byte) uint32 {
	s := uint64(sum)
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s > 0xffffffff {
		s = (s & 0xffffffff) + (s >> 32)
	}
	return uint32(s)
}

// Fold folds a partial sum to 16 bits with end-around carry (not complemented).
func Fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return uint16(sum)
}

// Checksum returns the internet checksum (RFC 1071) of b with the partial
// sum initial (for example a pseudo-header sum) added in: the folded,
// complemented value ready to be stored in a header. Verifying a message
// whose checksum field is included yields 0.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(ChecksumAdd(initial, b))
}

// PseudoHeaderSum returns the partial sum of the TCP/UDP/ICMPv6
// pseudo-header: source and destination address, protocol and upper-layer
// length. IPv4 addresses (including IPv4-mapped IPv6 ones) give the RFC 793
// form, IPv6 addresses the RFC 8200 section 8.1 form. The result is meant as
// the initial value for Checksum or ChecksumAdd. Mixed or invalid addresses
// do not panic; they are summed in their 16-byte form.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint64
	if (src.Is4() || src.Is4In6()) && (dst.Is4() || dst.Is4In6()) {
		a, b := src.As4(), dst.As4()
		s = uint64(a[0])<<8 | uint64(a[1])
		s += uint64(a[2])<<8 | uint64(a[3])
		s += uint64(b[0])<<8 | uint64(b[1])
		s += uint64(b[2])<<8 | uint64(b[3])
	} else {
		a, b := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			s += uint64(a[i])<<8 | uint64(a[i+1])
			s += uint64(b[i])<<8 | uint64(b[i+1])
		}
	}
	s += uint64(proto)
	s += uint64(uint32(length)>>16) + uint64(uint32(length)&0xffff)
	for s > 0xffffffff {
		s = (s & 0xffffffff) + (s >> 32)
	}
	return uint32(s)
}

// ChecksumUpdate16 returns the checksum field value after a 16-bit word
// covered by it changes from oldVal to newVal, per RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). It agrees with a full recomputation except that
// a message whose words all become zero yields 0x0000 instead of 0xffff
// (both are one's-complement zero).
func ChecksumUpdate16(oldCsum, oldVal, newVal uint16) uint16 {
	s := uint32(^oldCsum) + uint32(^oldVal) + uint32(newVal)
	return ^Fold(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for an aligned 32-bit field (for
// example a sequence number or an IPv4 address).
func ChecksumUpdate32(oldCsum uint16, oldVal, newVal uint32) uint16 {
	s := uint32(^oldCsum) +
		uint32(^uint16(oldVal>>16)) + uint32(^uint16(oldVal)) +
		uint32(uint16(newVal>>16)) + uint32(uint16(newVal))
	return ^Fold(s)
}
