// Package stackdial replays tcpcopy sessions through a ustack Stack instead
// of the kernel's TCP: plug a Dialer into tcpcopy.Options.Dialer. With
// KeepClientAddr each replayed connection keeps the captured client's
// address as its source, which the kernel path cannot do; the stack must
// own those addresses (give them to Stack.AddInterface), and its link (a
// TUN device in a network namespace, or a link.Pipe to another stack)
// carries the packets to the target.
//
// Importing this package also enables the --tun option of "ustack copy"
// (it sets tcpcopy.StackPath).
package stackdial

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/ustack/ustack"
	tcpcopy "github.com/ustack/ustack/copy"
	"github.com/ustack/ustack/link"
)

// Dialer implements tcpcopy.Dialer with a ustack Stack.
type Dialer struct {
	Stack *ustack.Stack
	// KeepClientAddr uses the captured client address as the source.
	KeepClientAddr bool
	// KeepClientPort also keeps the captured client port (then two copies
	// of one session cannot run at once: the second fails EADDRINUSE).
	KeepClientPort bool
	// Timeout bounds each connect; 0 means 5 s.
	Timeout time.Duration
}

var _ tcpcopy.Dialer = (*Dialer)(nil)

// DialSession connects to address (host:port; a host name is resolved
// with the system resolver) on behalf of session s.
func (d *Dialer) DialSession(ctx context.Context, s *tcpcopy.Session, address string) (net.Conn, error) {
	raddr, err := netip.ParseAddrPort(address)
	if err != nil {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("stackdial: no address for %q", host)
		}
		p, err := net.LookupPort("tcp", port)
		if err != nil {
			return nil, err
		}
		raddr = netip.AddrPortFrom(ips[0].Unmap(), uint16(p))
	}
	to := d.Timeout
	if to <= 0 {
		to = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	var laddr *net.TCPAddr
	if d.KeepClientAddr {
		ap := netip.AddrPortFrom(s.Client.Addr().Unmap(), 0)
		if d.KeepClientPort {
			ap = netip.AddrPortFrom(ap.Addr(), s.Client.Port())
		}
		laddr = net.TCPAddrFromAddrPort(ap)
	}
	network := "tcp4"
	if raddr.Addr().Is6() && !raddr.Addr().Is4In6() {
		network = "tcp6"
	}
	c, err := d.Stack.DialTCP(ctx, network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// NewTUNStack opens TUN device dev with the given MTU and starts a Stack on
// it that owns addrs (each captured client address as a /32 or /128), with
// IPv4 and IPv6 default routes over the device. The peer side (for example
// the kernel: an address on the device, routes to the client addresses
// through it) is the caller's business. Close the stack to remove the device.
func NewTUNStack(dev string, mtu int, addrs []netip.Prefix) (*ustack.Stack, error) {
	ep, err := link.OpenTUN(dev, mtu)
	if err != nil {
		return nil, err
	}
	st, err := ustack.New(ustack.Config{})
	if err != nil {
		ep.Close()
		return nil, err
	}
	if err := st.AddInterface(dev, ep, addrs...); err != nil {
		ep.Close()
		st.Close()
		return nil, err
	}
	for _, def := range []string{"0.0.0.0/0", "::/0"} {
		if err := st.AddRoute(netip.MustParsePrefix(def), netip.Addr{}, dev); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// HostPrefixes turns addresses into single-address prefixes (/32, /128).
func HostPrefixes(addrs []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

type stackCloser struct{ st *ustack.Stack }

func (c stackCloser) Close() error { return c.st.Close() }

func init() {
	tcpcopy.StackPath = func(dev string, mtu int, clients []netip.Addr) (tcpcopy.Dialer, io.Closer, error) {
		st, err := NewTUNStack(dev, mtu, HostPrefixes(clients))
		if err != nil {
			return nil, nil, err
		}
		return &Dialer{Stack: st, KeepClientAddr: true}, stackCloser{st}, nil
	}
}
