package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
)

// ustackSystem is two ustack Stacks (client and server) joined by
// link.Pipe(mtu), with link.Impair on both egress sides for the impaired
// path: the same link the netstack system runs on.
type ustackSystem struct {
	client, server *ustack.Stack
	pipeStats
}

var (
	usClientPrefix = netip.MustParsePrefix("10.0.0.1/24")
	usServerPrefix = netip.MustParsePrefix("10.0.0.2/24")
)

func ustackMaker() Maker {
	return Maker{
		Name:        "ustack",
		New:         newUstack,
		Unsupported: func(string, NetConfig) string { return "" },
	}
}

func newUstack(cfg NetConfig) (System, error) {
	tc := tcp.DefaultConfig()
	if cfg.CC != "" {
		if err := tc.Set("net.ipv4.tcp_congestion_control", cfg.CC); err != nil {
			return nil, fmt.Errorf("ustack: %w", err)
		}
	}
	a, b, ps := newLinkPair(cfg)
	cs, err := ustack.New(ustack.Config{TCP: tc})
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	ss, err := ustack.New(ustack.Config{TCP: tc})
	if err != nil {
		cs.Close()
		a.Close()
		b.Close()
		return nil, err
	}
	u := &ustackSystem{client: cs, server: ss, pipeStats: ps}
	if err := cs.AddInterface("p0", a, usClientPrefix); err != nil {
		u.Close()
		a.Close()
		b.Close()
		return nil, err
	}
	if err := ss.AddInterface("p0", b, usServerPrefix); err != nil {
		u.Close()
		b.Close()
		return nil, err
	}
	return u, nil
}

func (*ustackSystem) Name() string { return "ustack" }

func (u *ustackSystem) Listen(port int) (net.Listener, error) {
	return u.server.Listen("tcp4", netip.AddrPortFrom(usServerPrefix.Addr(), uint16(port)).String())
}

func (u *ustackSystem) Dial(ctx context.Context, port int) (net.Conn, error) {
	return u.client.DialContext(ctx, "tcp4", usServerPrefix.Addr().String()+":"+strconv.Itoa(port))
}

func (u *ustackSystem) Close() error {
	u.client.Close()
	u.server.Close()
	return nil
}
