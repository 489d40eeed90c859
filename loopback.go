package ustack

import (
	"errors"
	"net/netip"

	"github.com/ustack/ustack/link"
)

// loopMTU is the loopback MTU (Linux lo uses 65536; IPv4 total length
// caps a packet at 65535).
const loopMTU = 65535

// loopEndpoint is the stack's loopback link: what is written to it is read
// back from it, through an in-memory pipe.
type loopEndpoint struct {
	w, r *link.PipeEndpoint
}

func newLoopEndpoint() *loopEndpoint {
	a, b := link.NewPipe(link.PipeConfig{MTU: loopMTU, QueueLen: 4096})
	return &loopEndpoint{w: a, r: b}
}

func (l *loopEndpoint) MTU() int                                     { return loopMTU }
func (l *loopEndpoint) ReadPacket(buf []byte) (int, error)           { return l.r.ReadPacket(buf) }
func (l *loopEndpoint) WritePacket(pkt []byte) error                 { return l.w.WritePacket(pkt) }
func (l *loopEndpoint) WritePackets(p [][]byte) (int, error)         { return l.w.WritePackets(p) }
func (l *loopEndpoint) ReadPackets(b [][]byte, s []int) (int, error) { return l.r.ReadPackets(b, s) }
func (l *loopEndpoint) Close() error                                 { return errors.Join(l.w.Close(), l.r.Close()) }

// Loopback addresses every stack has on its "lo" interface.
var (
	loopback4 = netip.MustParsePrefix("127.0.0.1/8")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// addLoopback creates the "lo" interface. Packets to any of the stack's own
// addresses are routed through it, as Linux routes them through lo.
func (s *Stack) addLoopback() error {
	if err := s.AddInterface("lo", newLoopEndpoint(), loopback4, loopback6); err != nil {
		return err
	}
	s.mu.Lock()
	s.lo = s.ifaces["lo"]
	s.mu.Unlock()
	return nil
}
