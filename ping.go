package ustack

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/wire"
)

// pingKey identifies an outstanding echo request by the address it went
// to and its identifier and sequence number.
type pingKey struct {
	dst     netip.Addr
	id, seq uint16
}

type pingWait struct {
	payload []byte
	got     chan time.Time // receives the reply's arrival time
}

// pingState tracks the echo requests of Stack.Ping.
type pingState struct {
	mu     sync.Mutex
	nextID uint16
	waits  map[pingKey]*pingWait
}

// Ping sends one ICMP echo request (ICMPv6 for an IPv6 dst) with the given
// sequence number and payload, and waits for the matching echo reply:
// same source, identifier, sequence number and payload. It returns the
// round-trip time. ctx bounds the wait (errors.Is(err,
// os.ErrDeadlineExceeded) when its deadline passes); without a deadline in
// ctx Ping waits until the reply comes, ctx is cancelled or the stack is
// closed. Each call uses its own identifier, so concurrent Pings do not
// take each other's replies.
func (s *Stack) Ping(ctx context.Context, dst netip.Addr, seq int, payload []byte) (rtt time.Duration, err error) {
	dst = dst.Unmap()
	fail := func(err error) error {
		if errno, ok := err.(syscall.Errno); ok {
			err = os.NewSyscallError("sendto", errno)
		}
		return &net.OpError{Op: "ping", Net: "ip", Addr: &net.IPAddr{IP: dst.AsSlice()}, Err: err}
	}
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() {
		return 0, fail(syscall.EINVAL)
	}
	if s.isClosed() {
		return 0, fail(net.ErrClosed)
	}
	ifc, src, ok := s.route(dst, netip.Addr{})
	if !ok {
		s.ctr.ip.OutNoRoutes.Add(1)
		return 0, fail(syscall.ENETUNREACH)
	}
	hl := ipHeaderLen(src)
	mlen := wire.ICMPHeaderLen + len(payload)
	if hl+mlen > ifc.mtu {
		return 0, fail(syscall.EMSGSIZE) // ustack does not fragment
	}

	p := &s.ping
	w := &pingWait{payload: bytes.Clone(payload), got: make(chan time.Time, 1)}
	p.mu.Lock()
	if p.waits == nil {
		p.waits = make(map[pingKey]*pingWait)
	}
	var key pingKey
	for i := 0; ; i++ {
		p.nextID++
		key = pingKey{dst: dst, id: p.nextID, seq: uint16(seq)}
		if p.waits[key] == nil || i == 0xffff {
			break
		}
	}
	p.waits[key] = w
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.waits[key] == w {
			delete(p.waits, key)
		}
		p.mu.Unlock()
	}()

	buf := make([]byte, hl+mlen)
	if _, err := s.buildIP(buf, src, dst, s.icmpProto(src), mlen); err != nil {
		return 0, fail(err)
	}
	ctr := &s.ctr.icmp
	if src.Is4() {
		_, err = wire.BuildICMPv4Echo(buf[hl:], icmp4Echo, key.id, key.seq, payload)
	} else {
		ctr = &s.ctr.icmp6
		_, err = wire.BuildICMPv6Echo(buf[hl:], src, dst, icmp6Echo, key.id, key.seq, payload)
	}
	if err != nil {
		return 0, fail(err)
	}
	start := time.Now()
	ctr.OutMsgs.Add(1)
	ctr.OutEchos.Add(1)
	s.writeRaw(ifc, buf)
	select {
	case at := <-w.got:
		return at.Sub(start), nil
	case <-ctx.Done():
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = errDialTimeout{}
		}
		return 0, fail(err)
	case <-s.done:
		return 0, fail(net.ErrClosed)
	}
}

// pingReply hands an echo reply m (ICMP header and body) from src to the
// Ping waiting for it, if any.
func (s *Stack) pingReply(src netip.Addr, m []byte) {
	if len(m) < wire.ICMPHeaderLen {
		return
	}
	key := pingKey{dst: src.Unmap(), id: uint16(m[4])<<8 | uint16(m[5]), seq: uint16(m[6])<<8 | uint16(m[7])}
	p := &s.ping
	p.mu.Lock()
	w := p.waits[key]
	if w != nil && bytes.Equal(w.payload, m[wire.ICMPHeaderLen:]) {
		delete(p.waits, key)
	} else {
		w = nil
	}
	p.mu.Unlock()
	if w != nil {
		w.got <- time.Now()
	}
}
