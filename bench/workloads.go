package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const basePort = 5001

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// acceptOne accepts one connection with a time limit.
func acceptOne(ln net.Listener, limit time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-t.C:
		ln.Close()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, errors.New("accept timed out")
	}
}

// dialAccept makes one connection and returns both ends.
func dialAccept(sys System, ln net.Listener, port int) (client, server net.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := acceptOne(ln, 10*time.Second)
		ch <- res{c, err}
	}()
	client, err = sys.Dial(ctx, port)
	r := <-ch
	if err != nil {
		if r.c != nil {
			r.c.Close()
		}
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	if r.err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("accept: %w", r.err)
	}
	noDelay(client)
	noDelay(r.c)
	return client, r.c, nil
}

// noDelay turns Nagle's algorithm off where the connection lets us, so every
// system runs with Go's net default (TCP_NODELAY on). netstack's default is
// already off (TCPDelayEnabled false).
func noDelay(c net.Conn) {
	if nd, ok := c.(interface{ SetNoDelay(bool) error }); ok {
		nd.SetNoDelay(true)
	}
}

// isTimeout reports whether err is a deadline expiry (Go's net and ustack
// return os.ErrDeadlineExceeded, gonet an error with Timeout() true).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// BulkResult is one bulk transfer's outcome.
type BulkResult struct {
	Bytes   int64
	Elapsed time.Duration
	CPU     time.Duration // process user+sys over the transfer
}

// Gbps is the goodput in Gbit/s.
func (r BulkResult) Gbps() float64 { return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9 }

// CPUPerGB is CPU seconds per 10^9 bytes moved.
func (r BulkResult) CPUPerGB() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return r.CPU.Seconds() / (float64(r.Bytes) / 1e9)
}

// bulk sends data one way over one connection for dur and counts the bytes
// the receiver got within that window (goodput). Both loops stop at the
// window's end: the receiver by a read deadline, the sender when its writes
// fail after the connections are closed (or by its own write deadline).
func bulk(sys System, dur time.Duration) (BulkResult, error) {
	ln, err := sys.Listen(basePort)
	if err != nil {
		return BulkResult{}, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	client, server, err := dialAccept(sys, ln, basePort)
	if err != nil {
		return BulkResult{}, err
	}
	defer client.Close()
	defer server.Close()

	cpu0 := cpuTime()
	start := time.Now()
	end := start.Add(dur)
	server.SetReadDeadline(end)
	client.SetWriteDeadline(end.Add(5 * time.Second))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 128<<10)
		for time.Now().Before(end) {
			if _, err := client.Write(buf); err != nil {
				return
			}
		}
	}()
	var n int64
	var rerr error
	buf := make([]byte, 256<<10)
	for {
		m, err := server.Read(buf)
		n += int64(m)
		if err != nil {
			rerr = err
			break
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	// Unblock a writer stuck on a full window.
	client.Close()
	server.Close()
	wg.Wait()
	if !isTimeout(rerr) {
		// Only the window's end may stop the receiver.
		return BulkResult{}, fmt.Errorf("receiver stopped after %v, %d bytes: %w", elapsed.Round(time.Millisecond), n, rerr)
	}
	if n == 0 {
		return BulkResult{}, errors.New("no data received")
	}
	return BulkResult{Bytes: n, Elapsed: elapsed, CPU: cpu}, nil
}

// rr runs 1-byte request/response transactions on conns connections, each
// with its own client goroutine and server echo goroutine, for dur. It
// returns transactions per second over all connections.
func rr(sys System, conns int, dur time.Duration) (rate, cpuPer float64, err error) {
	ln, err := sys.Listen(basePort)
	if err != nil {
		return 0, 0, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	clients := make([]net.Conn, 0, conns)
	servers := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		for _, c := range servers {
			c.Close()
		}
	}()
	for range conns {
		c, s, err := dialAccept(sys, ln, basePort)
		if err != nil {
			return 0, 0, err
		}
		clients = append(clients, c)
		servers = append(servers, s)
	}
	cpu0 := cpuTime()
	start := time.Now()
	end := start.Add(dur)
	var total atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range conns {
		c, s := clients[i], servers[i]
		c.SetDeadline(end.Add(5 * time.Second))
		s.SetDeadline(end.Add(5 * time.Second))
		wg.Add(2)
		go func() { // echo server
			defer wg.Done()
			b := make([]byte, 1)
			for {
				if _, err := io.ReadFull(s, b); err != nil {
					return
				}
				if _, err := s.Write(b); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer c.Close()
			b := []byte{'x'}
			var n int64
			for time.Now().Before(end) {
				if _, err := c.Write(b); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("write after %d transactions: %w", n, err))
					break
				}
				if _, err := io.ReadFull(c, b); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("read after %d transactions: %w", n, err))
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, e
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	n := total.Load()
	if n == 0 {
		return 0, 0, errors.New("no transactions")
	}
	return float64(n) / elapsed.Seconds(), cpu.Seconds() * 1e6 / float64(n), nil
}

// connRate opens and closes connections for dur (at most maxConns) from
// workers concurrent clients: a client dials and closes at once; the server
// accepts, reads to EOF and closes. It returns completed connections per
// second (dial + accept + both closes).
func connRate(sys System, workers int, dur time.Duration, maxConns int64) (rate, cpuPer float64, err error) {
	ln, err := sys.Listen(basePort)
	if err != nil {
		return 0, 0, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var served atomic.Int64
	var srv sync.WaitGroup
	srv.Add(1)
	go func() {
		defer srv.Done()
		var hw sync.WaitGroup
		defer hw.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hw.Add(1)
			go func() {
				defer hw.Done()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var b [16]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						break
					}
				}
				c.Close()
				served.Add(1)
			}()
		}
	}()
	cpu0 := cpuTime()
	start := time.Now()
	end := start.Add(dur)
	var dialed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && dialed.Add(1) <= maxConns {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := sys.Dial(ctx, basePort)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	// Wait (bounded) for the server side to finish the connections dialed.
	deadline := time.Now().Add(10 * time.Second)
	want := min(dialed.Load(), maxConns)
	for served.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	n := served.Load()
	ln.Close()
	srv.Wait()
	if e, ok := firstErr.Load().(error); ok && n == 0 {
		return 0, 0, e
	}
	if n == 0 {
		return 0, 0, errors.New("no connections")
	}
	return float64(n) / elapsed.Seconds(), cpu.Seconds() * 1e6 / float64(n), nil
}

// MemResult is the Go heap growth per idle established connection.
type MemResult struct {
	Conns              int
	HeapAllocPerConn   float64 // bytes
	HeapInusePerConn   float64 // bytes
	SetupRate          float64 // connections/s while opening them
	BaseAlloc, BaseUse uint64
}

func heapAfterGC() runtime.MemStats {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms
}

// memory opens n idle connections and measures the Go heap they hold after
// GC: both ends (client and server stack state plus the net.Conn values the
// application holds), divided by n. The system and its listeners exist
// before the baseline is taken, so their fixed cost is excluded.
func memory(sys System, n int, limit time.Duration) (MemResult, error) {
	const perListener = 20000
	nl := (n + perListener - 1) / perListener
	lns := make([]net.Listener, 0, nl)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range nl {
		ln, err := sys.Listen(basePort + i)
		if err != nil {
			return MemResult{}, fmt.Errorf("listen: %w", err)
		}
		lns = append(lns, ln)
	}
	clients := make([]net.Conn, n)
	servers := make([][]net.Conn, nl)
	var accepted atomic.Int64
	var aw sync.WaitGroup
	for i, ln := range lns {
		servers[i] = make([]net.Conn, 0, perListener)
		aw.Add(1)
		go func() {
			defer aw.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				servers[i] = append(servers[i], c)
				accepted.Add(1)
			}
		}()
	}
	base := heapAfterGC()
	start := time.Now()
	end := start.Add(limit)
	const workers = 16
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ctx, cancel := context.WithDeadline(context.Background(), end)
				c, err := sys.Dial(ctx, basePort+i%nl)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("dial #%d: %w", i, err))
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	for accepted.Load() < int64(n) && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
	setup := time.Since(start)
	got := accepted.Load()
	// The connections are not closed one by one: closing 2n endpoints takes
	// longer than the measurement in some stacks. The caller closes the
	// whole system, which aborts them.
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
		aw.Wait()
	}()
	if got < int64(n) {
		if e, ok := firstErr.Load().(error); ok {
			return MemResult{}, fmt.Errorf("%d of %d connections: %w", got, n, e)
		}
		return MemResult{}, fmt.Errorf("only %d of %d connections within %v", got, n, limit)
	}
	// Let handshake leftovers (delayed ACKs, timers) settle.
	time.Sleep(200 * time.Millisecond)
	after := heapAfterGC()
	runtime.KeepAlive(clients)
	runtime.KeepAlive(servers)
	return MemResult{
		Conns:            n,
		HeapAllocPerConn: (float64(after.HeapAlloc) - float64(base.HeapAlloc)) / float64(n),
		HeapInusePerConn: (float64(after.HeapInuse) - float64(base.HeapInuse)) / float64(n),
		SetupRate:        float64(n) / setup.Seconds(),
		BaseAlloc:        base.HeapAlloc,
		BaseUse:          base.HeapInuse,
	}, nil
}
