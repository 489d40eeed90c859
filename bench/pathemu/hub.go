//go:build linux

package pathemu

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/ustack/ustack/link"
)

// hub is side A of a Path with userspace stacks (Config.StackA): one
// in-memory pipe per stack address, like hosts behind a switch. The path's
// shuttle reads every stack's packets from it (fan-in) and writes each
// packet from B to the pipe of its IPv4 destination.
type hub struct {
	mtu  int
	in   chan []byte // packets the stacks sent, in arrival order
	free chan []byte
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	ports map[netip.Addr]*hubPort
}

type hubPort struct {
	stack, shuttle link.Endpoint
}

func newHub(mtu int) *hub {
	return &hub{mtu: mtu, in: make(chan []byte, 4096), free: make(chan []byte, 4096),
		done: make(chan struct{}), ports: map[netip.Addr]*hubPort{}}
}

// port returns the stack end of addr's pipe, creating it on first use.
func (h *hub) port(addr netip.Addr) (link.Endpoint, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return nil, net.ErrClosed
	default:
	}
	if p := h.ports[addr]; p != nil {
		return p.stack, nil
	}
	if !addr.Is4() || !Prefix.Contains(addr) || addr == AddrB {
		return nil, fmt.Errorf("pathemu: stack address %v not in %v or taken by B", addr, Prefix)
	}
	stack, shuttle := link.NewPipe(link.PipeConfig{MTU: h.mtu, QueueLen: 4096})
	h.ports[addr] = &hubPort{stack: stack, shuttle: shuttle}
	go h.pump(shuttle)
	return stack, nil
}

// pump moves one stack's packets into the shared input queue.
func (h *hub) pump(ep link.Endpoint) {
	for {
		var b []byte
		select {
		case b = <-h.free:
		default:
			b = make([]byte, h.mtu)
		}
		n, err := ep.ReadPacket(b[:cap(b)])
		if err != nil {
			return
		}
		select {
		case h.in <- b[:n]:
		case <-h.done:
			return
		}
	}
}

func (h *hub) MTU() int { return h.mtu }

// ReadPacket returns the next packet any stack sent.
func (h *hub) ReadPacket(buf []byte) (int, error) {
	select {
	case b := <-h.in:
		n := copy(buf, b)
		select {
		case h.free <- b:
		default:
		}
		return n, nil
	case <-h.done:
		return 0, net.ErrClosed
	}
}

// WritePacket hands a packet from B to the stack owning its IPv4
// destination; packets for nobody are dropped.
func (h *hub) WritePacket(pkt []byte) error {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return nil
	}
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	h.mu.Lock()
	p := h.ports[dst]
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.shuttle.WritePacket(pkt)
}

func (h *hub) Close() error {
	h.once.Do(func() {
		h.mu.Lock()
		close(h.done)
		for _, p := range h.ports {
			p.stack.Close()
			p.shuttle.Close()
		}
		h.mu.Unlock()
	})
	return nil
}
