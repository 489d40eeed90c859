package ustack

import (
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
)

// fastOpen is the stack's TCP Fast Open state: the client cookie cache and
// the server keys.
type fastOpen struct {
	mu    sync.Mutex // guards cache and keys
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

// FastOpenKeys returns the server's TCP Fast Open keys: the primary key
// that makes new cookies and, after a rotation, the backup key whose
// cookies are still accepted.
func (s *Stack) FastOpenKeys() tcp.FastOpenKeys {
	t := s.tcp
	t.tfo.mu.Lock()
	defer t.tfo.mu.Unlock()
	return t.tfo.keys
}

// SetFastOpenKeys replaces the server's TCP Fast Open keys, like writing
// net.ipv4.tcp_fastopen_key ("primary,backup"). A zero primary key is
// replaced by a random one.
func (s *Stack) SetFastOpenKeys(k tcp.FastOpenKeys) {
	if k.Primary == ([16]byte{}) {
		rand.Read(k.Primary[:])
	}
	t := s.tcp
	t.tfo.mu.Lock()
	t.tfo.keys = k
	t.tfo.mu.Unlock()
}

// RotateFastOpenKey makes newPrimary the key for new cookies and keeps the
// old primary as the backup key, so cookies granted before the rotation
// stay valid until the next one (clients that present them get a fresh
// cookie in the SYN-ACK).
func (s *Stack) RotateFastOpenKey(newPrimary [16]byte) {
	t := s.tcp
	t.tfo.mu.Lock()
	t.tfo.keys.Rotate(newPrimary)
	t.tfo.mu.Unlock()
}

// clientCookie returns what a Fast Open SYN to server carries: the cached
// cookie, or nil for a cookie request; ok is false when Fast Open must not
// be used (tcp_fastopen bit 0x1 off, or SYN-loss backoff / blackhole). mss
// is the server's MSS remembered from an earlier connection (0: unknown).
func (t *tcpState) clientCookie(server netip.Addr, now time.Time) (cookie []byte, exp bool, mss uint16, ok bool) {
	if t.cfg.FastOpen&tcp.FastOpenClient == 0 {
		return nil, false, 0, false
	}
	t.tfo.mu.Lock()
	defer t.tfo.mu.Unlock()
	if !t.tfo.cache.Allowed(server, now) {
		return nil, false, 0, false
	}
	ck, mss, _ := t.tfo.cache.Get(server, now)
	if e, found := t.tfo.cache.Entry(server); found && len(ck) > 0 {
		exp = e.Exp
	}
	return ck, exp, mss, true
}

// listener Fast Open queue (Linux fastopenq): how many connections that
// were opened by a Fast Open SYN still wait for their handshake to end.

// fastOpenQueueCheck is Linux tcp_fastopen_queue_check: Fast Open is
// possible on l only if its queue limit is set and not reached; reaching
// it counts TCPFastOpenListenOverflow.
func (t *tcpState) fastOpenQueueCheck(l *listener) bool {
	max := l.tfoMax.Load()
	if max <= 0 {
		return false
	}
	if l.tfoQ.Load() >= max {
		t.s.ctr.tcp.FastOpenListenOverflow.Add(1)
		return false
	}
	return true
}

// serverFastOpen decides what a listener does with the Fast Open part of a
// SYN, as Linux tcp_try_fastopen: it counts cookie requests, grants a
// cookie in the SYN-ACK when asked (or when the presented one is invalid or
// made with the backup key), and reports whether the SYN's data (if any)
// is accepted before the handshake ends: a valid cookie, or no cookie
// needed (tcp_fastopen 0x200), on a listener with Fast Open enabled whose
// Fast Open queue has room. Counts TCPFastOpenCookieReqd, Passive,
// PassiveFail and ListenOverflow.
func (t *tcpState) serverFastOpen(l *listener, tc *tcp.Conn, tu tcp.Tuple, syn *tcp.Segment) (accept bool) {
	o := &syn.Options
	ctr := &t.s.ctr.tcp
	if o.HasFastOpen && o.CookieLen == 0 {
		ctr.FastOpenCookieReqd.Add(1)
	}
	if t.cfg.FastOpen&tcp.FastOpenServer == 0 || !(len(syn.Payload) > 0 || o.HasFastOpen) || !t.fastOpenQueueCheck(l) {
		return false
	}
	if t.cfg.FastOpen&tcp.FastOpenServerNoCookie != 0 {
		ctr.FastOpenPassive.Add(1)
		return true
	}
	remote, local := tu.Remote.Addr(), tu.Local.Addr()
	t.tfo.mu.Lock()
	keys := t.tfo.keys
	t.tfo.mu.Unlock()
	if !o.HasFastOpen {
		return false
	}
	if o.CookieLen == 0 {
		ck := keys.Cookie(remote, local)
		tc.SetFastOpenCookie(ck[:])
		return false
	}
	got := o.Cookie[:o.CookieLen]
	primary := keys.Cookie(remote, local)
	primaryOnly := tcp.FastOpenKeys{Primary: keys.Primary}
	switch {
	case primaryOnly.Valid(got, remote, local):
		ctr.FastOpenPassive.Add(1)
		return true
	case keys.Valid(got, remote, local):
		// Made with the backup key: accept, and hand out a cookie of
		// the current primary key (Linux TCPFastOpenPassiveAltKey).
		tc.SetFastOpenCookie(primary[:])
		ctr.FastOpenPassive.Add(1)
		return true
	default:
		ctr.FastOpenPassiveFail.Add(1)
		tc.SetFastOpenCookie(primary[:])
		return false
	}
}

// SetFastOpen enables TCP Fast Open on this listener, like setsockopt
// TCP_FASTOPEN: qlen > 0 (with net.ipv4.tcp_fastopen bit 0x2) grants
// cookies to SYNs that ask for one and accepts data in SYNs that carry a
// valid cookie, while at most qlen such connections wait for the end of
// their handshake (beyond that, SYNs get a normal handshake and
// TCPFastOpenListenOverflow counts them). qlen 0 disables Fast Open on the
// listener; with tcp_fastopen bit 0x400 every listener starts with qlen
// equal to its backlog.
func (tl *TCPListener) SetFastOpen(qlen int) error {
	if qlen < 0 {
		return &net.OpError{Op: "setsockopt", Net: "tcp", Addr: tl.l.addr, Err: os.NewSyscallError("setsockopt", syscall.EINVAL)}
	}
	tl.l.tfoMax.Store(int32(min(qlen, 1<<30)))
	return nil
}
