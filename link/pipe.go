package link

import (
	"sync"
	"sync/atomic"
)

// DefaultPipeQueueLen is the per-direction queue length, in packets, of
// [Pipe].
const DefaultPipeQueueLen = 1024

// PipeConfig configures [NewPipe].
type PipeConfig struct {
	MTU int // largest packet; <= 0 means 65535
	// QueueLen bounds each direction's FIFO, in packets; <= 0 means
	// DefaultPipeQueueLen.
	QueueLen int
	// Backpressure makes a writer block while the peer's queue is full.
	// By default (false) a packet written into a full queue is dropped
	// (drop-tail) and counted in PipeStats.Dropped. Drop-tail is the default
	// because two stacks that both block writing to each other from their
	// receive loops could otherwise deadlock.
	Backpressure bool
}

// PipeStats counts the packets of one direction of a pipe as seen from the
// writing endpoint.
type PipeStats struct {
	Sent    uint64 // packets accepted into the queue
	Dropped uint64 // packets dropped because the queue was full
}

// Pipe returns a connected in-memory pair of endpoints with the given MTU,
// drop-tail queues of DefaultPipeQueueLen packets per direction, and
// batch support (both ends implement [BatchReader] and [BatchWriter]).
// Closing either end takes the link down: the closed end fails at once, the
// other end can still read the packets already queued for it and then fails
// too; every such error wraps net.ErrClosed.
func Pipe(mtu int) (a, b Endpoint) {
	pa, pb := NewPipe(PipeConfig{MTU: mtu})
	return pa, pb
}

// NewPipe is [Pipe] with more control; it returns the concrete endpoints.
func NewPipe(cfg PipeConfig) (a, b *PipeEndpoint) {
	if cfg.MTU <= 0 {
		cfg.MTU = 65535
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultPipeQueueLen
	}
	ab := newPipeQueue(cfg.QueueLen, cfg.Backpressure)
	ba := newPipeQueue(cfg.QueueLen, cfg.Backpressure)
	a = &PipeEndpoint{mtu: cfg.MTU, rx: ba, tx: ab}
	b = &PipeEndpoint{mtu: cfg.MTU, rx: ab, tx: ba}
	return a, b
}

// PipeEndpoint is one end of a [Pipe]. It is safe for concurrent use.
type PipeEndpoint struct {
	mtu    int
	rx, tx *pipeQueue
	closed atomic.Bool
}

var (
	_ Endpoint    = (*PipeEndpoint)(nil)
	_ BatchReader = (*PipeEndpoint)(nil)
	_ BatchWriter = (*PipeEndpoint)(nil)
)

// MTU implements Endpoint.
func (e *PipeEndpoint) MTU() int { return e.mtu }

// Stats reports the packets this end has written.
func (e *PipeEndpoint) Stats() PipeStats {
	e.tx.mu.Lock()
	defer e.tx.mu.Unlock()
	return e.tx.stats
}

// ReadPacket implements Endpoint.
func (e *PipeEndpoint) ReadPacket(buf []byte) (int, error) {
	q := e.rx
	q.mu.Lock()
	for q.n == 0 && !q.closed {
		q.readWaiters++
		q.notEmpty.Wait()
		q.readWaiters--
	}
	if e.closed.Load() || q.n == 0 {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	n, short := q.popInto(buf)
	q.mu.Unlock()
	if short {
		return n, ErrShortBuffer
	}
	return n, nil
}

// ReadPackets implements BatchReader.
func (e *PipeEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	max := min(len(bufs), len(sizes))
	if max == 0 {
		return 0, nil
	}
	q := e.rx
	q.mu.Lock()
	for q.n == 0 && !q.closed {
		q.readWaiters++
		q.notEmpty.Wait()
		q.readWaiters--
	}
	if e.closed.Load() || q.n == 0 {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	i := 0
	var err error
	for ; i < max && q.n > 0; i++ {
		n, short := q.popInto(bufs[i])
		sizes[i] = n
		if short {
			err = ErrShortBuffer
			i++
			break
		}
	}
	q.mu.Unlock()
	return i, err
}

// WritePacket implements Endpoint.
func (e *PipeEndpoint) WritePacket(pkt []byte) error {
	if len(pkt) > e.mtu {
		return ErrPacketTooBig
	}
	q := e.tx
	q.mu.Lock()
	err := q.push(pkt)
	q.mu.Unlock()
	return err
}

// WritePackets implements BatchWriter.
func (e *PipeEndpoint) WritePackets(pkts [][]byte) (int, error) {
	q := e.tx
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range pkts {
		if len(p) > e.mtu {
			return i, ErrPacketTooBig
		}
		if err := q.push(p); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// Close implements Endpoint. It takes the whole link down.
func (e *PipeEndpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.rx.close()
	e.tx.close()
	return nil
}

// pipeQueue is a bounded FIFO ring of packet buffers. Buffers of packets
// read go to a free list and are reused hot, so a queue that stays short
// touches few buffers and allocates none in steady state.
type pipeQueue struct {
	mu           sync.Mutex
	notEmpty     sync.Cond
	notFull      sync.Cond
	slots        [][]byte // ring of queued packets
	free         [][]byte // buffers of read packets, reused LIFO
	head, n      int
	closed       bool
	backpressure bool
	readWaiters  int
	writeWaiters int
	stats        PipeStats
}

func newPipeQueue(size int, backpressure bool) *pipeQueue {
	q := &pipeQueue{slots: make([][]byte, size), free: make([][]byte, 0, size), backpressure: backpressure}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// push copies pkt into the tail slot. Called with q.mu held.
func (q *pipeQueue) push(pkt []byte) error {
	for {
		if q.closed {
			return ErrClosed
		}
		if q.n < len(q.slots) {
			break
		}
		if !q.backpressure {
			q.stats.Dropped++
			return nil
		}
		q.writeWaiters++
		q.notFull.Wait()
		q.writeWaiters--
	}
	i := q.head + q.n
	if i >= len(q.slots) {
		i -= len(q.slots)
	}
	var s []byte
	if k := len(q.free); k > 0 {
		s = q.free[k-1]
		q.free = q.free[:k-1]
	}
	if cap(s) < len(pkt) {
		// Round up so a slot rarely grows twice.
		s = make([]byte, len(pkt), (len(pkt)+2047)&^2047)
	}
	s = s[:len(pkt)]
	copy(s, pkt)
	q.slots[i] = s
	q.n++
	q.stats.Sent++
	if q.readWaiters > 0 {
		q.notEmpty.Signal()
	}
	return nil
}

// popInto copies the head packet into buf. Called with q.mu held, q.n > 0.
func (q *pipeQueue) popInto(buf []byte) (n int, short bool) {
	s := q.slots[q.head]
	n = copy(buf, s)
	q.slots[q.head] = nil
	q.free = append(q.free, s)
	q.head++
	if q.head == len(q.slots) {
		q.head = 0
	}
	q.n--
	if q.writeWaiters > 0 {
		q.notFull.Signal()
	}
	return n, n < len(s)
}

func (q *pipeQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
	q.mu.Unlock()
}
