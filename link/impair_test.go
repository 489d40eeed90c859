package link

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// arrival is one packet copy seen by the receiver.
type arrival struct {
	id      int
	at      time.Duration // since the first write
	hash    uint64
	badBits int // bits differing from what was sent
}

// tpkt is packet i of a trace: the id twice, then a pattern.
func tpkt(i, size int) []byte {
	b := pkt(i, size)
	binary.BigEndian.PutUint32(b[4:], uint32(i))
	return b
}

// runTrace writes n packets of size bytes, one every interval, through an
// Impair endpoint over a pipe and records what arrives. Call inside a
// synctest bubble.
func runTrace(t *testing.T, im Impairment, n int, interval time.Duration, size int) ([]arrival, ImpairStats) {
	t.Helper()
	a, b := NewPipe(PipeConfig{MTU: 65535, QueueLen: 4096, Backpressure: true})
	ep := NewImpairEndpoint(a, im)
	start := time.Now()
	var out []arrival
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			m, err := b.ReadPacket(buf)
			if err != nil {
				return
			}
			// The id is stored twice; a flipped bit hits at most one copy.
			id, diff := 0, -1
			for _, cand := range []int{int(binary.BigEndian.Uint32(buf)), int(binary.BigEndian.Uint32(buf[4:]))} {
				want := tpkt(cand, size)
				d := 0
				for j := range m {
					d += bits.OnesCount8(buf[j] ^ want[j])
				}
				if diff < 0 || d < diff {
					id, diff = cand, d
				}
			}
			h := fnv.New64a()
			h.Write(buf[:m])
			out = append(out, arrival{id: id, at: time.Since(start), hash: h.Sum64(), badBits: diff})
		}
	}()
	p := make([]byte, size)
	for i := range n {
		copy(p, tpkt(i, size))
		if err := ep.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval)
	}
	// Wait well past the last possible delivery.
	horizon := im.Delay + im.Jitter + time.Second
	if im.RateBps > 0 {
		horizon += time.Duration(int64(n) * int64(size) * 8 * int64(time.Second) / im.RateBps)
	}
	time.Sleep(horizon)
	synctest.Wait()
	st := ep.Stats()
	ep.Close()
	<-done
	return out, st
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.5f, want %.5f ± %.5f", what, got, want, tol)
	} else {
		t.Logf("%s = %.5f (want %.5f ± %.5f)", what, got, want, tol)
	}
}

// tol5 is five binomial standard deviations of a rate p over n trials.
func tol5(p float64, n int) float64 { return 5 * math.Sqrt(p*(1-p)/float64(n)) }

// nPackets is the sample size of the statistics tests.
var nPackets = func() int {
	if raceEnabled {
		return 20_000
	}
	return 100_000
}()

func TestImpairLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = 0.1
		arr, st := runTrace(t, Impairment{Loss: p, Seed: 1}, nPackets, time.Millisecond, 64)
		lost := nPackets - len(arr)
		within(t, "loss rate", float64(lost)/float64(nPackets), p, tol5(p, nPackets))
		if uint64(lost) != st.Dropped || st.Sent != uint64(nPackets) || st.Delivered != uint64(len(arr)) {
			t.Errorf("stats %+v disagree with %d lost, %d delivered", st, lost, len(arr))
		}
		for i, a := range arr {
			if a.at != time.Duration(a.id)*time.Millisecond {
				t.Fatalf("arrival %d: packet %d at %v, want no delay", i, a.id, a.at)
			}
		}
	})
}

func TestImpairDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = 0.05
		arr, st := runTrace(t, Impairment{Duplicate: p, Delay: 3 * time.Millisecond, Seed: 2}, nPackets, time.Millisecond, 64)
		dups := len(arr) - nPackets
		within(t, "duplicate rate", float64(dups)/float64(nPackets), p, tol5(p, nPackets))
		if uint64(dups) != st.Duplicated {
			t.Errorf("observed %d duplicates, stats say %d", dups, st.Duplicated)
		}
		seen := make([]int, nPackets)
		for _, a := range arr {
			seen[a.id]++
		}
		for id, c := range seen {
			if c < 1 || c > 2 {
				t.Fatalf("packet %d arrived %d times", id, c)
			}
		}
	})
}

func TestImpairReorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = 0.1
		delay := 10 * time.Millisecond
		arr, st := runTrace(t, Impairment{Reorder: p, Delay: delay, Seed: 3}, nPackets, time.Millisecond, 64)
		if len(arr) != nPackets {
			t.Fatalf("got %d packets", len(arr))
		}
		// A packet is early when some packet written before it is still
		// missing when it arrives.
		arrived := make([]bool, nPackets)
		minMissing, early := 0, 0
		for _, a := range arr {
			if a.id > minMissing {
				early++
				if a.at != time.Duration(a.id)*time.Millisecond {
					t.Fatalf("reordered packet %d at %v, want no delay", a.id, a.at)
				}
			} else if a.at != time.Duration(a.id)*time.Millisecond+delay {
				t.Fatalf("in-order packet %d at %v, want +%v", a.id, a.at, delay)
			}
			arrived[a.id] = true
			for minMissing < nPackets && arrived[minMissing] {
				minMissing++
			}
		}
		within(t, "reorder rate", float64(early)/float64(nPackets), p, tol5(p, nPackets))
		// A reordered packet right behind another reordered one overtakes
		// nothing extra, so observed <= decided.
		if uint64(early) > st.Reordered || st.Reordered-uint64(early) > st.Reordered/100 {
			t.Errorf("observed %d early packets, stats Reordered %d", early, st.Reordered)
		}
	})
}

func TestImpairDelayJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		delay, jitter := 20*time.Millisecond, 5*time.Millisecond
		interval := 20 * time.Millisecond // > 2*jitter: the FIFO clamp never bites
		arr, _ := runTrace(t, Impairment{Delay: delay, Jitter: jitter, Seed: 4}, nPackets, interval, 64)
		if len(arr) != nPackets {
			t.Fatalf("got %d packets", len(arr))
		}
		var sum, sum2 float64
		lo, hi := time.Hour, time.Duration(0)
		for i, a := range arr {
			if a.id != i {
				t.Fatalf("jitter reordered packets: arrival %d is packet %d", i, a.id)
			}
			d := a.at - time.Duration(a.id)*interval
			lo, hi = min(lo, d), max(hi, d)
			ms := d.Seconds() * 1000
			sum += ms
			sum2 += ms * ms
		}
		mean := sum / float64(nPackets)
		std := math.Sqrt(sum2/float64(nPackets) - mean*mean)
		wantStd := 5 / math.Sqrt(3) // uniform on ±5 ms
		within(t, "mean delay ms", mean, 20, 5*wantStd/math.Sqrt(float64(nPackets)))
		// The standard error of a uniform sample's stddev is
		// sigma*sqrt((kurtosis-1)/4n), kurtosis 1.8.
		within(t, "delay stddev ms", std, wantStd, 5*wantStd*math.Sqrt(0.8/4/float64(nPackets)))
		if lo < delay-jitter || hi > delay+jitter || lo > delay-jitter+time.Millisecond/10 || hi < delay+jitter-time.Millisecond/10 {
			t.Errorf("delay range [%v, %v], want to fill [%v, %v]", lo, hi, delay-jitter, delay+jitter)
		}
	})
}

func TestImpairJitterKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		arr, _ := runTrace(t, Impairment{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond, Seed: 5}, 10_000, time.Millisecond, 64)
		for i, a := range arr {
			if a.id != i {
				t.Fatalf("arrival %d is packet %d: jitter alone must not reorder", i, a.id)
			}
			if i > 0 && a.at < arr[i-1].at {
				t.Fatal("time went backwards")
			}
		}
	})
}

func TestImpairRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 8_000_000 // 1000-byte packets take exactly 1 ms
		const size = 1000
		delay := 5 * time.Millisecond
		// Offer twice the bottleneck rate; the queue is unbounded.
		arr, st := runTrace(t, Impairment{RateBps: rate, Delay: delay, Seed: 6}, nPackets, 500*time.Microsecond, size)
		if len(arr) != nPackets || st.QueueDropped != 0 {
			t.Fatalf("got %d packets, stats %+v", len(arr), st)
		}
		for i, a := range arr {
			want := time.Duration(i+1)*time.Millisecond + delay
			if a.id != i || a.at != want {
				t.Fatalf("arrival %d: packet %d at %v, want packet %d at %v", i, a.id, a.at, i, want)
			}
		}
		span := arr[len(arr)-1].at - arr[0].at + time.Millisecond
		within(t, "throughput Mbit/s", float64(nPackets*size*8)/span.Seconds()/1e6, 8, 0.001)
	})
}

func TestImpairQueueTailDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 8_000_000 // 1 ms per 1000-byte packet
		const size, qlen = 1000, 50
		arr, st := runTrace(t, Impairment{RateBps: rate, QueueLen: qlen, Seed: 7}, nPackets, 500*time.Microsecond, size)
		// Offered 2000 pkt/s, served 1000 pkt/s: once the queue fills, every
		// other packet is dropped.
		within(t, "queue drop fraction", float64(st.QueueDropped)/float64(nPackets), 0.5, 0.001+qlen/float64(nPackets))
		if uint64(len(arr)) != uint64(nPackets)-st.QueueDropped || st.Dropped != 0 {
			t.Errorf("%d arrived, stats %+v", len(arr), st)
		}
		span := arr[len(arr)-1].at - arr[0].at + time.Millisecond
		within(t, "throughput Mbit/s", float64(len(arr)*size*8)/span.Seconds()/1e6, 8, 0.01)
		var maxSojourn time.Duration
		for _, a := range arr {
			maxSojourn = max(maxSojourn, a.at-time.Duration(a.id)*500*time.Microsecond)
		}
		if maxSojourn > qlen*time.Millisecond {
			t.Errorf("max queueing+serialization delay %v exceeds %d packets", maxSojourn, qlen)
		}
		t.Logf("max sojourn %v", maxSojourn)
	})
}

func TestImpairCorrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = 0.01
		arr, st := runTrace(t, Impairment{Corrupt: p, Seed: 8}, nPackets, time.Millisecond, 200)
		bad := 0
		for _, a := range arr {
			switch a.badBits {
			case 0:
			case 1:
				bad++
			default:
				t.Fatalf("packet %d has %d flipped bits, want 1", a.id, a.badBits)
			}
		}
		within(t, "corrupt rate", float64(bad)/float64(nPackets), p, tol5(p, nPackets))
		if uint64(bad) != st.Corrupted {
			t.Errorf("observed %d corrupted, stats %d", bad, st.Corrupted)
		}
	})
}

func TestImpairSameSeedSameSequence(t *testing.T) {
	im := Impairment{
		Delay: 8 * time.Millisecond, Jitter: 3 * time.Millisecond,
		Loss: 0.05, Reorder: 0.05, Duplicate: 0.05, Corrupt: 0.05,
		RateBps: 10_000_000, QueueLen: 30, Seed: 42,
	}
	run := func(im Impairment) (arr []arrival, st ImpairStats) {
		synctest.Test(t, func(t *testing.T) {
			arr, st = runTrace(t, im, nPackets/5, 700*time.Microsecond, 1000)
		})
		return
	}
	a1, s1 := run(im)
	a2, s2 := run(im)
	if s1 != s2 {
		t.Errorf("stats differ: %+v vs %+v", s1, s2)
	}
	if !slices.Equal(a1, a2) {
		t.Fatalf("same seed gave different sequences (%d vs %d arrivals)", len(a1), len(a2))
	}
	t.Logf("%d arrivals, stats %+v", len(a1), s1)
	if s1.Dropped == 0 || s1.QueueDropped == 0 || s1.Duplicated == 0 || s1.Reordered == 0 || s1.Corrupted == 0 {
		t.Errorf("the test should exercise every impairment: %+v", s1)
	}
	im.Seed = 43
	a3, _ := run(im)
	if slices.Equal(a1, a3) {
		t.Fatal("different seeds gave the same sequence")
	}
}

// The deterministic core on its own: exact decisions on virtual time.
func TestImpairerDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	im := NewImpairer(Impairment{RateBps: 1_000_000, QueueLen: 2, Delay: 10 * time.Millisecond})
	// 125-byte packets take 1 ms at 1 Mbit/s. Three back-to-back: the third
	// finds two in the queue and is tail-dropped.
	d1 := im.Decide(t0, 125)
	d2 := im.Decide(t0, 125)
	d3 := im.Decide(t0, 125)
	if d1.Copies != 1 || !d1.At[0].Equal(t0.Add(11*time.Millisecond)) {
		t.Fatalf("d1 %+v", d1)
	}
	if d2.Copies != 1 || !d2.At[0].Equal(t0.Add(12*time.Millisecond)) {
		t.Fatalf("d2 %+v", d2)
	}
	if d3.Copies != 0 || !d3.QueueDrop {
		t.Fatalf("d3 %+v", d3)
	}
	// At +1 ms the first has left: room again, queued behind the second.
	d4 := im.Decide(t0.Add(time.Millisecond), 125)
	if d4.Copies != 1 || !d4.At[0].Equal(t0.Add(13*time.Millisecond)) {
		t.Fatalf("d4 %+v", d4)
	}
	// Idle link: no queueing.
	d5 := im.Decide(t0.Add(time.Second), 250)
	if !d5.At[0].Equal(t0.Add(time.Second + 12*time.Millisecond)) {
		t.Fatalf("d5 %+v", d5)
	}
	want := ImpairStats{Sent: 5, QueueDropped: 1}
	if st := im.Stats(); st != want {
		t.Fatalf("stats %+v want %+v", st, want)
	}
	// Corruption: Apply flips exactly the decided bit.
	c := NewImpairer(Impairment{Corrupt: 1, Duplicate: 1, Seed: 9})
	d := c.Decide(t0, 40)
	if !d.Corrupt || d.Copies != 2 || len(d.Deliveries()) != 2 {
		t.Fatalf("%+v", d)
	}
	p := make([]byte, 40)
	d.Apply(p)
	n := 0
	for _, x := range p {
		n += bits.OnesCount8(x)
	}
	if n != 1 || p[d.CorruptOffset] != 1<<d.CorruptBit {
		t.Fatalf("Apply flipped %d bits", n)
	}
}

func TestImpairZeroIsPassThrough(t *testing.T) {
	a, b := Pipe(1500)
	ep := Impair(a, Impairment{})
	defer ep.Close()
	for i := range 100 {
		ep.WritePacket(pkt(i, 100))
	}
	buf := make([]byte, 1500)
	for i := range 100 {
		n, err := b.ReadPacket(buf)
		if err != nil || n != 100 || binary.BigEndian.Uint32(buf) != uint32(i) {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if st := ep.(*ImpairEndpoint).Stats(); st.Sent != 100 || st.Delivered != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestImpairCloseDiscardsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pipe(1500)
		ep := Impair(a, Impairment{Delay: time.Second})
		ep.WritePacket(pkt(1, 20))
		time.Sleep(500 * time.Millisecond)
		if err := ep.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadPacket(make([]byte, 100)); err == nil {
			t.Fatal("a pending packet was delivered after Close")
		}
		if err := ep.WritePacket(pkt(2, 20)); err == nil {
			t.Fatal("write after Close succeeded")
		}
	})
}

func TestImpairCloseReleasesBlockedDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := NewPipe(PipeConfig{MTU: 1500, QueueLen: 1, Backpressure: true})
		ep := Impair(a, Impairment{Delay: time.Millisecond})
		for i := range 5 {
			ep.WritePacket(pkt(i, 20))
		}
		time.Sleep(time.Second) // delivery now blocks on the full queue
		synctest.Wait()
		if err := ep.Close(); err != nil {
			t.Fatal(err)
		}
		st := ep.(*ImpairEndpoint).Stats()
		if st.Delivered != 1 || st.WriteErrors != 4 {
			t.Fatalf("stats %+v, want 1 delivered and the 4 others failed", st)
		}
	})
}

// FuzzImpairer checks the core's invariants for arbitrary settings and
// write patterns: no panics, copies 0..2, never delivered before written,
// in-order delivery of packets not picked for reordering, consistent
// counters.
func FuzzImpairer(f *testing.F) {
	f.Add(int64(10e6), int64(3e6), 0.1, 0.1, 0.1, 0.1, int64(1e6), 5, int64(1), []byte{1, 2, 3, 200, 0, 0, 7})
	f.Add(int64(0), int64(0), 0.0, 0.0, 0.0, 0.0, int64(0), 0, int64(0), []byte{})
	f.Add(int64(-5), int64(-5), -1.0, 2.0, math.NaN(), 1.0, int64(-3), -1, int64(-9), []byte{255, 255})
	f.Fuzz(func(t *testing.T, delay, jitter int64, loss, reorder, dup, corrupt float64, rate int64, qlen int, seed int64, ops []byte) {
		im := NewImpairer(Impairment{
			Delay: time.Duration(delay % int64(time.Hour)), Jitter: time.Duration(jitter % int64(time.Hour)),
			Loss: loss, Reorder: reorder, Duplicate: dup, Corrupt: corrupt,
			RateBps: rate, QueueLen: qlen, Seed: seed,
		})
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var last time.Time
		var copies, first uint64
		for i, op := range ops {
			now = now.Add(time.Duration(op) * 37 * time.Microsecond)
			size := int(op)*7 + i
			d := im.Decide(now, size)
			if d.Copies < 0 || d.Copies > 2 {
				t.Fatalf("copies %d", d.Copies)
			}
			for _, at := range d.Deliveries() {
				if at.Before(now) {
					t.Fatalf("delivery %v before write %v", at, now)
				}
			}
			if d.Copies > 0 {
				first++
				copies += uint64(d.Copies)
				if !d.Reordered {
					if d.At[0].Before(last) {
						t.Fatal("in-order packet delivered before its predecessor")
					}
					last = d.At[0]
				}
			}
			if d.Corrupt {
				if d.CorruptOffset < 0 || d.CorruptOffset >= size || d.CorruptBit > 7 {
					t.Fatalf("corrupt offset %d bit %d for size %d", d.CorruptOffset, d.CorruptBit, size)
				}
				b := make([]byte, size)
				d.Apply(b)
			}
		}
		st := im.Stats()
		if st.Sent != uint64(len(ops)) || st.Sent != st.Dropped+st.QueueDropped+first || copies != first+st.Duplicated {
			t.Fatalf("stats %+v, %d delivered first copies, %d copies", st, first, copies)
		}
	})
}

func BenchmarkImpairerDecide(b *testing.B) {
	im := NewImpairer(Impairment{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Reorder: 0.01, Duplicate: 0.01, Corrupt: 0.01, RateBps: 1e9, QueueLen: 100, Seed: 1})
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		now = now.Add(12 * time.Microsecond)
		im.Decide(now, 1500)
	}
}

func BenchmarkImpairPipe(b *testing.B) {
	a, c := NewPipe(PipeConfig{MTU: 65535, Backpressure: true})
	ep := Impair(a, Impairment{Loss: 0.001, Seed: 1})
	p := make([]byte, 1500)
	b.SetBytes(1500)
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			if _, err := c.ReadPacket(buf); err != nil {
				return
			}
		}
	}()
	for range b.N {
		ep.WritePacket(p)
	}
	ep.Close()
	<-done
}

// The same code on the real clock: every packet arrives, in order, no
// earlier than its delay.
func TestImpairRealTime(t *testing.T) {
	a, b := Pipe(1500)
	delay := 2 * time.Millisecond
	ep := Impair(a, Impairment{Delay: delay, RateBps: 100_000_000})
	defer ep.Close()
	const n = 50
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		if err := ep.WritePacket(pkt(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	for i := range n {
		m, err := b.ReadPacket(buf)
		if err != nil || m != 100 {
			t.Fatal(m, err)
		}
		if id := int(binary.BigEndian.Uint32(buf)); id != i {
			t.Fatalf("got packet %d, want %d", id, i)
		}
		if el := time.Since(sent[i]); el < delay {
			t.Fatalf("packet %d arrived after %v, before its %v delay", i, el, delay)
		}
	}
	// The delivery goroutine counts a packet after handing it to the pipe, so the reader can
	// get there first: wait for the count with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := ep.(*ImpairEndpoint).Stats()
		if st.Delivered == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}
