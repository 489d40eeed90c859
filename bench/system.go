package main

import (
	"context"
	"net"
	"time"

	"github.com/ustack/ustack/link"
)

// NetConfig describes the network a System is built on.
type NetConfig struct {
	// MTU of the link between the two endpoints, in bytes.
	MTU int
	// Impair, when not nil, is applied to the packets each side writes
	// (both directions), through link.Impair.
	Impair *link.Impairment
	// CC names the congestion control ("reno", "cubic"); "" = the system's
	// default.
	CC string
}

// System is one TCP implementation under test: a client side and a server
// side joined by a network described by NetConfig. All benchmarks use only
// net.Listener and net.Conn, so the three systems share one harness.
type System interface {
	Name() string
	// Listen listens on the server side on port.
	Listen(port int) (net.Listener, error)
	// Dial connects from the client side to the server side's port.
	Dial(ctx context.Context, port int) (net.Conn, error)
	// Close tears the whole system down.
	Close() error
}

// Maker builds Systems of one kind.
type Maker struct {
	Name string
	New  func(NetConfig) (System, error)
	// Unsupported returns why the system cannot run benchmark b with cfg,
	// or "" if it can.
	Unsupported func(b string, cfg NetConfig) string
}

// newLinkPair returns the two ends of an in-memory link with cfg's MTU and,
// if cfg.Impair is set, the impairment applied to both directions (each end
// impairs what it sends, with its own seed).
func newLinkPair(cfg NetConfig) (a, b link.Endpoint, ps pipeStats) {
	qlen := pipeQueueLen
	pa, pb := link.NewPipe(link.PipeConfig{MTU: cfg.MTU, QueueLen: qlen})
	a, b = pa, pb
	ps = pipeStats{pa, pb}
	if cfg.Impair != nil {
		ia, ib := *cfg.Impair, *cfg.Impair
		ib.Seed = ia.Seed + 1
		a = link.Impair(a, ia)
		b = link.Impair(b, ib)
	}
	return a, b, ps
}

// pipeStats reports the in-memory link's drop-tail losses, which explain
// retransmissions on an otherwise perfect link.
type pipeStats [2]*link.PipeEndpoint

// LinkStats returns the packets sent and dropped by the pipe's full queues,
// both directions together.
func (p pipeStats) LinkStats() (sent, dropped uint64) {
	for _, e := range p {
		st := e.Stats()
		sent += st.Sent
		dropped += st.Dropped
	}
	return sent, dropped
}

// linkStatser is implemented by systems running on the in-memory link.
type linkStatser interface {
	LinkStats() (sent, dropped uint64)
}

// impairedPath is the emulated WAN path: 100 Mbit/s bottleneck, 20 ms RTT
// (10 ms each way), random loss in each direction, and a tail-drop queue of
// about two bandwidth-delay products.
func impairedPath(loss float64, seed int64) *link.Impairment {
	const rate = 100_000_000
	const rtt = 20 * time.Millisecond
	bdpPackets := int(rate / 8 * rtt.Seconds() / 1500)
	return &link.Impairment{
		Delay:    rtt / 2,
		Loss:     loss,
		RateBps:  rate,
		QueueLen: 2 * bdpPackets,
		Seed:     seed,
	}
}

// pipeQueueLen is the per-direction drop-tail queue of the in-memory link;
// the default is link.Pipe's (--pipe-queue changes it).
var pipeQueueLen = link.DefaultPipeQueueLen
