package ustack

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
)

// listenKey identifies a listening socket: an address (the unspecified
// address of the family for a wildcard) and a port.
type listenKey struct {
	addr netip.Addr
	port uint16
}

// listenerFor finds the listener for a local address: exact address first,
// then the wildcard of its family.
func (t *tcpState) listenerFor(local netip.AddrPort) *listener {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.listeners) == 0 {
		return nil
	}
	if l := t.listeners[listenKey{local.Addr(), local.Port()}]; l != nil {
		return l
	}
	any := netip.IPv4Unspecified()
	if local.Addr().Is6() {
		any = netip.IPv6Unspecified()
	}
	return t.listeners[listenKey{any, local.Port()}]
}

// TCPListener is a ustack TCP listener; it implements net.Listener.
type TCPListener struct{ l *listener }

type listener struct {
	t       *tcpState
	keys    []listenKey
	addr    *net.TCPAddr
	backlog int
	maxSynq int32
	synq    atomic.Int32 // half-open connections (SYN-RECEIVED)
	// lastCookie is when a SYN cookie was last sent (Unix ns, 0 = never).
	lastCookie atomic.Int64
	tfoMax     atomic.Int32 // TCP_FASTOPEN queue length (0: Fast Open off)
	tfoQ       atomic.Int32 // Fast Open connections still in their handshake
	acceptq    chan *endpoint
	done       chan struct{}

	mu     sync.Mutex // guards closed and sends on acceptq
	closed bool
	dl     deadline
}

var _ net.Listener = (*TCPListener)(nil)

// Listen announces on the local address. network is "tcp", "tcp4" or
// "tcp6"; address is "host:port" with a literal IP host, or ":port" for
// every address ("tcp" then listens on IPv4 and IPv6). Port 0 picks an
// ephemeral port. The accept backlog is net.core.somaxconn.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	l, err := s.ListenTCP(network, address)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenTCP is Listen returning the concrete type.
func (s *Stack) ListenTCP(network, address string) (*TCPListener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Err: err}
	}
	fam, err := parseNetwork(network)
	if err != nil {
		return nil, opErr(err)
	}
	ap, wildcard, err := parseHostPort(address, fam, true)
	if err != nil {
		return nil, opErr(err)
	}
	t := s.tcp
	var addrs []netip.Addr
	switch {
	case wildcard && ap.Addr().IsValid() && !(fam == 0 && ap.Addr().Is6()):
		addrs = []netip.Addr{ap.Addr()} // "0.0.0.0:p" is IPv4 only
	case !wildcard:
		if _, ok := s.table.Load().local[ap.Addr()]; !ok {
			return nil, opErr(os.NewSyscallError("bind", syscall.EADDRNOTAVAIL))
		}
		addrs = []netip.Addr{ap.Addr()}
	case fam == 4:
		addrs = []netip.Addr{netip.IPv4Unspecified()}
	case fam == 6:
		addrs = []netip.Addr{netip.IPv6Unspecified()}
	default:
		addrs = []netip.Addr{netip.IPv6Unspecified(), netip.IPv4Unspecified()}
	}
	backlog := t.cfg.Somaxconn
	if backlog <= 0 {
		backlog = 4096
	}
	maxSynq := min(backlog, t.cfg.MaxSynBacklog)
	if maxSynq <= 0 {
		maxSynq = backlog
	}
	l := &listener{
		t:       t,
		backlog: backlog,
		maxSynq: int32(maxSynq),
		acceptq: make(chan *endpoint, backlog),
		done:    make(chan struct{}),
	}

	if t.cfg.FastOpen&(tcp.FastOpenServer|tcp.FastOpenServerAllListeners) == tcp.FastOpenServer|tcp.FastOpenServerAllListeners {
		l.tfoMax.Store(int32(backlog)) // tcp_fastopen 0x400: TFO without the socket option
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, opErr(net.ErrClosed)
	}
	port := ap.Port()
	if port == 0 {
		port = t.freeListenPortLocked(addrs)
		if port == 0 {
			return nil, opErr(os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
	}
	for _, a := range addrs {
		if t.portBusyLocked(a, port) {
			return nil, opErr(os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
	}
	for _, a := range addrs {
		k := listenKey{a, port}
		l.keys = append(l.keys, k)
		t.listeners[k] = l
	}
	l.addr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(addrs[0], port))
	return &TCPListener{l: l}, nil
}

// portBusyLocked reports whether a listener on (a, port) would conflict
// with an existing one: same port, and same address or either a wildcard
// of the same family.
func (t *tcpState) portBusyLocked(a netip.Addr, port uint16) bool {
	for k := range t.listeners {
		if k.port != port || k.addr.Is4() != a.Is4() {
			continue
		}
		if k.addr == a || k.addr.IsUnspecified() || a.IsUnspecified() {
			return true
		}
	}
	return false
}

func (t *tcpState) freeListenPortLocked(addrs []netip.Addr) uint16 {
	lo, hi := t.portRange()
	n := hi - lo + 1
	start := int(rand.Uint32N(uint32(n)))
	for i := 0; i < n; i++ {
		port := uint16(lo + (start+i)%n)
		busy := false
		for _, a := range addrs {
			if t.portBusyLocked(a, port) || t.portUsedByConnLocked(port) {
				busy = true
				break
			}
		}
		if !busy {
			return port
		}
	}
	return 0
}

func (t *tcpState) portUsedByConnLocked(port uint16) bool {
	for tu := range t.conns {
		if tu.Local.Port() == port {
			return true
		}
	}
	return false
}

func (l *listener) acceptFull() bool { return len(l.acceptq) >= cap(l.acceptq) }

// enqueue hands an established connection to Accept. It returns false if
// the listener is closed.
func (l *listener) enqueue(e *endpoint) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	select {
	case l.acceptq <- e:
		return true
	default:
		// Cannot happen often: the ACK is dropped while the queue is full.
		l.t.s.ctr.tcp.ListenOverflows.Add(1)
		return false
	}
}

// handleSYN creates a half-open connection for a SYN, or answers with a
// SYN cookie when the SYN queue is full.
func (l *listener) handleSYN(in *inputCtx, tu tcp.Tuple, seg *tcp.Segment) {
	t := l.t
	c := &t.s.ctr.tcp
	if l.acceptFull() {
		c.ListenOverflows.Add(1)
		c.ListenDrops.Add(1)
		return
	}
	useCookie := t.cfg.Syncookies == 2
	if l.synq.Load() >= l.maxSynq {
		if t.cfg.Syncookies == 0 || !synCookiesSupported {
			c.ListenDrops.Add(1)
			return
		}
		useCookie = true
	}
	if useCookie && synCookiesSupported {
		t.sendSynCookie(in, l, tu, seg)
		return
	}
	ifc, _, ok := t.s.route(tu.Remote.Addr(), tu.Local.Addr())
	if !ok {
		t.s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	now := time.Now()
	iss := t.isn(tu, now)
	if in.twISSOK {
		iss = in.twISS
	}
	tc, err := tcp.NewPassive(t.cfg, tu, iss, seg, now)
	if err != nil {
		c.InErrs.Add(1)
		return
	}
	tfoData := t.serverFastOpen(l, tc, tu, seg)
	if tfoData {
		acceptSynData(tc, seg)
	}
	e := t.newEndpoint(tu, tc, ifc)
	t.mu.Lock()
	if t.atConnLimitLocked() {
		// Config.MaxConns: drop, the peer retransmits.
		t.mu.Unlock()
		c.ListenDrops.Add(1)
		return
	}
	if t.closed || t.conns[tu] != nil {
		t.mu.Unlock()
		return
	}
	t.conns[tu] = e
	t.mu.Unlock()
	c.PassiveOpens.Add(1)
	e.sh.mu.Lock()
	e.ln = l
	e.synq = true
	l.synq.Add(1)
	if tfoData {
		e.tfoLn = l
		l.tfoQ.Add(1)
	}
	if !e.dirty {
		e.dirty = true
		in.dirty = append(in.dirty, e)
	}
	e.sh.mu.Unlock()
}

// Accept waits for and returns the next connection.
func (tl *TCPListener) Accept() (net.Conn, error) {
	c, err := tl.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP is Accept returning the concrete type.
func (tl *TCPListener) AcceptTCP() (*TCPConn, error) {
	l := tl.l
	for {
		select {
		case e := <-l.acceptq:
			e.sh.mu.Lock()
			e.ln = nil
			e.sh.mu.Unlock()
			return newTCPConn(e), nil
		case <-l.done:
			return nil, tl.opErr(net.ErrClosed)
		case <-l.dl.wait():
			return nil, tl.opErr(os.ErrDeadlineExceeded)
		}
	}
}

func (tl *TCPListener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: tl.l.addr, Err: err}
}

// Close stops listening. Connections not yet accepted are reset.
func (tl *TCPListener) Close() error { return tl.l.Close() }

func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	l.dl.set(time.Time{})

	t := l.t
	t.mu.Lock()
	for _, k := range l.keys {
		if t.listeners[k] == l {
			delete(t.listeners, k)
		}
	}
	var pending []*endpoint
	for _, e := range t.conns {
		pending = append(pending, e)
	}
	t.mu.Unlock()
	now := time.Now()
	for _, e := range pending {
		e.sh.mu.Lock()
		if e.ln == l {
			e.leaveSynQueue()
			e.ln = nil
			e.tc.Abort()
			e.updateLocked(now)
		}
		e.sh.mu.Unlock()
	}
	return nil
}

// Addr returns the listener's address.
func (tl *TCPListener) Addr() net.Addr { return tl.l.addr }

// SetDeadline sets the deadline for Accept; zero means none.
func (tl *TCPListener) SetDeadline(t time.Time) error {
	select {
	case <-tl.l.done:
		return tl.opErr(net.ErrClosed)
	default:
	}
	tl.l.dl.set(t)
	return nil
}

// parseNetwork returns 0 (both), 4 or 6.
func parseNetwork(network string) (int, error) {
	switch network {
	case "tcp":
		return 0, nil
	case "tcp4":
		return 4, nil
	case "tcp6":
		return 6, nil
	}
	return 0, net.UnknownNetworkError(network)
}

// parseHostPort parses "ip:port", "[ip6]:port" or ":port" (when allowEmpty).
// Host names are not resolved: ustack has no resolver.
func parseHostPort(address string, fam int, allowEmpty bool) (netip.AddrPort, bool, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	var p uint64
	if port != "" {
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p > 65535 {
			return netip.AddrPort{}, false, &net.AddrError{Err: "invalid port", Addr: address}
		}
	}
	if host == "" {
		if !allowEmpty {
			return netip.AddrPort{}, false, &net.AddrError{Err: "missing host", Addr: address}
		}
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), true, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil && strings.EqualFold(host, "localhost") {
		// The one name ustack knows, as /etc/hosts does.
		a, err = netip.IPv6Loopback(), nil
		if fam != 6 {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	if err != nil {
		return netip.AddrPort{}, false, &net.AddrError{Err: "ustack does not resolve host names; use an IP address", Addr: address}
	}
	a = a.Unmap()
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	if (fam == 4 && !a.Is4()) || (fam == 6 && !a.Is6()) {
		return netip.AddrPort{}, false, &net.AddrError{Err: "address family mismatch", Addr: address}
	}
	if allowEmpty && a.IsUnspecified() {
		// "0.0.0.0:p" or "[::]:p": the wildcard of that family only.
		return netip.AddrPortFrom(a, uint16(p)), true, nil
	}
	return netip.AddrPortFrom(a, uint16(p)), false, nil
}
