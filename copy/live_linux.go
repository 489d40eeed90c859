//go:build linux

package tcpcopy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// LiveSource captures from a network interface with an AF_PACKET socket
// (SOCK_DGRAM: the kernel strips the link header, so every interface type
// yields plain IP packets). Needs CAP_NET_RAW.
type LiveSource struct {
	name     string
	fd       int
	loopback bool
	ports    []uint16
	buf      []byte
	num      int
	stop     atomic.Bool
	deadline time.Time
	userDrop int64
}

// UserspaceDropped returns how many packets the userspace port check
// dropped (the kernel BPF filter should leave almost none to drop).
func (s *LiveSource) UserspaceDropped() int64 { return s.userDrop }

// OpenLive opens interface ifname for capture. If ports is non-empty only
// TCP packets with one of those ports (either side) are returned: a classic
// BPF filter drops the rest in the kernel (up to 32 ports), and the IP
// header is checked again in userspace. duration > 0 ends the capture (Next
// returns io.EOF) after that long; Stop ends it at any time.
func OpenLive(ifname string, ports []uint16, duration time.Duration) (*LiveSource, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("live capture: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("live capture on %s: AF_PACKET socket: %w (needs CAP_NET_RAW)", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("live capture on %s: bind: %w", ifname, err)
	}
	// A receive timeout lets Next notice Stop and the duration.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("live capture on %s: SO_RCVTIMEO: %w", ifname, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	if len(ports) > 0 && len(ports) <= 32 {
		// The kernel drops other traffic before copying it to us; the
		// userspace check in Next stays (packets queued before the
		// filter was attached, IPv6 extension headers).
		prog, err := portFilter(ports)
		if err == nil {
			err = attachFilter(fd, prog)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("live capture on %s: BPF port filter: %w", ifname, err)
		}
	}
	s := &LiveSource{name: ifname, fd: fd, loopback: ifi.Flags&net.FlagLoopback != 0, ports: ports, buf: make([]byte, 256<<10)}
	if duration > 0 {
		s.deadline = time.Now().Add(duration)
	}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Name returns the interface name.
func (s *LiveSource) Name() string { return s.name }

// Stop makes Next return io.EOF soon (safe from another goroutine).
func (s *LiveSource) Stop() { s.stop.Store(true) }

// Close closes the socket.
func (s *LiveSource) Close() error { return unix.Close(s.fd) }

// Next returns the next captured IP packet (LinkType LinkRaw).
func (s *LiveSource) Next() (Packet, error) {
	for {
		if s.stop.Load() || (!s.deadline.IsZero() && time.Now().After(s.deadline)) {
			return Packet{}, io.EOF
		}
		n, from, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return Packet{}, &InputError{File: "interface " + s.name, Packet: s.num + 1, Err: err}
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		// On loopback every packet shows up twice (out and in): keep one.
		if s.loopback && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		proto := htons(ll.Protocol)
		if proto != unix.ETH_P_IP && proto != unix.ETH_P_IPV6 {
			continue
		}
		orig := n
		if n > len(s.buf) {
			n = len(s.buf)
		}
		data := s.buf[:n]
		if len(s.ports) > 0 && !matchPorts(data, s.ports) {
			s.userDrop++
			continue
		}
		s.num++
		return Packet{Num: s.num, Time: time.Now(), LinkType: LinkRaw, Data: data, OrigLen: orig}, nil
	}
}

// matchPorts reports whether an IP packet is TCP with one of ports on
// either side. IPv6 extension headers are not walked here (rare for TCP);
// such packets pass and the assembler decides.
func matchPorts(ip []byte, ports []uint16) bool {
	var tcp []byte
	switch {
	case len(ip) >= 20 && ip[0]>>4 == 4:
		hl := int(ip[0]&0xf) * 4
		if ip[9] != 6 || len(ip) < hl+4 {
			return false
		}
		tcp = ip[hl:]
	case len(ip) >= 44 && ip[0]>>4 == 6:
		if ip[6] != 6 {
			return true
		}
		tcp = ip[40:]
	default:
		return false
	}
	sp, dp := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
	for _, p := range ports {
		if sp == p || dp == p {
			return true
		}
	}
	return false
}
