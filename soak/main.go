// Command soak runs mixed TCP traffic between two ustack Stacks joined by an
// impaired in-memory link for a long time and checks that every byte
// arrives intact (SHA-256 per connection), that no connection, timer,
// goroutine or memory leaks, and that every connection is gone once
// TIME-WAIT has passed.
//
//	go run ./soak -duration 1h
//
// It is not part of `go test ./...`. The exit status is non-zero when a
// check fails.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

var memProfile string

type stats struct {
	conns, aborted, bytesOut, bytesIn atomic.Int64
	integrity, errs, expectedResets   atomic.Int64
	dialErrs, halfOpen                atomic.Int64
}

func main() {
	duration := flag.Duration("duration", time.Minute, "how long to generate traffic")
	workers := flag.Int("workers", 16, "concurrent client connections")
	seed := flag.Int64("seed", 1, "random seed (traffic sizes and impairments)")
	loss := flag.Float64("loss", 0.01, "packet loss probability per direction")
	delay := flag.Duration("delay", time.Millisecond, "one-way delay")
	timeWait := flag.Duration("timewait", 10*time.Second, "TIME-WAIT length (Linux: 60s)")
	maxSize := flag.Int("maxsize", 4<<20, "largest transfer per connection in bytes")
	sack := flag.Bool("sack", true, "net.ipv4.tcp_sack on both stacks")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile after the stacks are closed")
	flag.Parse()
	if err := run(*duration, *workers, *seed, *loss, *delay, *timeWait, *maxSize, *sack); err != nil {
		fmt.Fprintln(os.Stderr, "soak: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("soak: PASS")
}

func memNow() (heap uint64, goroutines int) {
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, runtime.NumGoroutine()
}

func run(duration time.Duration, workers int, seed int64, loss float64, delay, timeWait time.Duration, maxSize int, sack bool) error {
	heap0, gr0 := memNow()
	fmt.Printf("soak: baseline before stacks: heap %d KiB, goroutines %d\n", heap0/1024, gr0)

	cfg := tcp.DefaultConfig()
	cfg.TimeWaitLen = timeWait
	cfg.SACK = sack
	a, b := link.NewPipe(link.PipeConfig{MTU: 1500})
	im := link.Impairment{Delay: delay, Jitter: delay / 2, Loss: loss, Reorder: 0.01, Duplicate: 0.005, Corrupt: 0.001, Seed: seed}
	ia := link.NewImpairEndpoint(a, im)
	im.Seed = seed + 1
	ib := link.NewImpairEndpoint(b, im)
	var sa, sb *ustack.Stack
	linkStats := func() {
		fmt.Printf("soak: link A->B impair %+v pipe %+v\n", ia.Stats(), a.Stats())
		fmt.Printf("soak: link B->A impair %+v pipe %+v\n", ib.Stats(), b.Stats())
		fmt.Printf("soak: IP A %+v\nsoak: IP B %+v\n", sa.Stats().IP, sb.Stats().IP)
	}
	sa, err := ustack.New(ustack.Config{TCP: cfg})
	if err != nil {
		return err
	}
	sb, err = ustack.New(ustack.Config{TCP: cfg})
	if err != nil {
		return err
	}
	if err := sa.AddInterface("p0", ia, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")); err != nil {
		return err
	}
	if err := sb.AddInterface("p0", ib, netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")); err != nil {
		return err
	}
	ln, err := sb.Listen("tcp", ":7")
	if err != nil {
		return err
	}
	// Warm up: one connection starts the links' lazily started delivery
	// goroutines, which belong to the baseline.
	go func() {
		if c, err := ln.Accept(); err == nil {
			serve(c, &stats{})
		}
	}()
	client(sa, rand.New(rand.NewSource(seed)), 0, 1, &stats{})
	for len(conns(sa))+len(conns(sb)) > 0 {
		time.Sleep(50 * time.Millisecond) // TIME-WAIT of the warm-up connection
	}
	heap1, gr1 := memNow()
	fmt.Printf("soak: baseline with stacks and listener: heap %d KiB, goroutines %d\n", heap1/1024, gr1)

	var st stats
	var srvWG sync.WaitGroup
	srvWG.Add(1)
	go func() {
		defer srvWG.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srvWG.Add(1)
			go func() {
				defer srvWG.Done()
				serve(c, &st)
			}()
		}
	}()

	start := time.Now()
	stop := start.Add(duration)
	var cliWG sync.WaitGroup
	for w := 0; w < workers; w++ {
		cliWG.Add(1)
		go func(w int) {
			defer cliWG.Done()
			rng := rand.New(rand.NewSource(seed*1000 + int64(w)))
			for time.Now().Before(stop) {
				client(sa, rng, w, maxSize, &st)
			}
		}(w)
	}
	tick := time.NewTicker(30 * time.Second)
	dumped := false
	done := make(chan struct{})
	go func() { cliWG.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			if time.Now().After(stop.Add(time.Minute)) && !dumped {
				dumped = true
				dump("A", sa)
				dump("B", sb)
				linkStats()
			}
			fmt.Printf("soak: %v: conns %d (aborted %d), out %d MB, in %d MB, integrity errors %d, other errors %d, live conns A %d B %d, goroutines %d\n",
				time.Since(start).Round(time.Second), st.conns.Load(), st.aborted.Load(), st.bytesOut.Load()>>20, st.bytesIn.Load()>>20,
				st.integrity.Load(), st.errs.Load(), len(sa.Connections()), len(sb.Connections()), runtime.NumGoroutine())
		}
	}
	tick.Stop()
	trafficEnd := time.Now()
	linkStats()

	// Every connection must disappear once TIME-WAIT (and any FIN-WAIT-2 /
	// retransmission timeouts of aborted peers) are over.
	limit := trafficEnd.Add(2*timeWait + 2*time.Minute)
	var left []ustack.ConnInfo
	for {
		left = append(conns(sa), conns(sb)...)
		if len(left) == 0 || time.Now().After(limit) {
			break
		}
		time.Sleep(250 * time.Millisecond) // polling a condition with a deadline
	}
	drained := time.Since(trafficEnd)
	ln.Close()
	srvWG.Wait()
	heap2, gr2 := memNow()
	stA, stB := sa.Stats(), sb.Stats()
	sa.Close()
	sb.Close()
	// Drop every reference to the stacks and links, so that what remains
	// on the heap afterwards is what they leaked to globals.
	sa, sb, ia, ib, a, b, ln, linkStats = nil, nil, nil, nil, nil, nil, nil, nil
	heap3, gr3 := memNow()
	if memProfile != "" {
		if f, err := os.Create(memProfile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}

	fmt.Printf("soak: duration %v, workers %d, loss %.3f, delay %v, seed %d, sack %v\n", duration, workers, loss, delay, seed, sack)
	fmt.Printf("soak: connections %d (aborted on purpose %d), bytes sent %d, bytes echoed back %d\n",
		st.conns.Load(), st.aborted.Load(), st.bytesOut.Load(), st.bytesIn.Load())
	fmt.Printf("soak: integrity errors %d, unexpected errors %d (dial %d), expected resets %d, half-open after a lost RST %d\n",
		st.integrity.Load(), st.errs.Load(), st.dialErrs.Load(), st.expectedResets.Load(), st.halfOpen.Load())
	fmt.Printf("soak: A: ActiveOpens %d RetransSegs %d TCPTimeouts %d InCsumErrors %d IP InCsumErrors %d; B: PassiveOpens %d RetransSegs %d InCsumErrors %d\n",
		stA.TCP.ActiveOpens, stA.TCP.RetransSegs, stA.TCP.TCPTimeouts, stA.TCP.InCsumErrors, stA.IP.InCsumErrors,
		stB.TCP.PassiveOpens, stB.TCP.RetransSegs, stB.TCP.InCsumErrors)
	fmt.Printf("soak: connections left %d after %v of draining\n", len(left), drained.Round(time.Millisecond))
	fmt.Printf("soak: heap KiB: before stacks %d, idle stacks %d, after traffic+drain %d, after Close %d\n", heap0/1024, heap1/1024, heap2/1024, heap3/1024)
	fmt.Printf("soak: goroutines: before stacks %d, idle stacks %d, after traffic+drain %d, after Close %d\n", gr0, gr1, gr2, gr3)

	var errs []error
	if n := st.integrity.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d connections with corrupted or missing data", n))
	}
	if n := st.errs.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d unexpected connection errors", n))
	}
	if st.conns.Load() == 0 {
		errs = append(errs, errors.New("no connection completed"))
	}
	for i, c := range left {
		if i == 10 {
			break
		}
		errs = append(errs, fmt.Errorf("leaked connection %v -> %v %v", c.Local, c.Remote, c.State))
	}
	if gr2 > gr1 {
		errs = append(errs, fmt.Errorf("goroutines %d after draining, %d before traffic", gr2, gr1))
	}
	if gr3 > gr0 {
		errs = append(errs, fmt.Errorf("goroutines %d after Close, %d before the stacks", gr3, gr0))
	}
	const slack = 32 << 20
	if heap2 > heap1+slack {
		errs = append(errs, fmt.Errorf("heap %d KiB after draining, %d KiB before traffic", heap2/1024, heap1/1024))
	}
	if heap3 > heap0+slack {
		errs = append(errs, fmt.Errorf("heap %d KiB after Close, %d KiB before the stacks", heap3/1024, heap0/1024))
	}
	return errors.Join(errs...)
}

// dump prints the connections of a stack that outlive the traffic phase.
func dump(name string, s *ustack.Stack) {
	for _, c := range conns(s) {
		in := c.Info
		fmt.Printf("soak: stalled %s %v -> %v %v recvq %d sendq %d snd.una %d snd.nxt %d rcv.nxt %d snd.wnd %d rcv.wnd %d rto %v retrans %d probes %d unacked %d lost %d ca %v cwnd %d\n",
			name, c.Local, c.Remote, c.State, c.RecvQ, c.SendQ, in.SndUna-in.ISS, in.SndNxt-in.ISS, in.RcvNxt-in.IRS, in.SndWnd, in.RcvWnd, in.RTO,
			in.Retransmits, in.Probes, in.Unacked, in.Lost, in.CAState, in.SndCwnd)
	}
}

// conns lists the connections of s (listeners excluded).
func conns(s *ustack.Stack) []ustack.ConnInfo {
	var out []ustack.ConnInfo
	for _, c := range s.Connections() {
		if c.State != tcp.Listen {
			out = append(out, c)
		}
	}
	return out
}

// serve echoes everything back, then closes its write side. A connection
// idle for a minute is given up: when the RST of a client that aborted is
// lost, nothing tells the server (no keepalive), a half-open connection
// that is expected (first byte 'A' marks connections the client aborts).
func serve(c net.Conn, st *stats) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	var first byte
	for {
		c.SetDeadline(time.Now().Add(time.Minute))
		n, err := c.Read(buf)
		if n > 0 {
			if first == 0 {
				first = buf[0]
			}
			if _, werr := c.Write(buf[:n]); werr != nil && err == nil {
				err = werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				st.expectedResets.Add(1)
			case first == 'A' && errors.Is(err, os.ErrDeadlineExceeded):
				st.halfOpen.Add(1)
			default:
				st.errs.Add(1)
				fmt.Fprintln(os.Stderr, "soak: server:", err)
				if tc, ok := c.(*ustack.TCPConn); ok {
					in := tc.Info()
					fmt.Fprintf(os.Stderr, "soak: server conn: first byte %q state %v bytes received %d sent %d acked %d rcv.nxt %d snd.una %d snd.nxt %d rcv.wnd %d snd.wnd %d retrans %d\n",
						first, in.State, in.BytesReceived, in.BytesSent, in.BytesAcked, in.RcvNxt-in.IRS, in.SndUna-in.ISS, in.SndNxt-in.ISS, in.RcvWnd, in.SndWnd, in.TotalRetrans)
				}
			}
			return
		}
	}
	if tc, ok := c.(*ustack.TCPConn); ok {
		tc.CloseWrite()
	}
}

// client opens one connection, sends a random amount of random data,
// reads the echo and compares SHA-256 digests. About 5% of the connections
// are aborted half-way on purpose (RST).
func client(s *ustack.Stack, rng *rand.Rand, w, maxSize int, st *stats) {
	var size int
	switch r := rng.Intn(100); {
	case r < 10:
		size = 0
	case r < 60:
		size = 1 + rng.Intn(4096)
	case r < 90:
		size = 1 + rng.Intn(256<<10)
	default:
		size = 1 + rng.Intn(maxSize)
	}
	abort := rng.Intn(100) < 5
	dst := "10.0.0.2:7"
	if w%2 == 1 {
		dst = "[fd00::2]:7"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := s.DialContext(ctx, "tcp", dst)
	cancel()
	if err != nil {
		st.errs.Add(1)
		st.dialErrs.Add(1)
		fmt.Fprintln(os.Stderr, "soak: dial:", err)
		return
	}
	tc := c.(*ustack.TCPConn)
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if abort {
		size = max(size, 2)
	}
	data := make([]byte, size)
	rng.Read(data)
	if size > 0 {
		data[0] = 'N'
		if abort {
			data[0] = 'A'
		}
	}
	if abort {
		// Small enough to fit in the buffers: nobody reads the echo.
		n := min(size/2, 32<<10)
		c.Write(data[:n])
		tc.SetLinger(0)
		c.Close()
		st.aborted.Add(1)
		st.conns.Add(1)
		return
	}
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = tc.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	err = <-werr
	c.Close()
	st.conns.Add(1)
	st.bytesOut.Add(int64(size))
	st.bytesIn.Add(n)
	if err != nil || rerr != nil {
		st.errs.Add(1)
		fmt.Fprintf(os.Stderr, "soak: client %d: write %v read %v (%d of %d bytes back)\n", w, err, rerr, n, size)
		return
	}
	if n != int64(size) || [32]byte(h.Sum(nil)) != want {
		st.integrity.Add(1)
		fmt.Fprintf(os.Stderr, "soak: client %d: echo of %d bytes: got %d bytes, digest match %v\n", w, size, n, [32]byte(h.Sum(nil)) == want)
	}
}
