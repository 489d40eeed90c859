package tcp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

func TestFastOpenCookie(t *testing.T) {
	var k FastOpenKeys
	k.Primary = *sipTestKey()
	cli, srv := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")
	c := k.Cookie(cli, srv)
	// Definition: SipHash-2-4 over src||dst (4 bytes each), little-endian.
	want := SipHash24(&k.Primary, []byte{192, 0, 2, 1, 198, 51, 100, 7})
	if binary.LittleEndian.Uint64(c[:]) != want {
		t.Fatalf("cookie % x, want %016x", c, want)
	}
	// v4-mapped addresses give the v4 cookie.
	if k.Cookie(netip.AddrFrom16(cli.As16()), srv) != c {
		t.Error("v4-mapped client differs")
	}
	if k.Cookie(srv, cli) == c {
		t.Error("direction ignored")
	}
	c6a, c6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	c6 := k.Cookie(c6a, c6b)
	s6, d6 := c6a.As16(), c6b.As16()
	if binary.LittleEndian.Uint64(c6[:]) != SipHash24(&k.Primary, append(s6[:], d6[:]...)) {
		t.Error("v6 cookie definition")
	}
	if !k.Valid(c[:], cli, srv) || !k.Valid(c6[:], c6a, c6b) {
		t.Fatal("own cookie rejected")
	}
	forged := c
	forged[3] ^= 0x40
	if k.Valid(forged[:], cli, srv) || k.Valid(c[:], netip.MustParseAddr("192.0.2.2"), srv) ||
		k.Valid(c[:4], cli, srv) || k.Valid(nil, cli, srv) || k.Valid(append(c[:], 0, 0), cli, srv) {
		t.Fatal("bad cookie accepted")
	}
	if n := testing.AllocsPerRun(100, func() { k.Valid(c6[:], c6a, c6b) }); n != 0 {
		t.Errorf("Valid allocates %v", n)
	}
}

func TestFastOpenKeyRotation(t *testing.T) {
	var k FastOpenKeys
	k.Primary = *isnTestKey(1)
	cli, srv := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.1.1.2")
	old := k.Cookie(cli, srv)
	k.Rotate(*isnTestKey(2))
	if !k.Valid(old[:], cli, srv) {
		t.Fatal("cookie from the previous key rejected after one rotation")
	}
	cur := k.Cookie(cli, srv)
	if cur == old || !k.Valid(cur[:], cli, srv) {
		t.Fatal("new primary cookie")
	}
	k.Rotate(*isnTestKey(3))
	if k.Valid(old[:], cli, srv) {
		t.Fatal("cookie two keys old accepted")
	}
	// A key set through the sysctl validates the same way.
	cfg := DefaultConfig()
	if err := cfg.Set("net.ipv4.tcp_fastopen_key", formatFastOpenKeys(&k)); err != nil || cfg.FastOpenKey != k {
		t.Fatalf("sysctl key round trip: %v", err)
	}
}

func TestFastOpenCachePutGetLRU(t *testing.T) {
	now := time.Unix(5000, 0)
	c := NewFastOpenCache(2, 0)
	a, b, d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	if _, _, ok := c.Get(a, now); ok {
		t.Fatal("empty cache hit")
	}
	c.Put(a, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 1460)
	c.Put(b, nil, 1400) // MSS only
	ck, mss, ok := c.Get(a, now)
	if !ok || mss != 1460 || !bytes.Equal(ck, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("get a: % x %d %v", ck, mss, ok)
	}
	ck[0] = 99 // a copy
	if _, mss, ok := c.Get(b, now); ok || mss != 1400 {
		t.Fatalf("get b without cookie: %d %v", mss, ok)
	}
	// Odd or too long cookies are ignored; empty keeps the old one.
	c.Put(a, []byte{1, 2, 3}, 0)
	c.Put(a, make([]byte, 18), 0)
	c.Put(a, nil, 0)
	if e, _ := c.Entry(a); !bytes.Equal(e.Bytes(), []byte{1, 2, 3, 4, 5, 6, 7, 8}) || e.MSS != 1460 {
		t.Fatalf("entry changed: %+v", e)
	}
	// a was used last, so adding d evicts b.
	c.Get(a, now)
	c.Put(d, []byte{9, 9, 9, 9}, 0)
	if c.Len() != 2 {
		t.Fatalf("len %d", c.Len())
	}
	if _, ok := c.Entry(b); ok {
		t.Fatal("LRU victim b still present")
	}
	if _, ok := c.Entry(a); !ok {
		t.Fatal("recently used a evicted")
	}
	// Mapped and plain forms are the same server.
	if _, ok := c.Entry(netip.AddrFrom16(d.As16())); !ok {
		t.Fatal("v4-mapped lookup")
	}
	c.Update(d, []byte{1, 2, 3, 4, 5, 6}, true, 0, false, now)
	if e, _ := c.Entry(d); !e.Exp || e.CookieLen != 6 {
		t.Fatalf("exp update %+v", e)
	}
	c.Remove(d)
	if c.Len() != 1 {
		t.Fatal("remove")
	}
}

func TestFastOpenCacheSynLossBackoff(t *testing.T) {
	t0 := time.Unix(10000, 0)
	c := NewFastOpenCache(0, 0)
	s := netip.MustParseAddr("203.0.113.9")
	c.Put(s, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0)
	c.Update(s, nil, false, 0, true, t0)
	if _, _, ok := c.Get(s, t0); !ok {
		t.Fatal("one loss already disables TFO")
	}
	t1 := t0.Add(time.Second)
	c.Update(s, nil, false, 0, true, t1) // second loss: off for 60 s << 2
	if _, _, ok := c.Get(s, t1.Add(240*time.Second-1)); ok || c.Allowed(s, t1) {
		t.Fatal("TFO used during backoff")
	}
	if _, _, ok := c.Get(s, t1.Add(240*time.Second)); !ok {
		t.Fatal("TFO still off after 240 s")
	}
	c.Update(s, nil, false, 0, true, t1) // third: 480 s
	if c.Allowed(s, t1.Add(479*time.Second)) || !c.Allowed(s, t1.Add(480*time.Second)) {
		t.Fatal("third-loss backoff")
	}
	c.Put(s, nil, 0) // success clears
	if _, _, ok := c.Get(s, t1); !ok {
		t.Fatal("success did not clear the loss count")
	}
	if !c.Allowed(netip.MustParseAddr("203.0.113.10"), t1) {
		t.Fatal("unknown server not allowed to request a cookie")
	}
}

func TestFastOpenCacheBlackhole(t *testing.T) {
	t0 := time.Unix(20000, 0)
	s := netip.MustParseAddr("203.0.113.9")
	off := NewFastOpenCache(0, 0) // Linux default: detection off
	off.Put(s, []byte{1, 2, 3, 4}, 0)
	off.DisableActive(t0)
	if off.ActiveDisabled(t0) || !off.Allowed(s, t0) {
		t.Fatal("blackhole timeout 0 must not disable")
	}
	c := NewFastOpenCache(0, time.Hour)
	c.Put(s, []byte{1, 2, 3, 4}, 0)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 64}
	for i, w := range want {
		c.DisableActive(t0)
		until := t0.Add(w * time.Hour)
		if !c.ActiveDisabled(until.Add(-1)) || c.ActiveDisabled(until) {
			t.Fatalf("disable #%d: want %d h", i+1, w)
		}
		if _, _, ok := c.Get(s, t0); ok {
			t.Fatal("Get ignores blackhole")
		}
	}
	c.ResetBlackhole()
	if c.ActiveDisabled(t0) {
		t.Fatal("reset")
	}
}
