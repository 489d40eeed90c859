package ustack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ustack/ustack/wire"
)

// TestICMPUnreachableFailsConnect answers a SYN with an ICMP destination
// unreachable quoting it: the connect fails at once with the mapped errno.
func TestICMPUnreachableFailsConnect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dst   netip.Addr
		code  uint8
		errno syscall.Errno
	}{
		{"v4 port", peer4, 3, syscall.ECONNREFUSED},
		{"v4 host", peer4, 1, syscall.EHOSTUNREACH},
		{"v6 port", peer6, 4, syscall.ECONNREFUSED},
		{"v6 noroute", peer6, 0, syscall.ENETUNREACH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := newTestStack(t)
			errc := make(chan error, 1)
			go func() {
				_, err := s.Dial("tcp", netip.AddrPortFrom(tc.dst, 80).String())
				errc <- err
			}()
			syn := readPacket(t, peer)
			var reply []byte
			if tc.dst.Is4() {
				m := make([]byte, 8+len(syn))
				m[0], m[1] = 3, tc.code
				copy(m[8:], syn)
				wire.ICMPv4(m).ComputeChecksum()
				reply = ip4Packet(t, tc.dst, addr4.Addr(), wire.ProtoICMP, m)
			} else {
				m := make([]byte, 8+len(syn))
				m[0], m[1] = 1, tc.code
				copy(m[8:], syn)
				wire.ICMPv6(m).ComputeChecksum(tc.dst, addr6.Addr())
				reply = ip6Packet(t, tc.dst, addr6.Addr(), wire.ProtoICMPv6, m)
			}
			// A quote with a wrong sequence number is ignored (RFC 5927).
			bad := append([]byte(nil), reply...)
			if tc.dst.Is4() {
				bad[20+8+20+4] ^= 0xff
				wire.ICMPv4(bad[20:]).ComputeChecksum()
			} else {
				bad[40+8+40+4] ^= 0xff
				wire.ICMPv6(bad[40:]).ComputeChecksum(tc.dst, addr6.Addr())
			}
			peer.WritePacket(bad)
			waitFor(t, "the bad ICMP error", func() bool {
				st := s.Stats()
				return st.ICMP.InDestUnreachs+st.ICMP6.InDestUnreachs == 1
			})
			if c := s.Connections(); len(c) != 1 || c[0].State.String() != "SYN-SENT" {
				t.Fatalf("after an ICMP error with a wrong sequence number: %+v", c)
			}
			peer.WritePacket(reply)
			err := <-errc
			if !errors.Is(err, tc.errno) {
				t.Fatalf("dial: %v, want %v", err, tc.errno)
			}
			if n := len(s.Connections()); n != 0 {
				t.Errorf("%d connections left", n)
			}
		})
	}
}
