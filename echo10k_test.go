package ustack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// echoMsg is connection i's message for round r: 1-4 KB of seeded
// pseudo-random bytes, regenerated on demand so the test keeps no copies.
func echoMsg(i, r int) []byte {
	rng := rand.New(rand.NewPCG(uint64(i), uint64(r)))
	b := make([]byte, 1024+rng.IntN(3*1024+1))
	cc := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(r)})
	cc.Read(b)
	return b
}

// TestEcho10k opens 10,000 connections (1,000 with -short) from one stack to
// a single listener on another over an in-memory pipe and keeps them all
// open at once. Each connection echoes a 1-4 KB message right after it
// connects; when all are established and idle the heap per connection is
// measured; then every connection echoes a second message while all are
// open; then all are closed and both stacks must drain to just the listener
// (TIME-WAIT shortened to 1 s). The whole test is bounded by a 120 s deadline
// and uses a fixed number of goroutines (64 client and 64 server workers).
func TestEcho10k(t *testing.T) {
	n := 10000
	if testing.Short() || raceEnabled {
		n = 1000
	}
	const workers = 64
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()

	cfg := tcp.DefaultConfig()
	cfg.TimeWaitLen = time.Second
	// A deep drop-tail queue: the stacks' receive loops write to each
	// other, so blocking backpressure could deadlock; drops (if any) are
	// recovered by TCP and counted below.
	pa, pb := link.NewPipe(link.PipeConfig{MTU: 1500, QueueLen: 32768})
	sa, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	defer sb.Close()
	if err := sa.AddInterface("p0", pa, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", pb, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	ln, err := sb.ListenTCP("tcp4", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The deadline bounds everything: when it passes, closing the stacks
	// fails every blocked Dial, Read and Write. (No per-connection
	// deadlines: their runtime timers would count in the heap figure.)
	stopOnDeadline := context.AfterFunc(ctx, func() {
		sa.Close()
		sb.Close()
	})
	defer stopOnDeadline()

	// fail records the first error and stops everything.
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		if firstErr.CompareAndSwap(nil, &err) {
			cancel()
		}
	}
	failed := func() bool { return firstErr.Load() != nil }

	// Server: one accept loop feeding 64 echo workers. A worker reads a
	// length-prefixed message and writes it back; the connection then
	// stays open and idle. No goroutine per connection.
	serverConns := make([]*TCPConn, 0, n)
	var srvMu sync.Mutex
	work := make(chan *TCPConn, n)
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			srvMu.Lock()
			serverConns = append(serverConns, c)
			srvMu.Unlock()
			work <- c
		}
	}()
	var echoed atomic.Int64
	var srvWG sync.WaitGroup
	for w := 0; w < workers; w++ {
		srvWG.Add(1)
		go func() {
			defer srvWG.Done()
			var hdr [4]byte
			buf := make([]byte, 4096)
			for c := range work {
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					fail(fmt.Errorf("server read header from %v: %w", c.RemoteAddr(), err))
					return
				}
				m := buf[:binary.BigEndian.Uint32(hdr[:])]
				if _, err := io.ReadFull(c, m); err != nil {
					fail(fmt.Errorf("server read from %v: %w", c.RemoteAddr(), err))
					return
				}
				if _, err := c.Write(m); err != nil {
					fail(fmt.Errorf("server write to %v: %w", c.RemoteAddr(), err))
					return
				}
				echoed.Add(1)
			}
		}()
	}
	defer func() {
		close(work)
		cancel() // closes the stacks, unblocking a worker stuck after a failure
		srvWG.Wait()
	}()

	// send writes connection i's round-r message; check reads the echo
	// back and compares. Messages fit in the receive windows, so a write
	// never waits for the server to read.
	send := func(c *TCPConn, i, r int) error {
		m := echoMsg(i, r)
		b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(m)), uint32(len(m)))
		_, err := c.Write(append(b, m...))
		return err
	}
	check := func(c *TCPConn, i, r int, buf []byte) error {
		m := echoMsg(i, r)
		if _, err := io.ReadFull(c, buf[:len(m)]); err != nil {
			return fmt.Errorf("conn %d round %d: read echo: %w", i, r, err)
		}
		if !bytes.Equal(buf[:len(m)], m) {
			return fmt.Errorf("conn %d round %d: echo differs from what was sent", i, r)
		}
		return nil
	}
	// parallel runs f(i) for i in [0,n) on the client workers.
	parallel := func(f func(i int, buf []byte) error) {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for i := w; i < n && !failed(); i += workers {
					if err := f(i, buf); err != nil {
						fail(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Round 1: dial, echo once, keep the connection open.
	conns := make([]*TCPConn, n)
	parallel(func(i int, buf []byte) error {
		c, err := sa.DialContext(ctx, "tcp4", "10.0.0.2:7")
		if err != nil {
			return fmt.Errorf("dial %d: %w", i, err)
		}
		tc := c.(*TCPConn)
		conns[i] = tc
		if err := send(tc, i, 0); err != nil {
			return fmt.Errorf("conn %d: write: %w", i, err)
		}
		return check(tc, i, 0, buf)
	})
	if p := firstErr.Load(); p != nil {
		t.Fatalf("round 1: %v", *p)
	}
	established := time.Since(start)

	// All n connections are established and idle on both ends.
	echoWaitUntil(t, deadline, "all connections established", func() bool {
		return sa.Stats().TCP.CurrEstab == int64(n) && sb.Stats().TCP.CurrEstab == int64(n)
	})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d connections established, each echoed once, in %v (RetransSegs A=%d B=%d); heap %d KB for %d idle connections: %.0f bytes per connection (both ends), %.0f per end; goroutines %d",
		n, established.Round(time.Millisecond), sa.Stats().TCP.RetransSegs, sb.Stats().TCP.RetransSegs,
		heap/1024, n, float64(heap)/float64(n), float64(heap)/float64(2*n), runtime.NumGoroutine())

	// Round 2: with all n open, every connection echoes again. All
	// writes go out first so no server worker waits on a client that
	// has not written yet.
	srvMu.Lock()
	sconns := append([]*TCPConn(nil), serverConns...)
	srvMu.Unlock()
	if len(sconns) != n {
		t.Fatalf("server accepted %d connections, want %d", len(sconns), n)
	}
	r2 := time.Now()
	parallel(func(i int, _ []byte) error {
		if err := send(conns[i], i, 1); err != nil {
			return fmt.Errorf("conn %d round 1: write: %w", i, err)
		}
		return nil
	})
	for _, c := range sconns {
		work <- c
	}
	parallel(func(i int, buf []byte) error { return check(conns[i], i, 1, buf) })
	if p := firstErr.Load(); p != nil {
		t.Fatalf("round 2: %v", *p)
	}
	if got := echoed.Load(); got != int64(2*n) {
		t.Fatalf("server echoed %d messages, want %d", got, 2*n)
	}
	t.Logf("second echo on all %d open connections in %v (RetransSegs A=%d B=%d)", n, time.Since(r2).Round(time.Millisecond),
		sa.Stats().TCP.RetransSegs, sb.Stats().TCP.RetransSegs)
	if st := sa.Stats(); st.TCP.CurrEstab != int64(n) {
		t.Errorf("client CurrEstab %d after round 2, want %d", st.TCP.CurrEstab, n)
	}

	// Close: clients first (they go through TIME-WAIT), then servers.
	cl := time.Now()
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatalf("client close: %v", err)
		}
	}
	for _, c := range sconns {
		// The server may see EOF first; either way Close must succeed.
		if err := c.Close(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("server close: %v", err)
		}
	}
	echoWaitUntil(t, deadline, "connections drain", func() bool {
		return len(sa.Connections()) == 0 && len(sb.Connections()) == 1
	})
	if ci := sb.Connections(); ci[0].State != tcp.Listen {
		t.Errorf("server left with %v, want only the listener", ci[0])
	}
	sa1, sb1 := sa.Stats(), sb.Stats()
	t.Logf("closed and drained in %v; total %v; A: ActiveOpens %d RetransSegs %d EstabResets %d; B: PassiveOpens %d ListenOverflows %d RetransSegs %d; pipe drops A->B %d B->A %d",
		time.Since(cl).Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		sa1.TCP.ActiveOpens, sa1.TCP.RetransSegs, sa1.TCP.EstabResets,
		sb1.TCP.PassiveOpens, sb1.TCP.ListenOverflows, sb1.TCP.RetransSegs,
		pa.Stats().Dropped, pb.Stats().Dropped)
	if sa1.TCP.ActiveOpens != uint64(n) || sb1.TCP.PassiveOpens != uint64(n) {
		t.Errorf("ActiveOpens %d PassiveOpens %d, want %d", sa1.TCP.ActiveOpens, sb1.TCP.PassiveOpens, n)
	}
	if sa1.TCP.EstabResets != 0 || sb1.TCP.EstabResets != 0 {
		t.Errorf("EstabResets A=%d B=%d, want 0", sa1.TCP.EstabResets, sb1.TCP.EstabResets)
	}
}

// echoWaitUntil polls cond until it holds or the deadline passes.
func echoWaitUntil(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
