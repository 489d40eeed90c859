// Package nslink adapts a ustack link.Endpoint to gVisor netstack's
// stack.LinkEndpoint, so that netstack runs over the same in-memory links
// (link.Pipe, link.Impair, the path emulator) as ustack in the benchmarks.
package nslink

import (
	"errors"
	"net"
	"sync"

	"github.com/ustack/ustack/link"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Link adapts a ustack link.Endpoint to a netstack stack.LinkEndpoint:
// outgoing packets are flattened into a pooled buffer and written to the
// endpoint; a pump goroutine reads packets in batches and hands them to the
// stack's dispatcher.
type Link struct {
	ep  link.Endpoint
	mtu uint32

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	started    bool
	done       chan struct{}

	bufs sync.Pool
}

// New returns a Link over ep; the stack starts its pump when it attaches.
func New(ep link.Endpoint) *Link {
	l := &Link{ep: ep, mtu: uint32(ep.MTU()), done: make(chan struct{})}
	l.bufs.New = func() any { b := make([]byte, 0, ep.MTU()); return &b }
	return l
}

func (l *Link) pump() {
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

func (l *Link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
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

func (l *Link) MTU() uint32                                { return l.mtu }
func (l *Link) SetMTU(mtu uint32)                          { l.mtu = mtu }
func (*Link) MaxHeaderLength() uint16                      { return 0 }
func (*Link) LinkAddress() tcpip.LinkAddress               { return "" }
func (*Link) SetLinkAddress(tcpip.LinkAddress)             {}
func (*Link) Capabilities() stack.LinkEndpointCapabilities { return 0 }
func (*Link) ARPHardwareType() header.ARPHardwareType      { return header.ARPHardwareNone }
func (*Link) AddHeader(*stack.PacketBuffer)                {}
func (*Link) ParseHeader(*stack.PacketBuffer) bool         { return true }
func (*Link) SetOnCloseAction(func())                      {}

func (l *Link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dispatcher = d
	if d != nil && !l.started {
		l.started = true
		go l.pump()
	}
}

func (l *Link) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dispatcher != nil
}

func (l *Link) Wait() {
	l.mu.RLock()
	started := l.started
	l.mu.RUnlock()
	if started {
		<-l.done
	}
}

func (l *Link) Close() {
	l.ep.Close()
}
