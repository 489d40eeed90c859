package ustack

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack/wire"
)

const (
	icmp4EchoReply   = 0
	icmp4DestUnreach = 3
	icmp4Echo        = 8
	icmp4TimeExceed  = 11

	icmp6DestUnreach = 1
	icmp6PktTooBig   = 2
	icmp6TimeExceed  = 3
	icmp6Echo        = 128
	icmp6EchoReply   = 129
)

// icmp4Input handles an ICMPv4 message addressed to us.
func (s *Stack) icmp4Input(in *inputCtx, ip wire.IPv4, m []byte) {
	c := &s.ctr.icmp
	c.InMsgs.Add(1)
	if len(m) < 8 {
		c.InErrors.Add(1)
		return
	}
	if wire.Checksum(m, 0) != 0 {
		c.InCsumErrors.Add(1)
		c.InErrors.Add(1)
		return
	}
	switch m[0] {
	case icmp4Echo:
		c.InEchos.Add(1)
		s.echoReply(in, ip.Dst(), ip.Src(), m, icmp4EchoReply)
	case icmp4EchoReply:
		c.InEchoReps.Add(1)
		s.pingReply(ip.Src(), m)
	case icmp4DestUnreach:
		if m[1] == 4 {
			c.InPktTooBigs.Add(1)
			s.tcp.icmpError(m, false, 0, int(binary.BigEndian.Uint16(m[6:8])))
		} else {
			c.InDestUnreachs.Add(1)
			s.tcp.icmpError(m, false, unreach4Errno(m[1]), 0)
		}
	case icmp4TimeExceed:
		c.InTimeExcds.Add(1)
	default:
		c.InOtherTypes.Add(1)
	}
}

// unreach4Errno maps an ICMPv4 destination unreachable code to the error
// a connecting socket reports, as Linux's icmp_err_convert table does.
func unreach4Errno(code uint8) syscall.Errno {
	switch code {
	case 0, 6, 11: // net unreachable / unknown / for TOS
		return syscall.ENETUNREACH
	case 2: // protocol unreachable
		return syscall.ENOPROTOOPT
	case 3: // port unreachable
		return syscall.ECONNREFUSED
	case 9, 10, 13: // administratively prohibited
		return syscall.EHOSTUNREACH
	}
	return syscall.EHOSTUNREACH
}

// unreach6Errno maps an ICMPv6 destination unreachable code like Linux's
// icmpv6_err_convert.
func unreach6Errno(code uint8) syscall.Errno {
	switch code {
	case 0: // no route
		return syscall.ENETUNREACH
	case 1: // administratively prohibited
		return syscall.EACCES
	case 4: // port unreachable
		return syscall.ECONNREFUSED
	}
	return syscall.EHOSTUNREACH
}

// icmp6Input handles an ICMPv6 message addressed to us.
func (s *Stack) icmp6Input(in *inputCtx, src, dst netip.Addr, m []byte) {
	c := &s.ctr.icmp6
	c.InMsgs.Add(1)
	if len(m) < 8 {
		c.InErrors.Add(1)
		return
	}
	if wire.Checksum(m, wire.PseudoHeaderSum(src, dst, wire.ProtoICMPv6, len(m))) != 0 {
		c.InCsumErrors.Add(1)
		c.InErrors.Add(1)
		return
	}
	switch m[0] {
	case icmp6Echo:
		c.InEchos.Add(1)
		s.echoReply(in, dst, src, m, icmp6EchoReply)
	case icmp6EchoReply:
		c.InEchoReps.Add(1)
		s.pingReply(src, m)
	case icmp6DestUnreach:
		c.InDestUnreachs.Add(1)
		s.tcp.icmpError(m, true, unreach6Errno(m[1]), 0)
	case icmp6PktTooBig:
		c.InPktTooBigs.Add(1)
		s.tcp.icmpError(m, true, 0, int(binary.BigEndian.Uint32(m[4:8])))
	case icmp6TimeExceed:
		c.InTimeExcds.Add(1)
	default:
		c.InOtherTypes.Add(1)
	}
}

// echoReply answers the echo request req (ICMP header and body) from src
// (ours) to dst.
func (s *Stack) echoReply(in *inputCtx, src, dst netip.Addr, req []byte, typ uint8) {
	ctr := &s.ctr.icmp
	if !src.Is4() {
		ctr = &s.ctr.icmp6
	}
	ifc, _, ok := s.route(dst, src)
	if !ok {
		s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	hl := ipHeaderLen(src)
	if hl+len(req) > ifc.mtu {
		ctr.OutErrors.Add(1) // would need fragmentation
		return
	}
	buf := in.out[:hl+len(req)]
	n, err := s.buildIP(buf, src, dst, s.icmpProto(src), len(req))
	if err != nil || n != hl {
		ctr.OutErrors.Add(1)
		return
	}
	m := buf[hl:]
	copy(m, req)
	m[0], m[1] = typ, 0
	m[2], m[3] = 0, 0
	var sum uint32
	if !src.Is4() {
		sum = wire.PseudoHeaderSum(src, dst, wire.ProtoICMPv6, len(m))
	}
	binary.BigEndian.PutUint16(m[2:4], wire.Checksum(m, sum))
	ctr.OutMsgs.Add(1)
	ctr.OutEchoReps.Add(1)
	s.writeRaw(ifc, buf)
}

func (s *Stack) icmpProto(src netip.Addr) uint8 {
	if src.Is4() {
		return wire.ProtoICMP
	}
	return wire.ProtoICMPv6
}

// icmpLimiter is a token bucket for the ICMP errors the stack generates,
// like Linux's net.ipv4.icmp_msgs_per_sec (1000) and icmp_msgs_burst (50),
// so a flood of odd packets cannot be amplified. Echo replies are not
// limited (Linux's default icmp_ratemask does not cover them either).
type icmpLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

const (
	icmpMsgsPerSec = 1000
	icmpMsgsBurst  = 50
)

func (l *icmpLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = icmpMsgsBurst
	} else {
		l.tokens = min(icmpMsgsBurst, l.tokens+now.Sub(l.last).Seconds()*icmpMsgsPerSec)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// icmp4Unreach sends a destination unreachable with code about the IPv4
// packet orig, quoting its header and the first 8 bytes of payload as
// RFC 792 requires (Linux quotes up to 576 bytes total; so do we).
func (s *Stack) icmp4Unreach(in *inputCtx, orig []byte, code uint8) {
	if !s.icmpLimit.allow(in.now) {
		s.ctr.icmp.OutRateLimited.Add(1)
		return
	}
	ip := wire.IPv4(orig)
	src, dst := ip.Dst(), ip.Src()
	if ip.IsFragment() && ip.FragmentOffset() != 0 {
		return // only the first fragment gets an error
	}
	ifc, _, ok := s.route(dst, src)
	if !ok {
		s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	quote := len(orig)
	if quote > 576-28 {
		quote = 576 - 28
	}
	plen := 8 + quote
	buf := in.out[:20+plen]
	if _, err := s.buildIP(buf, src, dst, wire.ProtoICMP, plen); err != nil {
		s.ctr.icmp.OutErrors.Add(1)
		return
	}
	m := buf[20:]
	m[0], m[1] = icmp4DestUnreach, code
	clear(m[2:8])
	copy(m[8:], orig[:quote])
	binary.BigEndian.PutUint16(m[2:4], wire.Checksum(m, 0))
	s.ctr.icmp.OutMsgs.Add(1)
	s.ctr.icmp.OutDestUnreachs.Add(1)
	s.writeRaw(ifc, buf)
}

// icmp6ParamProblem sends an ICMPv6 parameter problem (type 4) with code
// and pointer about the packet orig, quoting as much of it as fits in the
// IPv6 minimum MTU (RFC 4443 2.4).
func (s *Stack) icmp6ParamProblem(in *inputCtx, orig wire.IPv6, code uint8, pointer uint32) {
	if !orig.Dst().IsGlobalUnicast() && !orig.Dst().IsLoopback() {
		return
	}
	if !s.icmpLimit.allow(in.now) {
		s.ctr.icmp6.OutRateLimited.Add(1)
		return
	}
	src, dst := orig.Dst(), orig.Src()
	ifc, _, ok := s.route(dst, src)
	if !ok {
		s.ctr.ip.OutNoRoutes.Add(1)
		return
	}
	quote := min(len(orig), 1280-40-8)
	plen := 8 + quote
	buf := in.out[:40+plen]
	if _, err := s.buildIP(buf, src, dst, wire.ProtoICMPv6, plen); err != nil {
		s.ctr.icmp6.OutErrors.Add(1)
		return
	}
	m := buf[40:]
	m[0], m[1] = 4, code
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint32(m[4:8], pointer)
	copy(m[8:], orig[:quote])
	binary.BigEndian.PutUint16(m[2:4], wire.Checksum(m, wire.PseudoHeaderSum(src, dst, wire.ProtoICMPv6, len(m))))
	s.ctr.icmp6.OutMsgs.Add(1)
	s.ctr.icmp6.OutParmProbs.Add(1)
	s.writeRaw(ifc, buf)
}
