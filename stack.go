package ustack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// Config configures a Stack. The zero value means Linux defaults.
type Config struct {
	// TCP holds the TCP knobs with Linux sysctl names. A zero TCP config
	// means tcp.DefaultConfig().
	TCP tcp.Config

	// TTL is the IPv4 TTL and IPv6 hop limit of packets the stack sends
	// (net.ipv4.ip_default_ttl); 0 means 64.
	TTL uint8

	// MaxConns caps the TCP connections the stack holds at once, in every
	// state but TIME-WAIT (tcp_max_tw_buckets bounds those); 0 means no
	// limit. Linux has no single knob for this: its limits are the file
	// descriptor limit and memory. At the cap, Dial fails with an error
	// wrapping syscall.EMFILE ("too many open files", what socket(2)
	// returns at the fd limit) and incoming SYNs are dropped and counted
	// in ListenDrops, so the peer retries.
	MaxConns int
}

// Stack is a userspace TCP/IP stack: a set of interfaces, a routing table,
// ICMP echo, and TCP connections exposed as net.Conn and net.Listener.
type Stack struct {
	cfg   Config
	tcfg  *tcp.Config
	ttl   uint8
	ctr   counters
	ipID  atomic.Uint32
	table atomic.Pointer[routeTable]

	mu     sync.Mutex // guards ifaces, closed and writes to table
	ifaces map[string]*iface
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	tcp       *tcpState
	icmpLimit icmpLimiter
	ping      pingState
	lo        *iface // loopback: 127.0.0.1/8, ::1, and the way to our own addresses
}

// iface is one link endpoint with its addresses.
type iface struct {
	name     string
	ep       link.Endpoint
	bw       link.BatchWriter // nil if the endpoint has no batch writes
	mtu      int
	prefixes []netip.Prefix
	wmu      sync.Mutex // serializes batch writes of one flush
}

// New creates a Stack. It starts the stack's timer goroutine; interfaces
// added later get one reader goroutine each.
func New(cfg Config) (*Stack, error) {
	if cfg.TCP.IsZero() {
		cfg.TCP = tcp.DefaultConfig()
	}
	if cfg.TTL == 0 {
		cfg.TTL = 64
	}
	s := &Stack{
		cfg:    cfg,
		ttl:    cfg.TTL,
		ifaces: make(map[string]*iface),
		done:   make(chan struct{}),
	}
	s.tcfg = &s.cfg.TCP
	s.table.Store(&routeTable{local: map[netip.Addr]*iface{}})
	s.tcp = newTCPState(s)
	if err := s.addLoopback(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// AddInterface attaches a link endpoint under name with its IPv4 and/or IPv6
// addresses (the prefix gives the connected route). The stack owns ep from
// now on and closes it in Close.
func (s *Stack) AddInterface(name string, ep link.Endpoint, prefixes ...netip.Prefix) error {
	if ep == nil {
		return errors.New("ustack: AddInterface: nil endpoint")
	}
	if name == "" {
		return errors.New("ustack: AddInterface: empty name")
	}
	mtu := ep.MTU()
	if mtu < 68 {
		return fmt.Errorf("ustack: AddInterface %s: MTU %d too small", name, mtu)
	}
	ifc := &iface{name: name, ep: ep, mtu: mtu}
	if bw, ok := ep.(link.BatchWriter); ok {
		ifc.bw = bw
	}
	for _, p := range prefixes {
		if !p.IsValid() {
			return fmt.Errorf("ustack: AddInterface %s: invalid prefix %v", name, p)
		}
		a := p.Addr()
		if a.Is4In6() {
			return fmt.Errorf("ustack: AddInterface %s: use a plain IPv4 prefix instead of %v", name, p)
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("ustack: AddInterface %s: address %v is not unicast", name, a)
		}
		if a.IsLoopback() && name != "lo" {
			return fmt.Errorf("ustack: AddInterface %s: loopback address %v belongs to lo", name, a)
		}
		if a.Is6() && mtu < 1280 {
			return fmt.Errorf("ustack: AddInterface %s: IPv6 needs MTU >= 1280, have %d", name, mtu)
		}
		ifc.prefixes = append(ifc.prefixes, p)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if _, dup := s.ifaces[name]; dup {
		return fmt.Errorf("ustack: AddInterface: interface %q exists", name)
	}
	t := s.table.Load().clone()
	for _, p := range ifc.prefixes {
		if other, dup := t.local[p.Addr()]; dup {
			return fmt.Errorf("ustack: AddInterface %s: address %v already on %s", name, p.Addr(), other.name)
		}
	}
	for _, p := range ifc.prefixes {
		t.local[p.Addr()] = ifc
		t.add(route{dst: p.Masked(), ifc: ifc, connected: true})
	}
	s.ifaces[name] = ifc
	s.table.Store(t)
	s.wg.Add(1)
	go s.readLoop(ifc)
	return nil
}

// AddRoute adds a route to dst through gateway gw on interface ifname. gw may
// be the zero Addr for an on-link route. Lookups use the longest prefix.
func (s *Stack) AddRoute(dst netip.Prefix, gw netip.Addr, ifname string) error {
	if !dst.IsValid() {
		return fmt.Errorf("ustack: AddRoute: invalid prefix %v", dst)
	}
	if gw.IsValid() && gw.Is4() != dst.Addr().Is4() {
		return fmt.Errorf("ustack: AddRoute %v: gateway %v is of another family", dst, gw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	ifc, ok := s.ifaces[ifname]
	if !ok {
		return fmt.Errorf("ustack: AddRoute %v: no interface %q", dst, ifname)
	}
	t := s.table.Load().clone()
	for _, r := range t.routes {
		if r.dst == dst.Masked() && !r.connected {
			return fmt.Errorf("ustack: AddRoute %v: route exists", dst)
		}
	}
	t.add(route{dst: dst.Masked(), gw: gw, ifc: ifc})
	s.table.Store(t)
	return nil
}

// Close aborts every connection, closes listeners, stops the goroutines and
// closes the link endpoints.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	ifaces := make([]*iface, 0, len(s.ifaces))
	for _, i := range s.ifaces {
		ifaces = append(ifaces, i)
	}
	s.mu.Unlock()

	s.tcp.shutdown()
	var errs []error
	for _, i := range ifaces {
		if err := i.ep.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("ustack: closing %s: %w", i.name, err))
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *Stack) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// readLoop reads packets from one interface until its endpoint fails.
func (s *Stack) readLoop(ifc *iface) {
	defer s.wg.Done()
	in := newInputCtx(s)
	bufSize := ifc.mtu
	if br, ok := ifc.ep.(link.BatchReader); ok {
		const batch = 64
		bufs := make([][]byte, batch)
		sizes := make([]int, batch)
		for i := range bufs {
			bufs[i] = make([]byte, bufSize)
		}
		for {
			n, err := br.ReadPackets(bufs, sizes)
			in.now = time.Now()
			for i := 0; i < n; i++ {
				s.input(in, ifc, bufs[i][:sizes[i]])
			}
			in.flush()
			if err != nil && !errors.Is(err, io.ErrShortBuffer) {
				return
			}
		}
	}
	if bufSize < 65535 {
		bufSize = 65535 // a single read may carry more than the MTU (TUN)
	}
	buf := make([]byte, bufSize)
	for {
		n, err := ifc.ep.ReadPacket(buf)
		if n > 0 {
			in.now = time.Now()
			s.input(in, ifc, buf[:n])
			in.flush()
		}
		if err != nil && !errors.Is(err, io.ErrShortBuffer) {
			return
		}
	}
}
