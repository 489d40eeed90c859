package ustack

import "net/netip"

type endpoint struct{ dirty bool }

func (e *endpoint) afterInput() { e.dirty = false }

type tcpState struct{ s *Stack }

func newTCPState(s *Stack) *tcpState { return &tcpState{s: s} }

func (t *tcpState) input(in *inputCtx, src, dst netip.Addr, b []byte) {
	t.s.ctr.tcp.InSegs.Add(1)
}

func (t *tcpState) icmpError(quoted []byte, tooBig bool, mtu int) {}

func (t *tcpState) shutdown() {}
