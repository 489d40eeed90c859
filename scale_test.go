package ustack

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestIdleConnectionsScale opens many idle connections between two stacks
// and checks that the number of goroutines does not grow with them (one
// timer goroutine and one reader per interface per stack), then reports
// the heap per connection. USTACK_SCALE sets the count (default 10000;
// 100000 for the full check).
func TestIdleConnectionsScale(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	n := 10000
	if raceEnabled {
		n = 2000
	}
	if v := os.Getenv("USTACK_SCALE"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	p := newPair(t, 1500)
	const nPorts = 8 // 28232 ephemeral ports per destination port
	var lns []*TCPListener
	for i := 0; i < nPorts; i++ {
		ln, err := p.B.ListenTCP("tcp4", fmt.Sprintf(":%d", 2000+i))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		lns = append(lns, ln)
	}
	var accMu sync.Mutex
	var accepted []*TCPConn
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.AcceptTCP()
				if err != nil {
					return
				}
				accMu.Lock()
				accepted = append(accepted, c)
				accMu.Unlock()
			}
		}()
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	start := time.Now()
	conns := make([]*TCPConn, n)
	var wg sync.WaitGroup
	const workers = 32
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := p.A.Dial("tcp4", fmt.Sprintf("10.0.0.2:%d", 2000+i%nPorts))
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c.(*TCPConn)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		accMu.Lock()
		got := len(accepted)
		accMu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d of %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	setup := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g := runtime.NumGoroutine()
	perConn := float64(after.HeapAlloc-before.HeapAlloc) / float64(2*n)
	t.Logf("%d connections (x2 ends) in %v (%.0f conn/s); heap %.0f bytes per connection end; goroutines %d -> %d; timers in heap A=%d B=%d",
		n, setup.Round(time.Millisecond), float64(n)/setup.Seconds(), perConn, goroutinesBefore, g,
		p.A.tcp.timers.len(), p.B.tcp.timers.len())
	sa, sb := p.A.Stats(), p.B.Stats()
	t.Logf("A: RetransSegs %d TCPSynRetrans %d; B: ListenOverflows %d ListenDrops %d RetransSegs %d", sa.TCP.RetransSegs, sa.TCP.TCPSynRetrans, sb.TCP.ListenOverflows, sb.TCP.ListenDrops, sb.TCP.RetransSegs)
	if g > goroutinesBefore+8 {
		t.Errorf("goroutines grew from %d to %d with %d connections", goroutinesBefore, g, n)
	}
	if st := p.A.Stats(); st.TCP.CurrEstab != int64(n) {
		t.Errorf("CurrEstab %d, want %d", st.TCP.CurrEstab, n)
	}
	runtime.KeepAlive(conns)
}
