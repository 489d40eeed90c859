package link

import (
	"sync"
	"time"
)

// Impair returns an endpoint that applies im to every packet written to it
// (egress) before passing it to ep; reads pass through unchanged. Delivery
// times are kept with the standard time package (a timer in one delivery
// goroutine, started on first need), so Impair runs on testing/synctest
// virtual time. Packets due at the same instant are delivered in write order.
// Closing the returned endpoint discards undelivered packets and closes ep.
// The returned value is an *ImpairEndpoint.
func Impair(ep Endpoint, im Impairment) Endpoint {
	return NewImpairEndpoint(ep, im)
}

// NewImpairEndpoint is [Impair] returning the concrete type.
func NewImpairEndpoint(ep Endpoint, im Impairment) *ImpairEndpoint {
	return &ImpairEndpoint{
		ep:   ep,
		core: NewImpairer(im),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		exit: make(chan struct{}),
	}
}

// ImpairEndpoint is the endpoint [Impair] returns.
type ImpairEndpoint struct {
	ep    Endpoint
	outMu sync.Mutex // held while writing to ep, keeps delivery order

	mu      sync.Mutex
	core    *Impairer
	pending pendingHeap
	seq     uint64
	free    [][]byte
	started bool
	closed  bool
	stats   ImpairStats // Delivered, WriteErrors

	wake chan struct{}
	done chan struct{}
	exit chan struct{}
}

var (
	_ Endpoint    = (*ImpairEndpoint)(nil)
	_ BatchReader = (*ImpairEndpoint)(nil)
	_ BatchWriter = (*ImpairEndpoint)(nil)
)

// MTU implements Endpoint.
func (e *ImpairEndpoint) MTU() int { return e.ep.MTU() }

// ReadPacket implements Endpoint; reads are not impaired.
func (e *ImpairEndpoint) ReadPacket(buf []byte) (int, error) { return e.ep.ReadPacket(buf) }

// ReadPackets implements BatchReader (one packet per call when the wrapped
// endpoint has no batch support).
func (e *ImpairEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	if br, ok := e.ep.(BatchReader); ok {
		return br.ReadPackets(bufs, sizes)
	}
	if len(bufs) == 0 || len(sizes) == 0 {
		return 0, nil
	}
	n, err := e.ep.ReadPacket(bufs[0])
	if err != nil && n == 0 {
		return 0, err
	}
	sizes[0] = n
	return 1, err
}

// Stats returns the impairment counters.
func (e *ImpairEndpoint) Stats() ImpairStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.core.Stats()
	s.Delivered = e.stats.Delivered
	s.WriteErrors = e.stats.WriteErrors
	return s
}

// WritePackets implements BatchWriter.
func (e *ImpairEndpoint) WritePackets(pkts [][]byte) (int, error) {
	for i, p := range pkts {
		if err := e.WritePacket(p); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// WritePacket implements Endpoint: it decides the packet's fate now and
// delivers its copies to the wrapped endpoint when due.
func (e *ImpairEndpoint) WritePacket(pkt []byte) error {
	if len(pkt) > e.ep.MTU() {
		return ErrPacketTooBig
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	now := time.Now()
	d := e.core.Decide(now, len(pkt))
	if d.Copies == 0 {
		e.mu.Unlock()
		return nil
	}
	if len(e.pending) == 0 && !d.At[0].After(now) {
		// Due now and nothing queued ahead of it: write inline.
		var buf []byte
		out := pkt
		if d.Corrupt {
			buf = e.getBuf(pkt)
			d.Apply(buf)
			out = buf
		}
		e.mu.Unlock()
		e.outMu.Lock()
		var errs, ok uint64
		for range d.Copies {
			if err := e.ep.WritePacket(out); err != nil {
				errs++
			} else {
				ok++
			}
		}
		e.outMu.Unlock()
		e.mu.Lock()
		e.stats.Delivered += ok
		e.stats.WriteErrors += errs
		if buf != nil {
			e.free = append(e.free, buf)
		}
		e.mu.Unlock()
		return nil
	}
	first := e.seq + 1
	for i := range d.Copies {
		buf := e.getBuf(pkt)
		d.Apply(buf)
		e.seq++
		e.pending.push(pending{at: d.At[i], seq: e.seq, buf: buf})
	}
	// The delivery goroutine only needs waking when this packet became the
	// earliest one; otherwise its timer already fires sooner.
	wake := e.pending[0].seq >= first
	if !e.started {
		e.started = true
		go e.deliver()
	}
	e.mu.Unlock()
	if wake {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// getBuf returns a pooled copy of pkt. Called with e.mu held.
func (e *ImpairEndpoint) getBuf(pkt []byte) []byte {
	var b []byte
	if n := len(e.free); n > 0 {
		b = e.free[n-1]
		e.free = e.free[:n-1]
	}
	if cap(b) < len(pkt) {
		b = make([]byte, len(pkt), (len(pkt)+2047)&^2047)
	}
	b = b[:len(pkt)]
	copy(b, pkt)
	return b
}

// deliver is the delivery goroutine: it sleeps until the earliest pending
// packet is due and writes every due packet in (time, write order).
func (e *ImpairEndpoint) deliver() {
	defer close(e.exit)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch [][]byte
	bw, _ := e.ep.(BatchWriter)
	for {
		e.outMu.Lock()
		e.mu.Lock()
		now := time.Now()
		batch = batch[:0]
		for len(e.pending) > 0 && !e.pending[0].at.After(now) && len(batch) < 64 {
			batch = append(batch, e.pending.pop().buf)
		}
		var next time.Time
		if len(e.pending) > 0 {
			next = e.pending[0].at
		}
		e.mu.Unlock()
		if len(batch) > 0 {
			var ok, errs uint64
			if bw != nil {
				rest := batch
				for len(rest) > 0 {
					n, err := bw.WritePackets(rest)
					n = max(0, min(n, len(rest)))
					ok += uint64(n)
					if err == nil || n == len(rest) {
						break
					}
					errs++ // rest[n] failed; go on with the others
					rest = rest[n+1:]
				}
			} else {
				for _, b := range batch {
					if err := e.ep.WritePacket(b); err != nil {
						errs++
					} else {
						ok++
					}
				}
			}
			e.outMu.Unlock()
			e.mu.Lock()
			e.stats.Delivered += ok
			e.stats.WriteErrors += errs
			for i, b := range batch {
				e.free = append(e.free, b)
				batch[i] = nil
			}
			e.mu.Unlock()
			continue
		}
		e.outMu.Unlock()
		if next.IsZero() {
			select {
			case <-e.wake:
				continue
			case <-e.done:
				return
			}
		}
		timer.Reset(next.Sub(now))
		select {
		case <-timer.C:
		case <-e.wake:
			timer.Stop()
		case <-e.done:
			timer.Stop()
			return
		}
	}
}

// Close implements Endpoint: undelivered packets are discarded and the
// wrapped endpoint is closed.
func (e *ImpairEndpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started := e.started
	close(e.done)
	e.mu.Unlock()
	// Close ep first: it releases a delivery blocked in a full
	// backpressure queue.
	err := e.ep.Close()
	if started {
		<-e.exit
	}
	e.mu.Lock()
	e.pending = nil
	e.free = nil
	e.mu.Unlock()
	return err
}

type pending struct {
	at  time.Time
	seq uint64
	buf []byte
}

func (p *pending) less(q *pending) bool {
	if p.at.Equal(q.at) {
		return p.seq < q.seq
	}
	return p.at.Before(q.at)
}

// pendingHeap is a binary min-heap ordered by (at, seq), without the
// interface boxing of container/heap.
type pendingHeap []pending

func (h *pendingHeap) push(p pending) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s[i].less(&s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pendingHeap) pop() pending {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = pending{}
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].less(&s[l]) {
			m = r
		}
		if !s[m].less(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
