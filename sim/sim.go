// Package sim is a deterministic network simulator for ustack's sans-IO TCP
// engine.
//
// A Sim holds hosts joined by links. Everything runs on a virtual clock
// driven by a single event queue ordered by (time, sequence number): there
// are no goroutines, no real clock and no randomness except the Sim's seeded
// generators, so the same seed and the same setup give the same trace, byte
// for byte. Hours of virtual time (keepalive timeouts) run in milliseconds.
//
// Hosts run tcp.Conn engines behind a tiny demultiplexer (4-tuple to
// connection, listeners by port, RST when nothing listens). Packets are real
// IPv4+TCP packets built with package wire, so they can be written to a pcap
// file and read by Wireshark.
//
// Links apply link.Impairer's decisions (delay, jitter, loss, reorder,
// duplication, corruption, a rate-limited tail-drop queue) on virtual time,
// after drop rules that script losses exactly (DropSYNs, DropNthData,
// DropAfterHandshake, HoldNthData, ...). Applications are Handlers (Echo,
// Discard, HTTPServer, StartFetch, or callbacks) whose actions are scheduled
// with Sim.At.
//
// The Trace records, with virtual timestamps: application actions, state
// transitions, every segment sent and received (flags, seq, ack, length,
// window, options; retransmissions and duplicate ACKs marked), drops, timer
// expirations (what fired: RTO, TLP, keepalive, window probe, delayed ACK)
// and errors. It is written as JSON lines (absolute sequence numbers) or as a
// timeline (sequence numbers relative to each side's ISN, like tcpdump).
// The pcap capture (CapturePcap, or CapturePcapNG) holds every packet as its sender transmits
// it, including those the link then drops, like tcpdump on each sender.
//
// Built-in scenarios (Scenarios, RunScenario) reproduce Linux's timing
// behaviours on the standard two-host topology (NewEnv); Demo is the
// "ustack demo" fetch.
package sim

import (
	"container/heap"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ustack/ustack/tcp"
)

// Epoch is the wall-clock time the virtual clock starts at. It only shows in
// pcap timestamps and the engines' own events (TraceEngine); the Trace
// counts from zero.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Sim is a simulated network on virtual time.
type Sim struct {
	seed    uint64
	now     time.Time
	seq     uint64
	q       eventHeap
	rng     *rand.Rand
	hosts   []*Host
	links   []*Link
	rules   []*DropRule
	trace   *Trace
	pcap    *pcapWriter
	events  int
	readBuf []byte

	engineTrace func(h *Host, t tcp.Tuple, e *tcp.Event)

	// MaxEvents bounds a run (a safety net against livelock); 0 = 10 million.
	MaxEvents int
}

// New returns an empty simulation whose randomness derives from seed.
func New(seed uint64) *Sim {
	return &Sim{
		seed:    seed,
		now:     Epoch,
		rng:     rand.New(rand.NewPCG(seed, 0x75737461636b)),
		trace:   &Trace{},
		readBuf: make([]byte, 64<<10),
	}
}

// Seed returns the seed the simulation was created with.
func (s *Sim) Seed() uint64 { return s.seed }

// Now returns the current virtual time.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed returns the virtual time since the start of the simulation.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(Epoch) }

// Trace returns the simulation's trace.
func (s *Sim) Trace() *Trace { return s.trace }

// TraceEngine makes the connections report, from the call on, their TCP
// engine's own trace events (tcp.Event: state transitions including the
// constructors' CLOSED -> SYN-SENT and LISTEN -> SYN-RECEIVED, segments
// with the reason they were sent, RTO, cwnd and window changes, Fast Open
// events) to fn, stamped with virtual time; a connection created after the
// call starts with its constructor's transition. trace.NewJSON(w).Event, wrapped
// to drop the host, writes them as JSON lines. nil turns it off.
func (s *Sim) TraceEngine(fn func(h *Host, t tcp.Tuple, e *tcp.Event)) { s.engineTrace = fn }

// Hosts returns the hosts in creation order.
func (s *Sim) Hosts() []*Host { return s.hosts }

// Host returns the host with the given name, or nil.
func (s *Sim) Host(name string) *Host {
	for _, h := range s.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// CapturePcap makes the simulation write every packet a host transmits to w
// as pcap (LINKTYPE_RAW) with virtual timestamps. Call before Run.
func (s *Sim) CapturePcap(w io.Writer) error {
	p, err := newPcapWriter(w)
	if err != nil {
		return err
	}
	s.pcap = p
	return nil
}

// CapturePcapNG is CapturePcap writing pcapng: each host is an interface
// named after it, so Wireshark shows which host sent each packet
// (frame.interface_name), with nanosecond virtual timestamps.
func (s *Sim) CapturePcapNG(w io.Writer) error {
	p, err := newPcapNGWriter(w)
	if err != nil {
		return err
	}
	s.pcap = p
	return nil
}

// subRand derives an independent deterministic generator.
func (s *Sim) subRand() *rand.Rand {
	return rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
}

// At schedules fn at virtual offset d from the start of the simulation
// (or now, if that is already past).
func (s *Sim) At(d time.Duration, fn func()) {
	s.schedule(Epoch.Add(d), fn)
}

// After schedules fn d after the current virtual time.
func (s *Sim) After(d time.Duration, fn func()) {
	s.schedule(s.now.Add(d), fn)
}

func (s *Sim) schedule(at time.Time, fn func()) {
	if at.Before(s.now) {
		at = s.now
	}
	s.seq++
	heap.Push(&s.q, &event{at: at, seq: s.seq, fn: fn})
}

// Run processes events until the queue is empty or the next event lies more
// than limit after the start of the simulation. It returns an error only when
// the event budget is exhausted.
func (s *Sim) Run(limit time.Duration) error {
	end := Epoch.Add(limit)
	max := s.MaxEvents
	if max == 0 {
		max = 10_000_000
	}
	for s.q.Len() > 0 {
		ev := s.q[0]
		if ev.at.After(end) {
			break
		}
		heap.Pop(&s.q)
		s.now = ev.at
		ev.fn()
		s.events++
		if s.events > max {
			return fmt.Errorf("sim: event budget of %d exhausted at %v", max, s.Elapsed())
		}
	}
	if s.now.Before(end) && s.q.Len() == 0 {
		// Nothing left to do: the clock stays at the last event.
		return nil
	}
	return nil
}

// Pending reports the number of queued events.
func (s *Sim) Pending() int { return s.q.Len() }

// AddHost adds a host with the given name and IPv4 address.
func (s *Sim) AddHost(name string, addr netip.Addr) *Host {
	h := newHost(s, name, addr)
	s.hosts = append(s.hosts, h)
	return h
}

type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
