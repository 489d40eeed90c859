// Package stackdial replays tcpcopy sessions through a ustack Stack instead
// of the kernel's TCP: plug a Dialer into tcpcopy.Options.Dialer. With
// KeepClientAddr each replayed connection keeps the captured client's
// address as its source, which the kernel path cannot do; the stack must
// own those addresses (give them to Stack.AddInterface), and its link (a
// TUN device in a network namespace, or a link.Pipe to another stack)
// carries the packets to the target.
package stackdial

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ustack/ustack"
	tcpcopy "github.com/ustack/ustack/copy"
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
