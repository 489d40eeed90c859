package tcp

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func isnTestKey(seed byte) *[16]byte {
	var k [16]byte
	for i := range k {
		k[i] = seed + byte(i)*37
	}
	return &k
}

func isnTuple(lport, rport uint16) Tuple {
	return Tuple{
		Local:  netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), lport),
		Remote: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), rport),
	}
}

func TestISNClock(t *testing.T) {
	k := isnTestKey(1)
	tu := isnTuple(40000, 80)
	t0 := time.Unix(1_700_000_000, 0)
	a := ISN(k, tu, t0)
	if ISN(k, tu, t0) != a {
		t.Fatal("ISN not deterministic")
	}
	// 1 ms = 15625 ticks of 64 ns.
	if d := ISN(k, tu, t0.Add(time.Millisecond)) - a; d != 15625 {
		t.Fatalf("ISN advanced by %d in 1 ms, want 15625", d)
	}
	if d := ISN(k, tu, t0.Add(63*time.Nanosecond)) - a; d != 0 {
		t.Fatalf("ISN advanced by %d within one tick", d)
	}
	// Wraps after 2^32 ticks.
	if d := ISN(k, tu, t0.Add(ISNTick<<32)) - a; d != 0 {
		t.Fatalf("ISN after full wrap differs by %d", d)
	}
}

func TestISNSecretOffset(t *testing.T) {
	k := isnTestKey(1)
	t0 := time.Unix(1_700_000_000, 0)
	// Same instant, neighbouring tuples: the differences must look random,
	// not constant or small.
	var prev uint32
	diffs := map[uint32]bool{}
	var hist [16]int
	const n = 4096
	for p := uint16(0); p < n; p++ {
		v := ISN(k, isnTuple(30000+p, 443), t0)
		hist[v>>28]++
		if p > 0 {
			diffs[v-prev] = true
		}
		prev = v
	}
	if len(diffs) < n-10 {
		t.Fatalf("only %d distinct differences between consecutive ISNs", len(diffs))
	}
	for i, c := range hist {
		// expected 256 per bucket; 5 sigma is about 80
		if c < 150 || c > 362 {
			t.Fatalf("ISN top nibble %x seen %d times of %d: %v", i, c, n, hist)
		}
	}
	// Key and every tuple field matter.
	base := ISN(k, isnTuple(1, 2), t0)
	if ISN(isnTestKey(2), isnTuple(1, 2), t0) == base {
		t.Error("key ignored")
	}
	if ISN(k, isnTuple(2, 1), t0) == base {
		t.Error("port order ignored")
	}
	sw := isnTuple(1, 2)
	sw.Local, sw.Remote = netip.AddrPortFrom(sw.Remote.Addr(), 1), netip.AddrPortFrom(sw.Local.Addr(), 2)
	if ISN(k, sw, t0) == base {
		t.Error("address order ignored")
	}
	v6 := Tuple{Local: netip.MustParseAddrPort("[2001:db8::1]:1"), Remote: netip.MustParseAddrPort("[2001:db8::2]:2")}
	if ISN(k, v6, t0) == base {
		t.Error("v6 equals v4")
	}
	if n := testing.AllocsPerRun(100, func() { ISN(k, v6, t0) }); n != 0 {
		t.Errorf("ISN allocates %v", n)
	}
}

func TestTSOffset(t *testing.T) {
	k := isnTestKey(9)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if TSOffset(k, a, b) != TSOffset(k, a, b) {
		t.Fatal("not deterministic")
	}
	if TSOffset(k, a, b) == TSOffset(k, b, a) || TSOffset(k, a, b) == TSOffset(isnTestKey(10), a, b) {
		t.Fatal("offset ignores direction or key")
	}
}

func TestPortAllocatorRangeAndExhaustion(t *testing.T) {
	pa, err := NewPortAllocator(isnTestKey(3), [2]int{50000, 50009})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := pa.Range(); lo != 50000 || hi != 50009 {
		t.Fatalf("range %d..%d", lo, hi)
	}
	used := map[uint16]bool{}
	tu := isnTuple(0, 80)
	for i := 0; i < 10; i++ {
		p, err := pa.Next(tu, func(p uint16) bool { return used[p] })
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if p < 50000 || p > 50009 || used[p] {
			t.Fatalf("allocation %d gave %d (used %v)", i, p, used)
		}
		used[p] = true
	}
	_, err = pa.Next(tu, func(p uint16) bool { return used[p] })
	if !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("exhausted range: %v", err)
	}
	for _, bad := range [][2]int{{0, 10}, {10, 9}, {1, 65536}} {
		if _, err := NewPortAllocator(isnTestKey(3), bad); err == nil {
			t.Errorf("range %v accepted", bad)
		}
	}
	// A single-port range works.
	one, _ := NewPortAllocator(isnTestKey(3), [2]int{7, 7})
	if p, err := one.Next(tu, nil); p != 7 || err != nil {
		t.Fatalf("single port: %d %v", p, err)
	}
}

func TestPortAllocatorUnpredictable(t *testing.T) {
	cfg := DefaultConfig()
	pa, err := NewPortAllocator(isnTestKey(4), cfg.IPLocalPortRange)
	if err != nil {
		t.Fatal(err)
	}
	// Same destination: ports advance, by irregular small steps.
	tu := isnTuple(0, 443)
	steps := map[int]bool{}
	prev, _ := pa.Next(tu, nil)
	for range 200 {
		p, err := pa.Next(tu, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := (int(p) - int(prev) + 28232) % 28232
		if d < 1 || d > 8 {
			t.Fatalf("same-destination step %d (%d -> %d)", d, prev, p)
		}
		steps[d] = true
		prev = p
	}
	if len(steps) < 4 {
		t.Fatalf("steps not varied: %v", steps)
	}
	// Different destinations: starting points spread over the range.
	var hist [8]int
	const n = 4000
	for i := range n {
		dst := isnTuple(0, uint16(1000+i))
		p, err := pa.Next(dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p < 32768 || p > 60999 {
			t.Fatalf("port %d out of range", p)
		}
		hist[(int(p)-32768)*8/28232]++
	}
	for i, c := range hist {
		if c < 380 || c > 620 { // expected 500
			t.Fatalf("bucket %d has %d of %d: %v", i, c, n, hist)
		}
	}
	// Another key gives other ports.
	pb, _ := NewPortAllocator(isnTestKey(5), cfg.IPLocalPortRange)
	same := 0
	for i := range 100 {
		dst := isnTuple(0, uint16(i+1))
		pa2, _ := NewPortAllocator(isnTestKey(4), cfg.IPLocalPortRange)
		x, _ := pa2.Next(dst, nil)
		y, _ := pb.Next(dst, nil)
		if x == y {
			same++
		}
	}
	if same > 3 {
		t.Fatalf("%d of 100 ports equal under different keys", same)
	}
}

func BenchmarkISN(b *testing.B) {
	k := isnTestKey(1)
	tu := isnTuple(40000, 80)
	now := time.Unix(1_700_000_000, 0)
	for b.Loop() {
		_ = ISN(k, tu, now)
	}
}

func BenchmarkPortAllocatorNext(b *testing.B) {
	pa, _ := NewPortAllocator(isnTestKey(1), [2]int{32768, 60999})
	tu := isnTuple(0, 80)
	for b.Loop() {
		_, _ = pa.Next(tu, nil)
	}
}
