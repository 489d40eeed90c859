package main

import (
	"context"
	"fmt"
	"net"

	"github.com/ustack/ustack/bench/nslink"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// netstackSystem is two gVisor netstack stacks (client and server) joined by
// the same in-memory ustack link (link.Pipe, optionally link.Impair on both
// egress sides) the ustack system uses, through nslink adapters.
type netstackSystem struct {
	client, server *stack.Stack
	links          []*nslink.Link
	pipeStats
}

var (
	nsClientAddr = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	nsServerAddr = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
)

func newNetstack(cfg NetConfig) (System, error) {
	ea, eb, ps := newLinkPair(cfg)
	ns := &netstackSystem{links: []*nslink.Link{nslink.New(ea), nslink.New(eb)}, pipeStats: ps}
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

func newNSStack(cfg NetConfig, le *nslink.Link, addr tcpip.Address) (*stack.Stack, error) {
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
		l.Close()
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
