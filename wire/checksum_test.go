package wire

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3 example: the sum of these bytes is ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(ChecksumAdd(0, b)); got != 0xddf2 {
		t.Fatalf("sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != ^uint16(0xddf2) {
		t.Fatalf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
}

func TestChecksumEdgeCases(t *testing.T) {
	if got := Checksum(nil, 0); got != 0xffff {
		t.Fatalf("empty: %#x", got)
	}
	if got := Checksum([]byte{0xab}, 0); got != ^uint16(0xab00) {
		t.Fatalf("one byte: %#x", got)
	}
	// All-ones data exercises every carry.
	ff := make([]byte, 65535)
	for i := range ff {
		ff[i] = 0xff
	}
	for _, n := range []int{2, 7, 8, 9, 31, 32, 33, 64, 65534, 65535} {
		if got, want := Fold(ChecksumAdd(0xffffffff, ff[:n])), Fold(checksumAddSlow(0xffffffff, ff[:n])); got != want {
			t.Fatalf("n=%d: fast %#x slow %#x", n, got, want)
		}
	}
}

// The fast path must agree with the plain RFC 1071 loop for every length,
// alignment and initial value.
func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for i := 0; i < 20000; i++ {
		off := r.IntN(16)
		n := r.IntN(300)
		if i%5 == 0 { // around and above the 512-byte bulk threshold
			n = 400 + r.IntN(3000)
		}
		if i%50 == 0 {
			n = r.IntN(len(buf) - 16)
		}
		init := r.Uint32()
		if i%3 == 0 {
			init = 0
		}
		b := buf[off : off+n]
		got, want := Fold(ChecksumAdd(init, b)), Fold(checksumAddSlow(init, b))
		if got != want {
			t.Fatalf("off=%d n=%d init=%#x: fast %#x slow %#x", off, n, init, got, want)
		}
	}
}

// Summing in even-length chunks equals summing at once.
func TestChecksumChunked(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 3001)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	want := Checksum(b, 0)
	for i := 0; i < 200; i++ {
		var s uint32
		rest := b
		for len(rest) > 0 {
			n := 2 * r.IntN(200)
			if n >= len(rest) {
				n = len(rest)
			}
			s = ChecksumAdd(s, rest[:n])
			rest = rest[n:]
		}
		if got := ^Fold(s); got != want {
			t.Fatalf("chunked %#x want %#x", got, want)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.168.1.200")
	var ph [12]byte
	copy(ph[0:4], src.AsSlice())
	copy(ph[4:8], dst.AsSlice())
	ph[9] = ProtoTCP
	binary.BigEndian.PutUint16(ph[10:], 1234)
	if got, want := Fold(PseudoHeaderSum(src, dst, ProtoTCP, 1234)), Fold(checksumAddSlow(0, ph[:])); got != want {
		t.Fatalf("v4 %#x want %#x", got, want)
	}
	s6, d6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::abcd:1234:5678:9abc")
	var ph6 [40]byte
	copy(ph6[0:16], s6.AsSlice())
	copy(ph6[16:32], d6.AsSlice())
	binary.BigEndian.PutUint32(ph6[32:], 70000)
	ph6[39] = ProtoICMPv6
	if got, want := Fold(PseudoHeaderSum(s6, d6, ProtoICMPv6, 70000)), Fold(checksumAddSlow(0, ph6[:])); got != want {
		t.Fatalf("v6 %#x want %#x", got, want)
	}
	// Mixed or zero addresses must not panic.
	_ = PseudoHeaderSum(src, netip.Addr{}, ProtoTCP, 1)
	_ = PseudoHeaderSum(netip.Addr{}, s6, ProtoTCP, 1)
}

// RFC 1624: the incremental update equals a full recomputation, over
// random messages and random changes of a 16-bit and a 32-bit field.
func TestChecksumUpdateProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 100000; i++ {
		n := 4 + 2*r.IntN(40)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%1000 == 0 { // mostly-zero messages hit the 0x0000/0xffff corner
			clear(b)
			b[r.IntN(n)] = byte(r.Uint32())
		}
		b[0], b[1] = 0, 0 // checksum field
		binary.BigEndian.PutUint16(b[0:2], Checksum(b, 0))
		csum := binary.BigEndian.Uint16(b[0:2])

		if i%2 == 0 {
			pos := 2 + 2*r.IntN((n-2)/2)
			old := binary.BigEndian.Uint16(b[pos:])
			nv := uint16(r.Uint32())
			binary.BigEndian.PutUint16(b[pos:], nv)
			inc := ChecksumUpdate16(csum, old, nv)
			checkUpdate(t, b, inc)
		} else if n >= 6 {
			pos := 2 + 2*r.IntN((n-4)/2)
			old := binary.BigEndian.Uint32(b[pos:])
			nv := r.Uint32()
			binary.BigEndian.PutUint32(b[pos:], nv)
			inc := ChecksumUpdate32(csum, old, nv)
			checkUpdate(t, b, inc)
		}
	}
}

func checkUpdate(t *testing.T, b []byte, inc uint16) {
	t.Helper()
	b0, b1 := b[0], b[1]
	b[0], b[1] = 0, 0
	full := Checksum(b, 0)
	b[0], b[1] = b0, b1
	if inc == full {
		return
	}
	// Documented corner: when the data sums to one's-complement zero the
	// update may give the other representation of zero.
	zeroData := true
	for _, c := range b[2:] {
		if c != 0 {
			zeroData = false
		}
	}
	if zeroData && inc == 0 && full == 0xffff {
		return
	}
	t.Fatalf("incremental %#04x, full %#04x, data % x", inc, full, b)
}

func TestDecTTLIncremental(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 20)
	for i := 0; i < 10000; i++ {
		h := IPv4Header{TOS: uint8(r.Uint32()), TTL: uint8(1 + r.IntN(255)), Protocol: uint8(r.Uint32()), ID: uint16(r.Uint32()),
			DF: r.IntN(2) == 0, Src: randAddr4(r), Dst: randAddr4(r)}
		if _, err := BuildIPv4(buf, &h); err != nil {
			t.Fatal(err)
		}
		ip := IPv4(buf)
		ttl := ip.DecTTL()
		if ttl != h.TTL-1 || !ip.ValidChecksum() {
			t.Fatalf("ttl %d valid %v", ttl, ip.ValidChecksum())
		}
		inc := ip.Checksum()
		ip.ComputeChecksum()
		if ip.Checksum() != inc {
			t.Fatalf("DecTTL checksum %#x, recomputed %#x", inc, ip.Checksum())
		}
	}
}

func randAddr4(r *rand.Rand) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	return netip.AddrFrom4(a)
}

func randAddr6(r *rand.Rand) netip.Addr {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:], r.Uint64())
	binary.BigEndian.PutUint64(a[8:], r.Uint64())
	a[0] = 0x20 // keep it out of the IPv4-mapped range
	return netip.AddrFrom16(a)
}

var sink uint32

func benchChecksum(b *testing.B, n int, f func(uint32, []byte) uint32) {
	buf := make([]byte, n+1)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		sink = f(0, buf[:n])
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500, 65000} {
		b.Run(itoa(n), func(b *testing.B) { benchChecksum(b, n, ChecksumAdd) })
	}
}

// BenchmarkChecksumReference is the 2-bytes-per-step RFC 1071 loop, the
// "before" figure for BenchmarkChecksum.
func BenchmarkChecksumReference(b *testing.B) {
	for _, n := range []int{64, 1500, 65000} {
		b.Run(itoa(n), func(b *testing.B) { benchChecksum(b, n, checksumAddSlow) })
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// checksumAddCarry is the first fast version: 8 bytes per step with a
// 64-bit add-with-carry chain (math/bits.Add64). Kept as a benchmark
// reference: its carry chain serialises the adds, which the shipped
// four-accumulator version avoids.
func checksumAddCarry(sum uint32, b []byte) uint32 {
	var acc, c uint64
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
	acc = (acc & 0xffffffff) + (acc >> 32) + c
	if len(b) >= 4 {
		acc += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0])
	}
	for acc > 0xffff {
		acc = (acc & 0xffff) + (acc >> 16)
	}
	r := uint64(sum) + uint64(bits.ReverseBytes16(uint16(acc)))
	return uint32(r&0xffffffff) + uint32(r>>32)
}

// BenchmarkChecksumVariants compares the shipped ChecksumAdd ("4acc"),
// the add-with-carry version ("adc") and the RFC 1071 2-byte loop ("ref").
func BenchmarkChecksumVariants(b *testing.B) {
	for _, v := range []struct {
		name string
		f    func(uint32, []byte) uint32
	}{{"4acc", ChecksumAdd}, {"adc", checksumAddCarry}, {"ref", checksumAddSlow}} {
		for _, n := range []int{64, 1500, 65000} {
			b.Run(v.name+"/"+itoa(n), func(b *testing.B) { benchChecksum(b, n, v.f) })
		}
	}
}
