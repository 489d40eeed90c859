package ustack

import (
	"io"
	"testing"
)

// BenchmarkTransfer streams data from A to B over a Pipe (MTU 1500) and
// reports throughput (b.SetBytes) and allocations per 64 KiB write.
func BenchmarkTransfer(b *testing.B) {
	p := newPair(b, 1500)
	c, s := p.dialAccept(b, "tcp", ":40", "10.0.0.2:40")
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, s)
		done <- n
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	if n := <-done; n != int64(b.N)*int64(len(buf)) {
		b.Fatalf("received %d bytes", n)
	}
	st := p.A.Stats()
	b.ReportMetric(float64(st.TCP.RetransSegs), "retrans")
	b.ReportMetric(float64(st.TCP.OutSegs)/float64(b.N), "segs/op")
}

// BenchmarkDialAccept measures connection setup and teardown between two
// stacks.
func BenchmarkDialAccept(b *testing.B) {
	p := newPair(b, 1500)
	// The client closes first: its ports sit in TIME-WAIT; allow reusing
	// them (tcp_tw_reuse=1) so the benchmark can open more than 28232.
	p.A.tcfg.TwReuse = 1
	ln, err := p.B.Listen("tcp", ":41")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := p.A.Dial("tcp", "10.0.0.2:41")
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
