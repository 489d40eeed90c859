package tcp

import (
	"container/list"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"
)

// FastOpenCookieLen is the length of the server cookies ustack generates
// (like Linux: 8 bytes, one SipHash-2-4 output).
const FastOpenCookieLen = 8

// Cookie returns the TCP Fast Open cookie (RFC 7413) for a client at src
// connecting to this server's address dst, computed like Linux 5.3+:
// SipHash-2-4 keyed by the primary key over the source then destination
// address (4 bytes each for IPv4, including IPv4-mapped IPv6 addresses;
// 16 bytes each for IPv6), serialized little-endian. It does not allocate.
func (k *FastOpenKeys) Cookie(src, dst netip.Addr) [FastOpenCookieLen]byte {
	return fastOpenCookie(&k.Primary, src, dst)
}

func fastOpenCookie(key *[16]byte, src, dst netip.Addr) [FastOpenCookieLen]byte {
	var b [32]byte
	var msg []byte
	s, d := src.Unmap(), dst.Unmap()
	if s.Is4() && d.Is4() {
		s4, d4 := s.As4(), d.As4()
		copy(b[0:4], s4[:])
		copy(b[4:8], d4[:])
		msg = b[:8]
	} else {
		s16, d16 := src.As16(), dst.As16()
		copy(b[0:16], s16[:])
		copy(b[16:32], d16[:])
		msg = b[:32]
	}
	var c [FastOpenCookieLen]byte
	binary.LittleEndian.PutUint64(c[:], SipHash24(key, msg))
	return c
}

// Valid reports whether cookie, received in a SYN from src to dst, is a
// cookie this server issued: one generated with the primary key or, when
// HasBackup is set, with the backup key (key rotation). The comparison is
// constant-time.
func (k *FastOpenKeys) Valid(cookie []byte, src, dst netip.Addr) bool {
	if len(cookie) != FastOpenCookieLen {
		return false
	}
	c := fastOpenCookie(&k.Primary, src, dst)
	if subtle.ConstantTimeCompare(c[:], cookie) == 1 {
		return true
	}
	if k.HasBackup {
		c = fastOpenCookie(&k.Backup, src, dst)
		return subtle.ConstantTimeCompare(c[:], cookie) == 1
	}
	return false
}

// Rotate makes newPrimary the primary key and the old primary the backup,
// so cookies issued just before stay valid until the next rotation.
func (k *FastOpenKeys) Rotate(newPrimary [16]byte) {
	k.Backup = k.Primary
	k.HasBackup = true
	k.Primary = newPrimary
}

// FastOpenEntry is what a FastOpenCache remembers about one server, like
// the Fast Open part of Linux's tcp_metrics.
type FastOpenEntry struct {
	Cookie      [16]byte  // cookie bytes, CookieLen of them valid
	CookieLen   int       // 0: no cookie known
	Exp         bool      // the server used the experimental option (kind 254, 0xF989)
	MSS         uint16    // server's MSS seen last, 0 if unknown
	SynLoss     int       // consecutive Fast Open SYNs (with data) that were lost
	LastSynLoss time.Time // when the last such loss was seen
}

// Bytes returns the cookie as a slice of e's array.
func (e *FastOpenEntry) Bytes() []byte { return e.Cookie[:e.CookieLen] }

// DefaultFastOpenCacheSize is the capacity NewFastOpenCache uses for a
// capacity <= 0.
const DefaultFastOpenCacheSize = 1024

// FastOpenCache is the client-side TCP Fast Open state: cookies per server
// address (an LRU of bounded size), per-server SYN-loss backoff, and the
// stack-wide blackhole detection of net.ipv4.tcp_fastopen_blackhole_timeout_sec.
//
// Per server, as Linux does with its tcp_metrics: each SYN-ACK that neither
// carries a cookie nor acknowledges the SYN data after the SYN was
// retransmitted counts as a SYN loss (Update with synLost); any other
// outcome clears the count. Once two or more losses are recorded, Get
// refuses Fast Open for that server until 60 s << SynLoss after the last
// loss (240 s after the second, 480 s after the third, ...), so the next
// connections use a plain SYN.
//
// Stack-wide: after DisableActive (the engine suspects a middlebox drops
// Fast Open, e.g. a SYN-data connection that then stalls), active Fast Open
// is off for BlackholeTimeout << min(times-1, 6). With BlackholeTimeout 0,
// the Linux default since 5.14, this detection is off.
//
// Not safe for concurrent use; the runtime serializes access.
type FastOpenCache struct {
	// BlackholeTimeout is Config.FastOpenBlackholeTimeout.
	BlackholeTimeout time.Duration

	capacity     int
	ll           list.List // of *fastOpenItem, most recently used first
	m            map[netip.Addr]*list.Element
	disableTimes int
	disableStamp time.Time
}

type fastOpenItem struct {
	server netip.Addr
	e      FastOpenEntry
}

// NewFastOpenCache returns an empty cache holding at most capacity servers
// (DefaultFastOpenCacheSize if capacity <= 0).
func NewFastOpenCache(capacity int, blackholeTimeout time.Duration) *FastOpenCache {
	if capacity <= 0 {
		capacity = DefaultFastOpenCacheSize
	}
	return &FastOpenCache{
		BlackholeTimeout: blackholeTimeout,
		capacity:         capacity,
		m:                make(map[netip.Addr]*list.Element),
	}
}

// Len returns the number of servers remembered.
func (c *FastOpenCache) Len() int { return c.ll.Len() }

func (c *FastOpenCache) item(server netip.Addr, create bool) *fastOpenItem {
	server = server.Unmap()
	if el, ok := c.m[server]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*fastOpenItem)
	}
	if !create {
		return nil
	}
	if c.ll.Len() >= c.capacity {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*fastOpenItem).server)
	}
	it := &fastOpenItem{server: server}
	c.m[server] = c.ll.PushFront(it)
	return it
}

// validCookieLen reports whether n is a legal TFO cookie length (RFC 7413:
// 4 to 16 bytes, even).
func validCookieLen(n int) bool { return n >= 4 && n <= 16 && n%2 == 0 }

// Put records a cookie and MSS from a server's SYN-ACK and clears its SYN
// loss count. A cookie of invalid length (not 4..16 bytes, even) or empty
// keeps the previous cookie; mss 0 keeps the previous MSS.
func (c *FastOpenCache) Put(server netip.Addr, cookie []byte, mss uint16) {
	c.Update(server, cookie, false, mss, false, time.Time{})
}

// Update is Put with the option form (exp: the SYN-ACK used the
// experimental kind 254 option) and the SYN-loss outcome: synLost records
// one more loss at now, otherwise the loss count is cleared.
func (c *FastOpenCache) Update(server netip.Addr, cookie []byte, exp bool, mss uint16, synLost bool, now time.Time) {
	it := c.item(server, true)
	if mss != 0 {
		it.e.MSS = mss
	}
	if validCookieLen(len(cookie)) {
		it.e.CookieLen = copy(it.e.Cookie[:], cookie)
		it.e.Exp = exp
	}
	if synLost {
		it.e.SynLoss++
		it.e.LastSynLoss = now
	} else {
		it.e.SynLoss = 0
	}
}

// Entry returns what is remembered about server, without any policy.
func (c *FastOpenCache) Entry(server netip.Addr) (FastOpenEntry, bool) {
	it := c.item(server, false)
	if it == nil {
		return FastOpenEntry{}, false
	}
	return it.e, true
}

// Remove forgets server.
func (c *FastOpenCache) Remove(server netip.Addr) {
	server = server.Unmap()
	if el, ok := c.m[server]; ok {
		c.ll.Remove(el)
		delete(c.m, server)
	}
}

// Get returns the cookie (a copy) and MSS to use for a Fast Open connection
// to server at now. ok is false when no cookie is known, when server is in
// its SYN-loss backoff, or when active Fast Open is disabled stack-wide; mss
// is returned whenever known.
func (c *FastOpenCache) Get(server netip.Addr, now time.Time) (cookie []byte, mss uint16, ok bool) {
	it := c.item(server, false)
	if it == nil {
		return nil, 0, false
	}
	mss = it.e.MSS
	if it.e.CookieLen == 0 || c.ActiveDisabled(now) || c.inSynLossBackoff(&it.e, now) {
		return nil, mss, false
	}
	return append([]byte(nil), it.e.Bytes()...), mss, true
}

// Allowed reports whether a Fast Open SYN (with a cookie, or a cookie
// request) may be sent to server at now: false while the server is in its
// SYN-loss backoff or active Fast Open is disabled stack-wide.
func (c *FastOpenCache) Allowed(server netip.Addr, now time.Time) bool {
	if c.ActiveDisabled(now) {
		return false
	}
	it := c.item(server, false)
	return it == nil || !c.inSynLossBackoff(&it.e, now)
}

// SynLossBackoffBase is the per-server backoff unit: after n >= 2
// consecutive SYN losses Fast Open is off for SynLossBackoffBase << n.
const SynLossBackoffBase = 60 * time.Second

func (c *FastOpenCache) inSynLossBackoff(e *FastOpenEntry, now time.Time) bool {
	if e.SynLoss <= 1 {
		return false
	}
	n := min(e.SynLoss, 20) // keep the shift sane
	return now.Before(e.LastSynLoss.Add(SynLossBackoffBase << uint(n)))
}

// DisableActive records a suspected Fast Open blackhole at now (Linux
// tcp_fastopen_active_disable). It has no effect while BlackholeTimeout is 0.
func (c *FastOpenCache) DisableActive(now time.Time) {
	c.disableTimes++
	c.disableStamp = now
}

// ResetBlackhole clears the blackhole state, after a Fast Open connection
// worked end to end.
func (c *FastOpenCache) ResetBlackhole() { c.disableTimes = 0 }

// ActiveDisabled reports whether active Fast Open is disabled stack-wide at
// now: BlackholeTimeout non-zero, DisableActive called n >= 1 times, and now
// before the last call plus BlackholeTimeout << min(n-1, 6).
func (c *FastOpenCache) ActiveDisabled(now time.Time) bool {
	if c.BlackholeTimeout <= 0 || c.disableTimes == 0 {
		return false
	}
	mult := min(c.disableTimes-1, 6)
	return now.Before(c.disableStamp.Add(c.BlackholeTimeout << uint(mult)))
}
