package tcp

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func synCookieTestKeys() *SynCookieKeys {
	return &SynCookieKeys{*isnTestKey(11), *isnTestKey(12)}
}

func TestSynCookieRoundTrip(t *testing.T) {
	keys := synCookieTestKeys()
	t0 := time.Unix(64*1_000_000, 0) // start of an epoch
	v4 := isnTuple(80, 51000)
	v6 := Tuple{Local: netip.MustParseAddrPort("[2001:db8::1]:443"), Remote: netip.MustParseAddrPort("[2001:db8::2]:40000")}
	cases := []struct {
		tu       Tuple
		mss, enc uint16
	}{
		{v4, 1460, 1460}, {v4, 9000, 1460}, {v4, 1459, 1440}, {v4, 1300, 1300}, {v4, 1000, 536}, {v4, 536, 536}, {v4, 100, 536},
		{v6, 1440, 1440}, {v6, 8960, 8940}, {v6, 1430, 1420}, {v6, 1220, 1220}, {v6, 1000, 1220},
	}
	for _, c := range cases {
		for _, cisn := range []uint32{0, 1, 0x7fffffff, 0xffffffff} {
			iss, enc := SynCookieISN(keys, c.tu, cisn, c.mss, t0)
			if enc != c.enc {
				t.Fatalf("mss %d encoded as %d, want %d", c.mss, enc, c.enc)
			}
			for _, later := range []time.Duration{0, 63 * time.Second, 127 * time.Second} {
				mss, ok := CheckSynCookie(keys, c.tu, iss+1, cisn, t0.Add(later))
				if !ok || mss != c.enc {
					t.Fatalf("tuple %v mss %d isn %d after %v: got %d %v", c.tu, c.mss, cisn, later, mss, ok)
				}
			}
		}
	}
}

func TestSynCookieRejects(t *testing.T) {
	keys := synCookieTestKeys()
	t0 := time.Unix(64*1_000_000, 0)
	tu := isnTuple(80, 51000)
	const cisn = 123456789
	iss, _ := SynCookieISN(keys, tu, cisn, 1460, t0)
	if _, ok := CheckSynCookie(keys, tu, iss+1, cisn, t0.Add(128*time.Second)); ok {
		t.Error("cookie two epochs old accepted")
	}
	if _, ok := CheckSynCookie(keys, tu, iss+1, cisn, t0.Add(-time.Second)); ok {
		t.Error("cookie from the future accepted")
	}
	// An error of d < 4 in ack or client ISN only shifts the MSS index (as
	// in Linux: forging that needs the valid cookie already); larger errors
	// are rejected.
	if mss, ok := CheckSynCookie(keys, tu, iss, cisn, t0); !ok || mss != 1440 {
		t.Errorf("ack one below: %d %v", mss, ok)
	}
	for _, d := range []uint32{4, 5, 1000, 1 << 23, 1 << 24, 1 << 31} {
		if _, ok := CheckSynCookie(keys, tu, iss+1-d, cisn, t0); ok {
			t.Errorf("ack off by -%d accepted", d)
		}
		if _, ok := CheckSynCookie(keys, tu, iss+1, cisn+d, t0); ok {
			t.Errorf("client ISN off by %d accepted", d)
		}
	}
	if _, ok := CheckSynCookie(keys, isnTuple(80, 51001), iss+1, cisn, t0); ok {
		t.Error("other port accepted")
	}
	other := synCookieTestKeys()
	other[1][0] ^= 1
	if _, ok := CheckSynCookie(other, tu, iss+1, cisn, t0); ok {
		t.Error("other key accepted")
	}
	// Consecutive cookies for the same tuple and client ISN change with the
	// epoch, and cookies of neighbouring tuples look unrelated.
	iss2, _ := SynCookieISN(keys, tu, cisn, 1460, t0.Add(64*time.Second))
	if iss2 == iss {
		t.Error("cookie does not change with the epoch")
	}
	// Random ACKs: expect about 2*4/2^24 acceptance per try.
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 200000 {
		if _, ok := CheckSynCookie(keys, tu, rng.Uint32(), cisn, t0); ok {
			accepted++
		}
	}
	if accepted > 2 {
		t.Errorf("%d of 200000 random ACKs accepted", accepted)
	}
}

func TestSynCookieNoAlloc(t *testing.T) {
	keys := synCookieTestKeys()
	tu := isnTuple(80, 1)
	now := time.Unix(1e9, 0)
	if n := testing.AllocsPerRun(100, func() {
		iss, _ := SynCookieISN(keys, tu, 5, 1460, now)
		CheckSynCookie(keys, tu, iss+1, 5, now)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestSynCookieTS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ECN = 1
	for _, tsval := range []uint32{0x12345678, 0x1234567f, 0x12345640, 64, 0xffffffff} {
		for w := 0; w <= 15; w++ {
			for bitsv := 0; bitsv < 4; bitsv++ {
				in := SynCookieOptions{WScale: uint8(w), WScaleOK: w <= 14, SACKOK: bitsv&1 != 0, ECNOK: bitsv&2 != 0}
				if !in.WScaleOK {
					in.WScale = 0
				}
				ts := SynCookieTSVal(tsval, in)
				if ts > tsval || tsval-ts >= 64 {
					t.Fatalf("TSval %#x -> %#x not within 64 below", tsval, ts)
				}
				out, ok := DecodeSynCookieTS(ts, &cfg)
				if !ok || out != in {
					t.Fatalf("options %+v -> tsval %#x -> %+v %v", in, ts, out, ok)
				}
			}
		}
	}
	sack := SynCookieTSVal(1000, SynCookieOptions{SACKOK: true, WScale: 7, WScaleOK: true, ECNOK: true})
	// The low bits are the option encoding: wscale 7 | SACK 0x10 | ECN 0x20.
	if sack&63 != 0x37 {
		t.Fatalf("encoding %#x", sack&63)
	}
	noSack := DefaultConfig()
	noSack.SACK = false
	if _, ok := DecodeSynCookieTS(sack, &noSack); ok {
		t.Error("SACK cookie accepted with SACK disabled")
	}
	noWS := DefaultConfig()
	noWS.WindowScaling = false
	if _, ok := DecodeSynCookieTS(sack&^0x10, &noWS); ok {
		t.Error("wscale cookie accepted with window scaling disabled")
	}
	noTS := DefaultConfig()
	noTS.Timestamps = 0
	if _, ok := DecodeSynCookieTS(sack, &noTS); ok {
		t.Error("timestamp cookie accepted with timestamps disabled")
	}
	noECN := DefaultConfig()
	noECN.ECN = 0
	if o, ok := DecodeSynCookieTS(sack&^0x10, &noECN); !ok || o.ECNOK {
		t.Errorf("ECN with tcp_ecn=0: %+v %v", o, ok)
	}
}

func BenchmarkSynCookieCheck(b *testing.B) {
	keys := synCookieTestKeys()
	tu := isnTuple(80, 1)
	now := time.Unix(1e9, 0)
	iss, _ := SynCookieISN(keys, tu, 5, 1460, now)
	for b.Loop() {
		CheckSynCookie(keys, tu, iss+1, 5, now)
	}
}
