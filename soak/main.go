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

var (
	memProfile string
	// stackA and stackB are the two stacks, for diagnostics of a stuck
	// connection (both ends' engine state).
	stackA, stackB *ustack.Stack
	idleTimeout    time.Duration
	abortPct       int
	// serverKeepAlive is the keepalive of the server's connections. When
	// a client resets a connection and both its data and its RST are
	// lost, the server has nothing to send and would never hear of it
	// (RFC 9293: a half-open connection); keepalive probes draw a RST
	// from the client's stack.
	serverKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}
	// aborted holds the local address of every client connection the
	// client reset on purpose (netip.AddrPort -> its state then, a
	// string; a reused port deletes it). When both the data and the RST of such a connection
	// are lost, the server never hears of it and has nothing to send: its
	// read times out, a half-open connection that is expected (no
	// keepalive). Every other read timeout is a failure.
	aborted sync.Map
)

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
	flag.IntVar(&abortPct, "abort", 5, "percentage of client connections reset on purpose half-way")
	flag.DurationVar(&idleTimeout, "idle", time.Minute, "read timeout: a connection idle this long is reported stuck")
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
	stackA, stackB = sa, sb
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
	aborted.Clear() // the harness's own records, not the stacks' memory
	heap2, gr2 := memNow()
	stA, stB := sa.Stats(), sb.Stats()
	sa.Close()
	sb.Close()
	// Drop every reference to the stacks and links, so that what remains
	// on the heap afterwards is what they leaked to globals.
	sa, sb, ia, ib, a, b, ln, linkStats = nil, nil, nil, nil, nil, nil, nil, nil
	stackA, stackB = nil, nil
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
		fmt.Printf("soak: stalled %s %v -> %v %v recvq %d sendq %d snd.una %d snd.nxt %d rcv.nxt %d snd.wnd %d rcv.wnd %d rto %v retrans %d probes %d unacked %d sacked %d lost %d ca %v cwnd %d engine timer %v stack timer %v\n",
			name, c.Local, c.Remote, c.State, c.RecvQ, c.SendQ, in.SndUna-in.ISS, in.SndNxt-in.ISS, in.RcvNxt-in.IRS, in.SndWnd, in.RcvWnd, in.RTO,
			in.Retransmits, in.Probes, in.Unacked, in.Sacked, in.Lost, in.CAState, in.SndCwnd, c.Deadline.Format(time.StampMilli), c.Scheduled.Format(time.StampMilli))
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

// serve echoes everything back, then closes its write side. When the RST
// of a client that aborted is lost, and its data too (or the server
// already echoed it all), the server has nothing to send: keepalive finds
// the half-open connection (ECONNRESET, an expected reset). A connection
// idle for -idle is given up: a failure with both ends' state printed,
// unless the client aborted it (a half-open connection whose keepalive
// probes or RSTs were lost too).
func serve(c net.Conn, st *stats) {
	defer c.Close()
	if tc, ok := c.(*ustack.TCPConn); ok {
		tc.SetKeepAliveConfig(serverKeepAlive)
	}
	buf := make([]byte, 32<<10)
	var first byte
	for {
		c.SetDeadline(time.Now().Add(idleTimeout))
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
			if first == 'A' {
				// The client reset this connection: a clean EOF
				// means the reset went unreported.
				st.errs.Add(1)
				fmt.Fprintf(os.Stderr, "soak: server: EOF on a connection the client reset\n")
				diagnose("server, EOF after a client abort", c)
				return
			}
			break
		}
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				st.expectedResets.Add(1)
			case errors.Is(err, os.ErrDeadlineExceeded) && wasAborted(c.RemoteAddr()):
				st.halfOpen.Add(1)
				diagnose("server, half-open after a client abort (expected)", c)
			default:
				st.errs.Add(1)
				fmt.Fprintf(os.Stderr, "soak: server: %v (first byte %q)\n", err, first)
				diagnose("server", c)
			}
			return
		}
	}
	if tc, ok := c.(*ustack.TCPConn); ok {
		tc.CloseWrite()
	}
}

// client opens one connection, sends a random amount of random data,
// reads the echo and compares SHA-256 digests. -abort percent (5) of the
// connections are aborted half-way on purpose (RST).
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
	abort := rng.Intn(100) < abortPct
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
		abortConn(tc, data)
		st.aborted.Add(1)
		st.conns.Add(1)
		return
	}
	if la, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		aborted.Delete(la)
	}
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(5 * time.Minute))
		_, err := c.Write(data)
		if err == nil {
			err = tc.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, idleReader{c})
	if rerr != nil {
		diagnose(fmt.Sprintf("client %d (read %d of %d)", w, n, size), c)
	}
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

// abortConn writes the first half of data (at most 32 KiB, so that it
// fits in the buffers: nobody reads the echo) and resets the connection
// (SO_LINGER 0), noting it in aborted.
func abortConn(tc *ustack.TCPConn, data []byte) {
	tc.SetDeadline(time.Now().Add(idleTimeout))
	n := min(len(data)/2, 32<<10)
	tc.Write(data[:n])
	in := tc.Info()
	tc.SetLinger(0)
	tc.Close()
	if la, err := netip.ParseAddrPort(tc.LocalAddr().String()); err == nil {
		aborted.Store(la, fmt.Sprintf("wrote %d bytes, then before the abort: %v segs out %d in %d bytes sent %d acked %d snd.una %d snd.nxt %d cwnd %d snd.wnd %d; after: %v",
			n, in.State, in.SegsOut, in.SegsIn, in.BytesSent, in.BytesAcked, in.SndUna-in.ISS, in.SndNxt-in.ISS, in.SndCwnd, in.SndWnd, tc.State()))
	}
}

// wasAborted reports whether the client connection from a was reset by
// the client on purpose.
func wasAborted(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	_, ok := aborted.Load(ap)
	return ok
}

// idleReader reads from a connection with a read deadline of idleTimeout
// from each call: a connection that delivers nothing for that long fails
// with os.ErrDeadlineExceeded.
type idleReader struct{ c net.Conn }

func (r idleReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(idleTimeout))
	return r.c.Read(p)
}

// diagnose prints the engine state of both ends of c's connection (as the
// stacks list them: tcp.Info, timers) when a read timed out or failed.
func diagnose(who string, c net.Conn) {
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	now := time.Now()
	fmt.Fprintf(os.Stderr, "soak: DIAG %s %v -> %v at %v\n", who, local, remote, now.Format(time.RFC3339Nano))
	for _, s := range []struct {
		name string
		st   *ustack.Stack
	}{{"A", stackA}, {"B", stackB}} {
		if s.st == nil {
			continue
		}
		found := false
		for _, ci := range s.st.Connections() {
			if !(ci.Local == local && ci.Remote == remote) && !(ci.Local == remote && ci.Remote == local) {
				continue
			}
			found = true
			in := ci.Info
			timer := func(t time.Time) string {
				if t.IsZero() {
					return "none"
				}
				return t.Sub(now).String()
			}
			fmt.Fprintf(os.Stderr, "soak: DIAG  %s %v -> %v %v recvq %d sendq %d engine timer in %s, stack timer in %s\n",
				s.name, ci.Local, ci.Remote, ci.State, ci.RecvQ, ci.SendQ, timer(ci.Deadline), timer(ci.Scheduled))
			fmt.Fprintf(os.Stderr, "soak: DIAG  %s snd.una %d snd.nxt %d rcv.nxt %d snd.wnd %d rcv.wnd %d notsent %d unacked %d sacked %d lost %d retrans %d ca %v cwnd %d ssthresh %d rto %v backoff %d retransmits %d probes %d\n",
				s.name, in.SndUna-in.ISS, in.SndNxt-in.ISS, in.RcvNxt-in.IRS, in.SndWnd, in.RcvWnd, in.NotsentBytes, in.Unacked, in.Sacked, in.Lost, in.Retrans,
				in.CAState, in.SndCwnd, in.SndSsthresh, in.RTO, in.Backoff, in.Retransmits, in.Probes)
			fmt.Fprintf(os.Stderr, "soak: DIAG  %s info %+v\n", s.name, in)
		}
		if !found {
			fmt.Fprintf(os.Stderr, "soak: DIAG  %s: no such connection\n", s.name)
		}
	}
	for _, a := range []netip.AddrPort{local, remote} {
		if v, ok := aborted.Load(a); ok {
			fmt.Fprintf(os.Stderr, "soak: DIAG  client %v aborted on purpose: %v\n", a, v)
		}
	}
}
