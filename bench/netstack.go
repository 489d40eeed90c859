package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/ustack/ustack/link"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// netstackSystem is two gVisor netstack stacks (client and server) joined by
// the same in-memory ustack link (link.Pipe, optionally link.Impair on both
// egress sides) the ustack system uses, through nsLink adapters.
type netstackSystem struct {
	client, server *stack.Stack
	links          []*nsLink
	pipeStats
}

var (
	nsClientAddr = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	nsServerAddr = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
)

func newNetstack(cfg NetConfig) (System, error) {
	ea, eb, ps := newLinkPair(cfg)
	ns := &netstackSystem{links: []*nsLink{newNSLink(ea), newNSLink(eb)}, pipeStats: ps}
	var err error
	if ns.client, err = newNSStack(cfg, ns.links[0], nsClientAddr); err != nil {
		ea.Close()
		eb.Close()
		return nil, err
	}
	if ns.server, err = newNSStack(cfg, ns.links[1], nsServerAddr); err != nil {
		ns.client.Close()
		ea.Close()
		eb.Close()
		return nil, err
	}
	return ns, nil
}

func newNSStack(cfg NetConfig, le *nsLink, addr tcpip.Address) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	// Linux-like defaults, as runsc configures netstack: SACK on and
	// receive buffer auto-tuning.
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return nil, fmt.Errorf("netstack: SACK: %s", err)
	}
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod); err != nil {
		return nil, fmt.Errorf("netstack: moderate rcvbuf: %s", err)
	}
	if cfg.CC != "" {
		cc := tcpip.CongestionControlOption(cfg.CC)
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &cc); err != nil {
			return nil, fmt.Errorf("netstack: congestion control %q: %s", cfg.CC, err)
		}
	}
	if err := s.CreateNIC(1, le); err != nil {
		return nil, fmt.Errorf("netstack: CreateNIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}
	pa.AddressWithPrefix.PrefixLen = 24
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("netstack: AddProtocolAddress: %s", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s, nil
}

func (*netstackSystem) Name() string { return "netstack" }

func (ns *netstackSystem) Listen(port int) (net.Listener, error) {
	return gonet.ListenTCP(ns.server, tcpip.FullAddress{NIC: 1, Addr: nsServerAddr, Port: uint16(port)}, ipv4.ProtocolNumber)
}

func (ns *netstackSystem) Dial(ctx context.Context, port int) (net.Conn, error) {
	return gonet.DialContextTCP(ctx, ns.client, tcpip.FullAddress{NIC: 1, Addr: nsServerAddr, Port: uint16(port)}, ipv4.ProtocolNumber)
}

func (ns *netstackSystem) Close() error {
	// Stop the pumps first: stack.Wait holds the stack's lock while it
	// waits for the link, and a pump may need that lock to finish its
	// current packet.
	for _, l := range ns.links {
		l.ep.Close()
	}
	for _, l := range ns.links {
		l.Wait()
	}
	ns.client.Close()
	ns.server.Close()
	ns.client.Wait()
	ns.server.Wait()
	return nil
}

// nsLink adapts a ustack link.Endpoint to a netstack stack.LinkEndpoint:
// outgoing packets are flattened into a pooled buffer and written to the
// endpoint; a pump goroutine reads packets in batches and hands them to the
// stack's dispatcher.
type nsLink struct {
	ep  link.Endpoint
	mtu uint32

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	started    bool
	done       chan struct{}

	bufs sync.Pool
}

func newNSLink(ep link.Endpoint) *nsLink {
	l := &nsLink{ep: ep, mtu: uint32(ep.MTU()), done: make(chan struct{})}
	l.bufs.New = func() any { b := make([]byte, 0, ep.MTU()); return &b }
	return l
}

func (l *nsLink) pump() {
	defer close(l.done)
	const batch = 64
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, l.mtu)
	}
	br, _ := l.ep.(link.BatchReader)
	for {
		var n int
		var err error
		if br != nil {
			n, err = br.ReadPackets(bufs, sizes)
		} else {
			sizes[0], err = l.ep.ReadPacket(bufs[0])
			if err == nil {
				n = 1
			}
		}
		if err != nil {
			return
		}
		l.mu.RLock()
		d := l.dispatcher
		l.mu.RUnlock()
		for i := 0; i < n; i++ {
			if d == nil || sizes[i] < header.IPv4MinimumSize {
				continue
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
				Payload: buffer.MakeWithData(bufs[i][:sizes[i]]),
			})
			d.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
			pkt.DecRef()
		}
	}
}

func (l *nsLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	for _, pkt := range pkts.AsSlice() {
		b := (*bp)[:0]
		for _, s := range pkt.AsSlices() {
			b = append(b, s...)
		}
		*bp = b
		if err := l.ep.WritePacket(b); err != nil {
			if errors.Is(err, net.ErrClosed) {
				if n == 0 {
					return 0, &tcpip.ErrClosedForSend{}
				}
				break
			}
			// Other errors (too big): the packet is lost, like on a wire.
		}
		n++
	}
	return n, nil
}

func (l *nsLink) MTU() uint32                                { return l.mtu }
func (l *nsLink) SetMTU(mtu uint32)                          { l.mtu = mtu }
func (*nsLink) MaxHeaderLength() uint16                      { return 0 }
func (*nsLink) LinkAddress() tcpip.LinkAddress               { return "" }
func (*nsLink) SetLinkAddress(tcpip.LinkAddress)             {}
func (*nsLink) Capabilities() stack.LinkEndpointCapabilities { return 0 }
func (*nsLink) ARPHardwareType() header.ARPHardwareType      { return header.ARPHardwareNone }
func (*nsLink) AddHeader(*stack.PacketBuffer)                {}
func (*nsLink) ParseHeader(*stack.PacketBuffer) bool         { return true }
func (*nsLink) SetOnCloseAction(func())                      {}

func (l *nsLink) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dispatcher = d
	if d != nil && !l.started {
		l.started = true
		go l.pump()
	}
}

func (l *nsLink) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

func (l *nsLink) Wait() {
	l.mu.RLock()
	started := l.started
	l.mu.RUnlock()
	if started {
		<-l.done
	}
}

func (l *nsLink) Close() {
	l.ep.Close()
}
