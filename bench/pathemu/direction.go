package pathemu

import (
	"sync"
	"time"

	"github.com/ustack/ustack/link"
)

const (
	batchLen    = 64
	histBucket  = 100 * time.Microsecond
	histBuckets = 2000 // 0..200 ms, the last bucket holds everything above
)

// Stats counts what one direction of the path did.
type Stats struct {
	Packets      uint64 // packets read from the sending side
	Bytes        uint64
	Dropped      uint64 // random loss
	QueueDropped uint64 // tail drops at the full bottleneck queue
	Delivered    uint64 // packets written to the receiving side
	DeliveredB   uint64 // their bytes
	WriteErrors  uint64

	// Queueing delay at the bottleneck of every packet that entered the
	// queue: time between its arrival and the start of its serialization.
	QueueDelaySum time.Duration
	QueueDelayMax time.Duration
	Queued        uint64 // packets the delay figures cover

	// Lateness of deliveries against the model's delivery time (timer
	// slack and CPU contention of the shuttle): how faithful the
	// emulation was.
	LateSum time.Duration
	LateMax time.Duration
	hist    [histBuckets]uint32
}

// MeanQueueDelay is the mean bottleneck queueing delay.
func (s *Stats) MeanQueueDelay() time.Duration {
	if s.Queued == 0 {
		return 0
	}
	return s.QueueDelaySum / time.Duration(s.Queued)
}

// MeanLate is the mean lateness of deliveries.
func (s *Stats) MeanLate() time.Duration {
	if s.Delivered == 0 {
		return 0
	}
	return s.LateSum / time.Duration(s.Delivered)
}

// QueueDelayQuantile returns the q quantile (0..1) of the queueing delay,
// to 100 µs.
func (s *Stats) QueueDelayQuantile(q float64) time.Duration {
	if s.Queued == 0 {
		return 0
	}
	want := uint64(q * float64(s.Queued))
	var acc uint64
	for i, c := range s.hist {
		acc += uint64(c)
		if acc > want {
			return time.Duration(i+1) * histBucket
		}
	}
	return s.QueueDelayMax
}

// direction shuttles packets from src to dst through an Impairer.
type direction struct {
	src, dst link.Endpoint
	im       *link.Impairer
	delay    time.Duration
	rate     int64

	mu    sync.Mutex
	q     []pend // FIFO: delivery times never decrease (no jitter/reorder)
	qhead int
	free  [][]byte
	st    Stats

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

type pend struct {
	at  time.Time
	buf []byte
}

func newDirection(src, dst link.Endpoint, im link.Impairment) *direction {
	return &direction{
		src: src, dst: dst,
		im:    link.NewImpairer(im),
		delay: im.Delay,
		rate:  im.RateBps,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

func (d *direction) start() {
	d.wg.Add(2)
	go d.reader()
	go d.deliverer()
}

func (d *direction) stop() {
	select {
	case <-d.done:
	default:
		close(d.done)
	}
}

func (d *direction) wait() { d.wg.Wait() }

func (d *direction) stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

func (d *direction) reset() {
	d.mu.Lock()
	d.st = Stats{}
	d.mu.Unlock()
}

func (d *direction) reader() {
	defer d.wg.Done()
	mtu := d.src.MTU()
	bufs := make([][]byte, batchLen)
	for i := range bufs {
		bufs[i] = make([]byte, mtu)
	}
	sizes := make([]int, batchLen)
	br, _ := d.src.(link.BatchReader)
	for {
		var n int
		var err error
		if br != nil {
			n, err = br.ReadPackets(bufs, sizes)
		} else {
			sizes[0], err = d.src.ReadPacket(bufs[0])
			if err == nil {
				n = 1
			}
		}
		if n > 0 {
			d.enqueue(bufs[:n], sizes[:n])
		}
		if err != nil {
			return // closed
		}
	}
}

func (d *direction) enqueue(bufs [][]byte, sizes []int) {
	d.mu.Lock()
	wasEmpty := d.qhead == len(d.q)
	now := time.Now()
	for i, b := range bufs {
		size := sizes[i]
		d.st.Packets++
		d.st.Bytes += uint64(size)
		dec := d.im.Decide(now, size)
		if dec.Copies == 0 {
			if dec.QueueDrop {
				d.st.QueueDropped++
			} else {
				d.st.Dropped++
			}
			continue
		}
		if d.rate > 0 {
			tx := time.Duration(int64(size) * 8 * int64(time.Second) / d.rate)
			wait := max(0, dec.At[0].Sub(now)-d.delay-tx)
			d.st.Queued++
			d.st.QueueDelaySum += wait
			d.st.QueueDelayMax = max(d.st.QueueDelayMax, wait)
			d.st.hist[min(int(wait/histBucket), histBuckets-1)]++
		}
		for _, at := range dec.Deliveries() {
			var nb []byte
			if k := len(d.free); k > 0 {
				nb = d.free[k-1]
				d.free = d.free[:k-1]
			}
			if cap(nb) < size {
				nb = make([]byte, size, max(size, d.src.MTU()))
			}
			nb = nb[:size]
			copy(nb, b[:size])
			dec.Apply(nb)
			d.q = append(d.q, pend{at: at, buf: nb})
		}
	}
	d.mu.Unlock()
	if wasEmpty {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

func (d *direction) deliverer() {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	bw, _ := d.dst.(link.BatchWriter)
	batch := make([][]byte, 0, batchLen)
	for {
		d.mu.Lock()
		now := time.Now()
		batch = batch[:0]
		for d.qhead < len(d.q) && !d.q[d.qhead].at.After(now) && len(batch) < batchLen {
			late := now.Sub(d.q[d.qhead].at)
			d.st.LateSum += late
			d.st.LateMax = max(d.st.LateMax, late)
			batch = append(batch, d.q[d.qhead].buf)
			d.q[d.qhead] = pend{}
			d.qhead++
		}
		if d.qhead == len(d.q) {
			d.q, d.qhead = d.q[:0], 0
		} else if d.qhead > 4096 && d.qhead*2 > len(d.q) {
			n := copy(d.q, d.q[d.qhead:])
			clear(d.q[n:])
			d.q, d.qhead = d.q[:n], 0
		}
		var next time.Time
		if d.qhead < len(d.q) {
			next = d.q[d.qhead].at
		}
		d.mu.Unlock()
		if len(batch) > 0 {
			var ok, errs, bytes uint64
			if bw != nil {
				rest := batch
				for len(rest) > 0 {
					n, err := bw.WritePackets(rest)
					n = max(0, min(n, len(rest)))
					for _, b := range rest[:n] {
						bytes += uint64(len(b))
					}
					ok += uint64(n)
					if err == nil || n == len(rest) {
						break
					}
					errs++
					rest = rest[n+1:]
				}
			} else {
				for _, b := range batch {
					if err := d.dst.WritePacket(b); err != nil {
						errs++
					} else {
						ok++
						bytes += uint64(len(b))
					}
				}
			}
			d.mu.Lock()
			d.st.Delivered += ok
			d.st.DeliveredB += bytes
			d.st.WriteErrors += errs
			d.free = append(d.free, batch...)
			d.mu.Unlock()
			select {
			case <-d.done:
				return
			default:
			}
			continue
		}
		if next.IsZero() {
			select {
			case <-d.wake:
				continue
			case <-d.done:
				return
			}
		}
		timer.Reset(next.Sub(now))
		select {
		case <-timer.C:
		case <-d.wake:
			timer.Stop()
		case <-d.done:
			timer.Stop()
			return
		}
	}
}
