package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func pkt(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	for j := 4; j < size; j++ {
		b[j] = byte(i + j)
	}
	return b
}

func TestPipeOrderingBothDirections(t *testing.T) {
	a, b := Pipe(1500)
	defer a.Close()
	for i := range 100 {
		if err := a.WritePacket(pkt(i, 20+i)); err != nil {
			t.Fatal(err)
		}
		if err := b.WritePacket(pkt(1000+i, 40)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	for i := range 100 {
		n, err := b.ReadPacket(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], pkt(i, 20+i)) {
			t.Fatalf("b got packet %d wrong: % x", i, buf[:n])
		}
		n, err = a.ReadPacket(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], pkt(1000+i, 40)) {
			t.Fatalf("a got packet %d wrong", i)
		}
	}
}

func TestPipeWriterBufferReuse(t *testing.T) {
	a, b := Pipe(1500)
	defer a.Close()
	p := []byte{1, 2, 3}
	a.WritePacket(p)
	p[0] = 9 // the pipe must have copied it
	buf := make([]byte, 10)
	n, _ := b.ReadPacket(buf)
	if !bytes.Equal(buf[:n], []byte{1, 2, 3}) {
		t.Fatalf("got % x", buf[:n])
	}
}

func TestPipeMTUAndShortBuffer(t *testing.T) {
	a, b := Pipe(100)
	defer a.Close()
	if err := a.WritePacket(make([]byte, 101)); !errors.Is(err, ErrPacketTooBig) {
		t.Fatalf("oversize write: %v", err)
	}
	if a.MTU() != 100 {
		t.Fatal("MTU")
	}
	a.WritePacket(pkt(7, 50))
	a.WritePacket(pkt(8, 10))
	buf := make([]byte, 20)
	n, err := b.ReadPacket(buf)
	if n != 20 || !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("short read: n=%d err=%v", n, err)
	}
	n, err = b.ReadPacket(buf)
	if err != nil || !bytes.Equal(buf[:n], pkt(8, 10)) {
		t.Fatalf("next read after truncation: n=%d err=%v", n, err)
	}
}

func TestPipeCloseUnblocksReaders(t *testing.T) {
	a, b := Pipe(1500)
	errs := make(chan error, 2)
	go func() { _, err := a.ReadPacket(make([]byte, 1500)); errs <- err }()
	go func() { _, err := b.ReadPacket(make([]byte, 1500)); errs <- err }()
	a.Close()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not unblock a reader")
		}
	}
	if err := a.WritePacket([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on closed end: %v", err)
	}
	if err := b.WritePacket([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to closed peer: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestPipePeerDrainsAfterClose(t *testing.T) {
	a, b := Pipe(1500)
	a.WritePacket(pkt(1, 30))
	a.WritePacket(pkt(2, 30))
	a.Close()
	buf := make([]byte, 1500)
	for i := 1; i <= 2; i++ {
		n, err := b.ReadPacket(buf)
		if err != nil || !bytes.Equal(buf[:n], pkt(i, 30)) {
			t.Fatalf("drain %d: %v", i, err)
		}
	}
	if _, err := b.ReadPacket(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after drain: %v", err)
	}
	// The closed end itself fails at once, even with packets queued.
	c, d := Pipe(1500)
	d.WritePacket([]byte{1})
	c.Close()
	if _, err := c.ReadPacket(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on closed end: %v", err)
	}
}

func TestPipeDropTail(t *testing.T) {
	a, b := NewPipe(PipeConfig{MTU: 1500, QueueLen: 4})
	defer a.Close()
	for i := range 10 {
		if err := a.WritePacket(pkt(i, 20)); err != nil {
			t.Fatal(err)
		}
	}
	if st := a.Stats(); st.Sent != 4 || st.Dropped != 6 {
		t.Fatalf("stats %+v, want Sent 4 Dropped 6", st)
	}
	buf := make([]byte, 1500)
	for i := range 4 {
		n, _ := b.ReadPacket(buf)
		if !bytes.Equal(buf[:n], pkt(i, 20)) {
			t.Fatalf("packet %d: tail drop must keep the oldest", i)
		}
	}
}

func TestPipeBackpressure(t *testing.T) {
	a, b := NewPipe(PipeConfig{MTU: 1500, QueueLen: 2, Backpressure: true})
	defer a.Close()
	const total = 1000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			if err := a.WritePacket(pkt(i, 64)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	buf := make([]byte, 1500)
	for i := range total {
		n, err := b.ReadPacket(buf)
		if err != nil || !bytes.Equal(buf[:n], pkt(i, 64)) {
			t.Fatalf("packet %d: err %v", i, err)
		}
	}
	wg.Wait()
	if st := a.Stats(); st.Dropped != 0 || st.Sent != total {
		t.Fatalf("stats %+v", st)
	}
	// A writer blocked on a full queue is released by Close.
	c, d := NewPipe(PipeConfig{MTU: 1500, QueueLen: 1, Backpressure: true})
	c.WritePacket([]byte{1})
	done := make(chan error)
	go func() { done <- c.WritePacket([]byte{2}) }()
	d.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked write after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the blocked writer")
	}
}

func TestPipeBatch(t *testing.T) {
	a, b := NewPipe(PipeConfig{MTU: 1500, QueueLen: 16})
	defer a.Close()
	var pkts [][]byte
	for i := range 20 {
		pkts = append(pkts, pkt(i, 100))
	}
	n, err := a.WritePackets(pkts)
	if n != 20 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	if st := a.Stats(); st.Sent != 16 || st.Dropped != 4 {
		t.Fatalf("stats %+v", st)
	}
	bufs := make([][]byte, 10)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, 10)
	got := 0
	for got < 16 {
		n, err := b.ReadPackets(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || n > 10 {
			t.Fatalf("ReadPackets n=%d", n)
		}
		for i := range n {
			if !bytes.Equal(bufs[i][:sizes[i]], pkt(got, 100)) {
				t.Fatalf("batch packet %d wrong", got)
			}
			got++
		}
	}
	big := [][]byte{pkt(1, 10), make([]byte, 2000), pkt(2, 10)}
	if n, err := a.WritePackets(big); n != 1 || !errors.Is(err, ErrPacketTooBig) {
		t.Fatalf("oversize in batch: %d %v", n, err)
	}
	a.Close()
	b.ReadPackets(bufs, sizes) // the one good packet
	if _, err := b.ReadPackets(bufs, sizes); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("batch read after close: %v", err)
	}
}

func TestPipeConcurrent(t *testing.T) {
	a, b := NewPipe(PipeConfig{MTU: 1500, Backpressure: true})
	defer a.Close()
	const writers, per = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				a.WritePacket(pkt(w<<24|i, 60))
			}
		}()
	}
	next := make([]int, writers)
	buf := make([]byte, 1500)
	for range writers * per {
		n, err := b.ReadPacket(buf)
		if err != nil || n != 60 {
			t.Fatal(n, err)
		}
		id := binary.BigEndian.Uint32(buf)
		w, i := int(id>>24), int(id&0xffffff)
		if next[w] != i {
			t.Fatalf("writer %d: got %d want %d (per-writer order)", w, i, next[w])
		}
		next[w]++
	}
	wg.Wait()
}

func benchmarkPipe(b *testing.B, size int, batch int) {
	a, c := NewPipe(PipeConfig{MTU: 65535, Backpressure: true})
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs := make([][]byte, batch)
		for i := range bufs {
			bufs[i] = make([]byte, 65535)
		}
		sizes := make([]int, batch)
		for {
			var err error
			if batch == 1 {
				_, err = c.ReadPacket(bufs[0])
			} else {
				_, err = c.ReadPackets(bufs, sizes)
			}
			if err != nil {
				return
			}
		}
	}()
	b.ResetTimer()
	if batch == 1 {
		for range b.N {
			a.WritePacket(p)
		}
	} else {
		pkts := make([][]byte, batch)
		for i := range pkts {
			pkts[i] = p
		}
		for i := 0; i < b.N; i += batch {
			a.WritePackets(pkts[:min(batch, b.N-i)])
		}
	}
	a.Close()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func BenchmarkPipe(b *testing.B) {
	b.Run("1500B", func(b *testing.B) { benchmarkPipe(b, 1500, 1) })
	b.Run("1500B-batch64", func(b *testing.B) { benchmarkPipe(b, 1500, 64) })
	b.Run("64B", func(b *testing.B) { benchmarkPipe(b, 64, 1) })
	b.Run("9000B-batch64", func(b *testing.B) { benchmarkPipe(b, 9000, 64) })
}

// BenchmarkPipePingPong measures one round trip a -> b -> a of a 100-byte
// packet: the cost when readers sleep between packets.
func BenchmarkPipePingPong(b *testing.B) {
	a, c := Pipe(1500)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := c.ReadPacket(buf)
			if err != nil {
				return
			}
			c.WritePacket(buf[:n])
		}
	}()
	p := make([]byte, 100)
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for range b.N {
		a.WritePacket(p)
		if _, err := a.ReadPacket(buf); err != nil {
			b.Fatal(err)
		}
	}
	a.Close()
}

func TestZeroAllocsSteadyState(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	a, b := NewPipe(PipeConfig{MTU: 1500})
	defer a.Close()
	p := make([]byte, 1500)
	buf := make([]byte, 1500)
	bufs, sizes := [][]byte{buf}, []int{0}
	pkts := [][]byte{p}
	check := func(name string, f func()) {
		t.Helper()
		f() // warm up: slots and pools fill once
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per packet, want 0", name, n)
		}
	}
	check("Pipe WritePacket+ReadPacket", func() {
		a.WritePacket(p)
		b.ReadPacket(buf)
	})
	check("Pipe WritePackets+ReadPackets", func() {
		a.WritePackets(pkts)
		b.ReadPackets(bufs, sizes)
	})
	im := Impair(a, Impairment{Corrupt: 0.5, Seed: 1})
	check("Impair (inline path)", func() {
		im.WritePacket(p)
		b.ReadPacket(buf)
	})
	pc, err := Pcap(a, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	check("Pcap tap", func() {
		pc.WritePacket(p)
		b.ReadPacket(buf)
	})
}
