//go:build linux

package pathemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ustack/ustack/bench/nslink"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// NetstackFlow is a bulk transfer from a gVisor netstack stack owning Addr
// on side A (the Path must have Config.StackA) to a Go discard server run
// by the Linux kernel in namespace B: the same transfer as UstackFlow, with
// gVisor's TCP as the sender.
//
// The stack is set up as runsc sets it up, Linux-like: SACK on, receive
// buffer moderation on, send buffer auto-tuning on (netstack grows the
// send buffer with the congestion window unless SO_SNDBUF is set, up to
// its 4 MiB maximum), Nagle off on the connection.
type NetstackFlow struct {
	CC       string        // tcpip.CongestionControlOption: cubic or reno (netstack has no BBR)
	Port     int           // default 5401
	Addr     netip.Addr    // the stack's address on side A; default AddrA
	Duration time.Duration // default 20 s
	// Helper is the program run in namespace B as the discard server (it
	// must call MaybeServeDiscard); default: this executable.
	Helper string

	stack  *stack.Stack
	link   *nslink.Link
	ep     tcpip.Endpoint
	server *discardServer
	done   chan error
	rtt    time.Duration
	note   string
}

// Name implements Flow.
func (f *NetstackFlow) Name() string { return "netstack-" + f.CC }

// Start implements Flow.
func (f *NetstackFlow) Start(ctx context.Context, p *Path) error {
	if !f.Addr.IsValid() {
		f.Addr = AddrA
	}
	lep, err := p.StackEndpoint(f.Addr)
	if err != nil {
		return fmt.Errorf("pathemu: netstack flow needs a Path with StackA: %w", err)
	}
	if f.Port == 0 {
		f.Port = 5401
	}
	if f.Duration == 0 {
		f.Duration = 20 * time.Second
	}
	f.link = nslink.New(lep)
	f.stack, err = newNetstack(f.CC, f.link, f.Addr)
	if err != nil {
		f.link.Close()
		return err
	}
	dst := netip.AddrPortFrom(AddrB, uint16(f.Port))
	if f.server, err = startDiscard(ctx, p, f.Helper, dst); err != nil {
		f.closeStack()
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := f.dial(dctx, dst)
	cancel()
	if err != nil {
		f.server.kill()
		f.closeStack()
		return fmt.Errorf("pathemu: netstack dial %s: %w", dst, err)
	}
	f.done = make(chan error, 1)
	go func() { f.done <- f.send(c) }()
	return nil
}

// newNetstack builds a netstack stack with one NIC on le owning addr in
// Prefix.
func newNetstack(cc string, le *nslink.Link, addr netip.Addr) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	fail := func(what string, err tcpip.Error) (*stack.Stack, error) {
		s.Close()
		s.Wait()
		return nil, fmt.Errorf("pathemu: netstack %s: %s", what, err)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("SACK", err)
	}
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod); err != nil {
		return fail("receive buffer moderation", err)
	}
	if cc != "" {
		opt := tcpip.CongestionControlOption(cc)
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
			return fail(fmt.Sprintf("congestion control %q", cc), err)
		}
	}
	if err := s.CreateNIC(1, le); err != nil {
		return fail("CreateNIC", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(addr.As4()),
			PrefixLen: Prefix.Bits(),
		},
	}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		return fail("AddProtocolAddress", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s, nil
}

// dial connects a netstack TCP endpoint with Nagle off to dst.
func (f *NetstackFlow) dial(ctx context.Context, dst netip.AddrPort) (*gonet.TCPConn, error) {
	var wq waiter.Queue
	ep, terr := f.stack.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	ep.SocketOptions().SetDelayOption(false) // TCP_NODELAY
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(dst.Addr().As4()), Port: dst.Port()})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	f.ep = ep
	return gonet.NewTCPConn(&wq, ep), nil
}

func (f *NetstackFlow) send(c *gonet.TCPConn) error {
	buf := make([]byte, 128<<10)
	end := time.Now().Add(f.Duration)
	c.SetWriteDeadline(end)
	var err error
	for time.Now().Before(end) {
		if _, err = c.Write(buf); err != nil {
			break
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = nil
	}
	var in tcpip.TCPInfoOption
	if terr := f.ep.GetSockOpt(&in); terr == nil {
		f.rtt = in.RTT
		f.note = fmt.Sprintf("cwnd=%d ssthresh=%d rto=%v ca=%d reorder_seen=%v", in.SndCwnd, in.SndSsthresh, in.RTO, in.CcState, in.ReorderSeen)
	}
	c.SetWriteDeadline(time.Time{})
	if cerr := c.CloseWrite(); err == nil {
		err = cerr
	}
	return err
}

// closeStack stops the link pump first (stack.Wait holds the stack's lock
// while it waits for the link, and the pump may need that lock to finish
// its current packet), then the stack.
func (f *NetstackFlow) closeStack() {
	f.link.Close()
	f.link.Wait()
	f.stack.Close()
	f.stack.Wait()
}

// Result implements Flow.
func (f *NetstackFlow) Result() (Result, error) {
	r := Result{Name: f.Name(), Retransmits: -1}
	if f.done == nil {
		return r, errors.New("pathemu: flow not started")
	}
	serr := <-f.done
	f.server.wait(30 * time.Second)
	st := f.stack.Stats().TCP
	r.Retransmits = int64(st.Retransmits.Value())
	r.MeanRTTms = float64(f.rtt) / 1e6
	r.Note = fmt.Sprintf("%s segs_sent=%d fast_retransmit=%d rto_expired=%d", f.note,
		st.SegmentsSent.Value(), st.FastRetransmit.Value(), st.Timeouts.Value())
	f.ep.Close()
	f.closeStack()
	return r, f.server.fill(&r, serr)
}
