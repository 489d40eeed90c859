package ustack

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"time"

	"github.com/ustack/ustack/tcp"
)

// fastOpen is the stack's TCP Fast Open state: the client cookie cache and
// the server key.
type fastOpen struct {
	mu    sync.Mutex // guards cache
	cache *tcp.FastOpenCache
	keys  tcp.FastOpenKeys
}

func (t *tcpState) initFastOpen() {
	t.tfo.cache = tcp.NewFastOpenCache(tcp.DefaultFastOpenCacheSize, t.cfg.FastOpenBlackholeTimeout)
	t.tfo.keys = t.cfg.FastOpenKey
	if t.tfo.keys.IsZero() {
		rand.Read(t.tfo.keys.Primary[:]) // Linux also picks a random key
	}
}

// clientCookie returns what a Fast Open SYN to server carries: the cached
// cookie, or an empty cookie request; ok is false when Fast Open must not
// be used (tcp_fastopen bit 0x1 off, or SYN-loss backoff / blackhole).
func (t *tcpState) clientCookie(server netip.Addr, now time.Time) (cookie []byte, ok bool) {
	if t.cfg.FastOpen&tcp.FastOpenClient == 0 {
		return nil, false
	}
	t.tfo.mu.Lock()
	defer t.tfo.mu.Unlock()
	if !t.tfo.cache.Allowed(server, now) {
		return nil, false
	}
	ck, _, _ := t.tfo.cache.Get(server, now)
	return ck, true
}

// learnCookie caches the cookie a server returned in its SYN-ACK.
func (t *tcpState) learnCookie(server netip.Addr, ck []byte, mss int) {
	if len(ck) == 0 {
		return
	}
	t.tfo.mu.Lock()
	t.tfo.cache.Put(server, ck, uint16(mss))
	t.tfo.mu.Unlock()
}

// grantCookie puts a cookie in the SYN-ACK of tc when the SYN asked for one
// and the listener does Fast Open (tcp_fastopen 0x2 with SetFastOpen, or
// 0x400 for all listeners). A SYN with a valid cookie is counted in
// TCPFastOpenPassive.
func (t *tcpState) grantCookie(l *listener, tc *tcp.Conn, tu tcp.Tuple, syn *tcp.Segment) {
	o := &syn.Options
	if !o.HasFastOpen || t.cfg.FastOpen&tcp.FastOpenServer == 0 {
		return
	}
	if !l.fastOpen.Load() && t.cfg.FastOpen&tcp.FastOpenServerAllListeners == 0 {
		return
	}
	remote, local := tu.Remote.Addr(), tu.Local.Addr()
	if o.CookieLen == 0 {
		ck := t.tfo.keys.Cookie(remote, local)
		tc.SetFastOpenCookie(ck[:])
		return
	}
	if t.tfo.keys.Valid(o.Cookie[:o.CookieLen], remote, local) {
		t.s.ctr.tcp.FastOpenCookieOK.Add(1)
	} else {
		// A wrong cookie: answer with a fresh one so the client updates.
		ck := t.tfo.keys.Cookie(remote, local)
		tc.SetFastOpenCookie(ck[:])
	}
}

// SetFastOpen turns TCP Fast Open on for this listener (setsockopt
// TCP_FASTOPEN): with net.ipv4.tcp_fastopen bit 0x2 it grants cookies to
// SYNs that ask for one. Bit 0x400 enables it on every listener.
func (tl *TCPListener) SetFastOpen(on bool) {
	tl.l.fastOpen.Store(on)
}
