package ustack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/ustack/ustack/tcp"
)

// Dialer holds options for connecting, like net.Dialer.
type Dialer struct {
	// Stack is the stack to dial from (required).
	Stack *Stack
	// Timeout bounds the whole connect; zero means only the SYN retries
	// (net.ipv4.tcp_syn_retries, 127 s by default) bound it.
	Timeout time.Duration
	// Deadline is an absolute connect deadline; zero means none.
	Deadline time.Time
	// LocalAddr is the local address (and port, if non-zero) to use; nil
	// picks the source address by route and an ephemeral port.
	LocalAddr *net.TCPAddr
	// FastOpen asks for TCP Fast Open (RFC 7413; net.ipv4.tcp_fastopen
	// bit 0x1 must be set), like Linux's TCP_FASTOPEN_CONNECT socket
	// option. With a cookie cached from an earlier connection to the same
	// server address, Dial returns at once without sending anything, and
	// the first Write sends the SYN carrying the cookie and that data, so
	// the server can answer within one round trip. Without a cookie, the
	// SYN carries a cookie request, Dial waits for the handshake as usual,
	// and the cookie the server grants is cached (with its MSS) for the next
	// connection. If the server does not acknowledge the SYN data, the
	// data is sent again after the handshake; servers whose Fast Open SYNs
	// keep getting lost are avoided for a while (tcp.FastOpenCache).
	// Stats counts TCPFastOpenActive when SYN data was acknowledged and
	// TCPFastOpenActiveFail when it was not.
	FastOpen bool
	// KeepAlive: > 0 enables keepalive probes with this idle time and
	// interval; < 0 disables them; 0 leaves the sysctl default (off, as a
	// Linux socket without SO_KEEPALIVE). Note: net.Dialer's zero value
	// enables 15 s keepalives; ustack keeps the Linux default instead.
	KeepAlive time.Duration
	// KeepAliveConfig, if Enable is set, overrides KeepAlive.
	KeepAliveConfig net.KeepAliveConfig
	// NoDelay, if set, disables Nagle's algorithm on the new connection.
	NoDelay bool
}

// Dial connects to address ("ip:port", "[ip6]:port") on network "tcp",
// "tcp4" or "tcp6". The result is a *TCPConn.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	d := Dialer{Stack: s}
	return d.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context bounding the connect.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d := Dialer{Stack: s}
	return d.DialContext(ctx, network, address)
}

// DialTCP is Dial returning the concrete type.
func (s *Stack) DialTCP(ctx context.Context, network string, laddr *net.TCPAddr, raddr netip.AddrPort) (*TCPConn, error) {
	d := Dialer{Stack: s, LocalAddr: laddr}
	return d.dial(ctx, network, raddr)
}

// Dial connects using the dialer's options.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects using the dialer's options and ctx.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fam, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ap, _, err := parseHostPort(address, fam, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := d.dial(ctx, network, ap)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context, network string, raddr netip.AddrPort) (*TCPConn, error) {
	s := d.Stack
	if s == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("ustack: Dialer without Stack")}
	}
	t := s.tcp
	rtcp := net.TCPAddrFromAddrPort(raddr)
	var laddr *net.TCPAddr
	fail := func(err error) error {
		if errno, ok := err.(syscall.Errno); ok {
			err = os.NewSyscallError("connect", errno)
		}
		var src net.Addr
		if laddr != nil {
			src = laddr
		}
		return &net.OpError{Op: "dial", Net: network, Source: src, Addr: rtcp, Err: err}
	}
	if raddr.Port() == 0 || !raddr.Addr().IsValid() || raddr.Addr().IsUnspecified() || raddr.Addr().IsMulticast() {
		return nil, fail(syscall.EADDRNOTAVAIL)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	var lip netip.Addr
	var lport uint16
	if d.LocalAddr != nil {
		lap := d.LocalAddr.AddrPort()
		lip, lport = lap.Addr().Unmap(), lap.Port()
		if lip.IsUnspecified() {
			lip = netip.Addr{}
		}
	}
	ifc, src, ok := s.route(raddr.Addr(), lip)
	if !ok {
		if lip.IsValid() {
			return nil, fail(syscall.EADDRNOTAVAIL)
		}
		s.ctr.ip.OutNoRoutes.Add(1)
		return nil, fail(syscall.ENETUNREACH)
	}

	now := time.Now()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, fail(net.ErrClosed)
	}
	if t.atConnLimitLocked() {
		t.mu.Unlock()
		return nil, fail(os.NewSyscallError("socket", syscall.EMFILE))
	}
	var tu tcp.Tuple
	if lport != 0 {
		// bind(2) without SO_REUSEADDR: a listener on the port (same
		// address or wildcard) makes it unavailable.
		if t.portBusyLocked(src, lport) {
			t.mu.Unlock()
			return nil, fail(syscall.EADDRINUSE)
		}
		tu = tcp.Tuple{Local: netip.AddrPortFrom(src, lport), Remote: raddr}
		if old := t.conns[tu]; old != nil {
			if !t.canReuseTimeWait(old) {
				t.mu.Unlock()
				return nil, fail(syscall.EADDRINUSE)
			}
			t.evictLocked(old)
		}
	} else {
		var err error
		tu, err = t.pickEphemeralLocked(src, raddr)
		if err != nil {
			t.mu.Unlock()
			return nil, fail(err)
		}
	}
	tc := tcp.NewActive(t.cfg, tu, t.isn(tu, now), now)
	e := t.newEndpoint(tu, tc, ifc)
	deferSyn := false
	if d.FastOpen {
		if ck, exp, mss, ok := t.clientCookie(raddr.Addr(), now); ok {
			noCookie := len(ck) == 0 && t.cfg.FastOpen&tcp.FastOpenClientNoCookie != 0
			setClientFastOpen(tc, ck, exp, mss, noCookie)
			e.tfoClient = true
			// With a cookie (or tcp_fastopen 0x4), the SYN waits for the
			// first Write and carries its data (TCP_FASTOPEN_CONNECT);
			// otherwise it goes now with a cookie request.
			deferSyn = len(ck) > 0 || noCookie
		}
	}
	t.conns[tu] = e
	t.mu.Unlock()
	s.ctr.tcp.ActiveOpens.Add(1)
	laddr = net.TCPAddrFromAddrPort(tu.Local)

	e.sh.mu.Lock()
	switch {
	case d.KeepAliveConfig.Enable:
		cfg := d.KeepAliveConfig
		tc.SetKeepAlive(true)
		tc.SetKeepAliveParams(cfg.Idle, cfg.Interval, cfg.Count)
	case d.KeepAlive > 0:
		tc.SetKeepAlive(true)
		tc.SetKeepAliveParams(d.KeepAlive, d.KeepAlive, 0)
	case d.KeepAlive < 0:
		tc.SetKeepAlive(false)
	}
	if d.NoDelay {
		tc.SetNoDelay(true)
	}
	c := newTCPConn(e)
	if deferSyn {
		// Return at once; the first Write (or Read, or CloseWrite) sends
		// the SYN, with that data in it.
		e.deferSyn = true
		e.sh.mu.Unlock()
		return c, nil
	}
	e.updateLocked(now) // the SYN
	for {
		st := tc.State()
		if st >= tcp.Established {
			e.sh.mu.Unlock()
			return c, nil
		}
		if st == tcp.Closed {
			err := e.icmpErr
			if err == nil {
				err = tc.Err()
			}
			if err == nil {
				err = syscall.ECONNREFUSED
			}
			e.removeLocked()
			e.sh.mu.Unlock()
			return nil, fail(err)
		}
		ch := e.wq.wait()
		e.sh.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			e.sh.mu.Lock()
			e.closed = true
			if !e.removed.Load() {
				e.tc.Abort()
				e.updateLocked(time.Now())
				e.removeLocked()
			}
			e.sh.mu.Unlock()
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = errDialTimeout{}
			}
			return nil, fail(err)
		case <-s.done:
			return nil, fail(net.ErrClosed)
		}
		e.sh.mu.Lock()
	}
}

// errDialTimeout is the error of a connect that ran out of time: it is a
// timeout, and errors.Is it with both context.DeadlineExceeded and
// os.ErrDeadlineExceeded.
type errDialTimeout struct{}

func (errDialTimeout) Error() string   { return "i/o timeout" }
func (errDialTimeout) Timeout() bool   { return true }
func (errDialTimeout) Temporary() bool { return true }
func (errDialTimeout) Is(err error) bool {
	return err == context.DeadlineExceeded || err == os.ErrDeadlineExceeded
}

func (t *tcpState) portRange() (lo, hi int) {
	lo, hi = t.cfg.IPLocalPortRange[0], t.cfg.IPLocalPortRange[1]
	if lo <= 0 || hi > 65535 || lo > hi {
		lo, hi = 32768, 60999
	}
	return lo, hi
}

// pickEphemeralLocked chooses a local port for a connection from src to
// dst with RFC 6056 algorithm 4 (tcp.PortAllocator, as Linux): ports are
// hard to guess and tuples to different peers do not collide. Ports of
// listeners are skipped; when every port is taken, a TIME-WAIT tuple is
// reused if net.ipv4.tcp_tw_reuse allows it.
func (t *tcpState) pickEphemeralLocked(src netip.Addr, dst netip.AddrPort) (tcp.Tuple, error) {
	tu := tcp.Tuple{Local: netip.AddrPortFrom(src, 0), Remote: dst}
	// As Linux's __inet_hash_connect, a port whose tuple is held by a
	// reusable TIME-WAIT connection counts as free and is taken over.
	port, err := t.ports.Next(tu, func(port uint16) bool {
		if t.listenerOnPortLocked(port) {
			return true
		}
		old := t.conns[tcp.Tuple{Local: netip.AddrPortFrom(src, port), Remote: dst}]
		return old != nil && !t.canReuseTimeWait(old)
	})
	if err != nil {
		return tcp.Tuple{}, syscall.EADDRNOTAVAIL
	}
	tu.Local = netip.AddrPortFrom(src, port)
	if old := t.conns[tu]; old != nil {
		t.evictLocked(old)
	}
	return tu, nil
}

func (t *tcpState) listenerOnPortLocked(port uint16) bool {
	if len(t.listeners) == 0 {
		return false
	}
	for k := range t.listeners {
		if k.port == port {
			return true
		}
	}
	return false
}

// canReuseTimeWait applies net.ipv4.tcp_tw_reuse to an existing tuple.
func (t *tcpState) canReuseTimeWait(old *endpoint) bool {
	if !old.tw.Load() {
		return false
	}
	switch t.cfg.TwReuse {
	case 1:
		return true
	case 2:
		return old.tuple.Local.Addr().IsLoopback() || old.tuple.Remote.Addr().IsLoopback()
	}
	return false
}

// evictLocked drops a TIME-WAIT endpoint whose tuple a new connection
// takes over. Called with t.mu held.
func (t *tcpState) evictLocked(old *endpoint) {
	delete(t.conns, old.tuple)
	old.removed.Store(true)
	t.twCount.Add(-1)
	t.s.ctr.tcp.TCPTimeWaitReuse.Add(1)
	// Its timer entry, if any, fires into onTimer, which ignores removed
	// endpoints (the shard lock cannot be taken under t.mu).
}
