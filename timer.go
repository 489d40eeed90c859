package ustack

import (
	"sync"
	"time"
)

// timerQueue is the stack's single timer: a min-heap of connection
// deadlines served by one goroutine, so N connections cost N heap slots,
// not N goroutines or N runtime timers.
//
// Lock order: shard.mu, then timerQueue.mu.
type timerQueue struct {
	mu   sync.Mutex
	heap []*endpoint
	wake chan struct{} // buffered(1): the earliest deadline moved earlier
}

func newTimerQueue() *timerQueue {
	return &timerQueue{wake: make(chan struct{}, 1)}
}

// schedule sets e's deadline (zero removes it). Called with e's shard lock
// held.
func (q *timerQueue) schedule(e *endpoint, when time.Time) {
	q.mu.Lock()
	if when.IsZero() {
		if e.hidx >= 0 {
			q.remove(e.hidx)
		}
		q.mu.Unlock()
		return
	}
	if e.hidx >= 0 && e.when.Equal(when) {
		q.mu.Unlock()
		return
	}
	e.when = when
	if e.hidx < 0 {
		e.hidx = len(q.heap)
		q.heap = append(q.heap, e)
		q.up(e.hidx)
	} else if !q.down(e.hidx) {
		q.up(e.hidx)
	}
	top := e.hidx == 0
	q.mu.Unlock()
	if top {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// expired pops every endpoint due at now into buf and returns it with the
// time until the next deadline (-1 if none).
func (q *timerQueue) expired(now time.Time, buf []*endpoint) ([]*endpoint, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.heap) > 0 && !q.heap[0].when.After(now) {
		e := q.heap[0]
		q.remove(0)
		buf = append(buf, e)
	}
	if len(q.heap) == 0 {
		return buf, -1
	}
	return buf, q.heap[0].when.Sub(now)
}

func (q *timerQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

func (q *timerQueue) less(i, j int) bool { return q.heap[i].when.Before(q.heap[j].when) }

func (q *timerQueue) swap(i, j int) {
	h := q.heap
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}

func (q *timerQueue) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		j = i
	}
}

func (q *timerQueue) down(i0 int) bool {
	i, n := i0, len(q.heap)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && q.less(r, j) {
			j = r
		}
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i > i0
}

func (q *timerQueue) remove(i int) {
	n := len(q.heap) - 1
	e := q.heap[i]
	if i != n {
		q.swap(i, n)
	}
	q.heap[n] = nil
	q.heap = q.heap[:n]
	if i != n {
		if !q.down(i) {
			q.up(i)
		}
	}
	e.hidx = -1
}

// run is the timer goroutine.
func (t *tcpState) runTimers() {
	defer t.s.wg.Done()
	q := t.timers
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []*endpoint
	for {
		var wait time.Duration
		batch, wait = q.expired(time.Now(), batch[:0])
		if len(batch) > 0 {
			for i, e := range batch {
				batch[i] = nil
				e.onTimer()
			}
			continue
		}
		if wait < 0 {
			select {
			case <-q.wake:
			case <-t.s.done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-q.wake:
			timer.Stop()
		case <-t.s.done:
			timer.Stop()
			return
		}
	}
}
