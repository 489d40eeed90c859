package tcp

import (
	"testing"
	"time"
)

// BenchmarkBulkTransfer moves data from A to B through the engines with
// direct segment hand-off (no copies, no loss) and reports allocations per
// segment.
func BenchmarkBulkTransfer(b *testing.B) {
	cfg := DefaultConfig()
	now := t0
	a := NewActive(&cfg, Tuple{Local: addrA, Remote: addrB}, 1000, now)
	var srv *Conn
	var toA, toB []Segment
	var pool [2][][]byte
	cp := func(i int, s *Segment) Segment {
		d := *s
		if len(s.Payload) > 0 {
			var buf []byte
			if n := len(pool[i]); n > 0 {
				buf = pool[i][n-1][:0]
				pool[i] = pool[i][:n-1]
			}
			d.Payload = append(buf, s.Payload...)
		}
		return d
	}
	a.Output(now, func(s *Segment) { toB = append(toB, cp(0, s)) })
	srv, _ = NewPassive(&cfg, Tuple{Local: addrB, Remote: addrA}, 5000, &toB[0], now)
	toB = toB[:0]
	srv.Output(now, func(s *Segment) { toA = append(toA, cp(1, s)) })
	data := make([]byte, 64<<10)
	rbuf := make([]byte, 64<<10)
	segs := 0
	b.SetBytes(1448)
	b.ReportAllocs()
	b.ResetTimer()
	for segs < b.N {
		now = now.Add(10 * time.Microsecond)
		a.Send(data)
		for _, s := range toA {
			a.Input(&s, now)
			if s.Payload != nil {
				pool[1] = append(pool[1], s.Payload)
			}
		}
		toA = toA[:0]
		a.Output(now, func(s *Segment) { toB = append(toB, cp(0, s)) })
		for _, s := range toB {
			srv.Input(&s, now)
			if s.Payload != nil {
				pool[0] = append(pool[0], s.Payload)
				segs++
			}
		}
		toB = toB[:0]
		for srv.Readable() > 0 {
			srv.Recv(rbuf)
		}
		if d := srv.Deadline(); !d.IsZero() && !d.After(now) {
			srv.Timeout(now)
		}
		if d := a.Deadline(); !d.IsZero() && !d.After(now) {
			a.Timeout(now)
		}
		srv.Output(now, func(s *Segment) { toA = append(toA, cp(1, s)) })
	}
}
