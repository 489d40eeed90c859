package link

import (
	"math/rand/v2"
	"time"
)

// Impairment describes the egress impairments [Impair] and [Impairer] apply.
// The zero value impairs nothing.
type Impairment struct {
	// Delay is added to every packet. Jitter spreads it uniformly over
	// [Delay-Jitter, Delay+Jitter] (clamped at 0). Jitter alone never
	// reorders packets: a packet is never delivered before the packet
	// written before it (unless Reorder picks it).
	Delay, Jitter time.Duration
	// Loss is the probability a packet is dropped.
	Loss float64
	// Reorder is the probability a packet skips Delay and Jitter and so
	// overtakes the packets still in flight (like netem's reorder; it has no
	// visible effect when Delay is 0).
	Reorder float64
	// Duplicate is the probability a packet is delivered twice.
	Duplicate float64
	// Corrupt is the probability one random bit of the packet is flipped.
	// IP/TCP checksums catch such packets.
	Corrupt float64
	// RateBps is the bottleneck rate in bits per second: packets are
	// serialized one after another at this rate before Delay applies.
	// 0 means unlimited.
	RateBps int64
	// QueueLen bounds the bottleneck queue, in packets waiting or in
	// transmission; a packet arriving at a full queue is dropped
	// (tail drop). 0 means unbounded. Only meaningful with RateBps > 0.
	QueueLen int
	// Seed seeds the PCG generator; the same seed and the same write times
	// and sizes give the same decisions.
	Seed int64
}

// ImpairStats counts what an impairer did.
type ImpairStats struct {
	Sent         uint64 // packets offered (written)
	Dropped      uint64 // dropped by random Loss
	QueueDropped uint64 // tail-dropped by the full bottleneck queue
	Duplicated   uint64 // packets delivered twice
	Reordered    uint64 // packets picked to skip the delay
	Corrupted    uint64 // packets with a flipped bit
	// The following are counted by the Impair endpoint only.
	Delivered   uint64 // copies handed to the underlying endpoint
	WriteErrors uint64 // copies the underlying endpoint refused
}

// Decision is what an [Impairer] decided for one packet.
type Decision struct {
	// Copies is how many copies to deliver: 0 (dropped), 1 or 2 (duplicated).
	Copies int
	// At holds the delivery time of each copy (At[:Copies]).
	At [2]time.Time
	// QueueDrop says a drop (Copies == 0) came from the full bottleneck
	// queue rather than random loss.
	QueueDrop bool
	// Reordered says the packet was picked to skip the delay.
	Reordered bool
	// Corrupt says to flip bit CorruptBit of byte CorruptOffset.
	Corrupt       bool
	CorruptOffset int
	CorruptBit    uint8
}

// Deliveries returns the delivery times of the copies to deliver.
func (d *Decision) Deliveries() []time.Time { return d.At[:d.Copies] }

// Apply flips the decided bit in pkt, if the decision says to corrupt it.
// pkt must be the packet (of the size given to Decide) or a copy of it.
func (d *Decision) Apply(pkt []byte) {
	if d.Corrupt && d.CorruptOffset < len(pkt) {
		pkt[d.CorruptOffset] ^= 1 << d.CorruptBit
	}
}

// Impairer is the deterministic core of [Impair]: it holds no goroutines,
// locks or clocks, so a simulator can drive it on virtual time. Decide must
// be called with non-decreasing now. An Impairer is not safe for concurrent
// use.
type Impairer struct {
	cfg          Impairment
	rng          *rand.Rand
	busyUntil    time.Time   // when the bottleneck finishes its backlog
	backlog      []time.Time // finish times of queued packets, FIFO
	backHead     int
	lastDelivery time.Time // latest in-order delivery time (FIFO clamp)
	stats        ImpairStats
}

// NewImpairer returns an Impairer applying im.
func NewImpairer(im Impairment) *Impairer {
	s := uint64(im.Seed)
	return &Impairer{
		cfg: im,
		rng: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
	}
}

// Config returns the impairment the Impairer applies.
func (im *Impairer) Config() Impairment { return im.cfg }

// Stats returns the counts so far (Delivered and WriteErrors stay 0).
func (im *Impairer) Stats() ImpairStats { return im.stats }

// Decide decides the fate of a packet of size bytes written at now. Every
// call draws the same amount of randomness whatever the settings and the
// outcome, so the decision for packet k depends only on the seed, k, and the
// times and sizes of packets up to k.
func (im *Impairer) Decide(now time.Time, size int) Decision {
	c := &im.cfg
	r := im.rng
	uLoss, uReorder, uDup, uCorrupt, uJitter := r.Float64(), r.Float64(), r.Float64(), r.Float64(), r.Float64()
	pos := r.Uint64()

	size = max(0, min(size, 1<<30)) // keeps size*8e9 in int64
	var d Decision
	im.stats.Sent++
	if uLoss < c.Loss {
		im.stats.Dropped++
		return d
	}
	depart := now
	if c.RateBps > 0 {
		for im.backHead < len(im.backlog) && !im.backlog[im.backHead].After(now) {
			im.backHead++
		}
		if im.backHead == len(im.backlog) {
			im.backlog, im.backHead = im.backlog[:0], 0
		} else if im.backHead > 1024 && im.backHead*2 > len(im.backlog) {
			n := copy(im.backlog, im.backlog[im.backHead:])
			im.backlog, im.backHead = im.backlog[:n], 0
		}
		if c.QueueLen > 0 && len(im.backlog)-im.backHead >= c.QueueLen {
			im.stats.QueueDropped++
			d.QueueDrop = true
			return d
		}
		start := now
		if im.busyUntil.After(start) {
			start = im.busyUntil
		}
		tx := time.Duration(int64(size) * 8 * int64(time.Second) / c.RateBps)
		depart = start.Add(tx)
		im.busyUntil = depart
		im.backlog = append(im.backlog, depart)
	}
	var at time.Time
	if uReorder < c.Reorder {
		im.stats.Reordered++
		d.Reordered = true
		at = depart
	} else {
		delay := c.Delay
		if c.Jitter > 0 {
			delay += time.Duration((2*uJitter - 1) * float64(c.Jitter))
		}
		if delay < 0 {
			delay = 0
		}
		at = depart.Add(delay)
		if at.Before(im.lastDelivery) {
			at = im.lastDelivery
		}
		im.lastDelivery = at
	}
	d.Copies = 1
	d.At[0] = at
	if uDup < c.Duplicate {
		im.stats.Duplicated++
		d.Copies = 2
		d.At[1] = at
	}
	if uCorrupt < c.Corrupt && size > 0 {
		im.stats.Corrupted++
		d.Corrupt = true
		d.CorruptOffset = int(pos % uint64(size))
		d.CorruptBit = uint8(pos>>32) & 7
	}
	return d
}
