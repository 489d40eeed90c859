package ustack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// pollUntil polls cond until it holds or d passes; it reports whether it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// TestLimitMaxOrphans: with tcp_max_orphans = 2, A closes four connections
// whose peer never closes (A stays in FIN-WAIT). The first two stay as
// orphans; the other two are reset at close (TCPAbortOnMemory), and the
// peer sees ECONNRESET on them.
func TestLimitMaxOrphans(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.MaxOrphans = 2
	p := newPairCfg(t, cfg)
	ln, err := p.B.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 4
	var servers []*TCPConn
	for i := 0; i < n; i++ {
		c, err := p.A.Dial("tcp", "10.0.0.2:9")
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers = append(servers, s.(*TCPConn))
		c.Close()
	}
	finWait := func() int {
		k := 0
		for _, c := range p.A.Connections() {
			if c.State == tcp.FinWait1 || c.State == tcp.FinWait2 {
				k++
			}
		}
		return k
	}
	ok := pollUntil(5*time.Second, func() bool {
		return finWait() == 2 && len(p.A.Connections()) == 2 && p.A.Stats().TCP.TCPAbortOnMemory == 2
	})
	if !ok {
		t.Fatalf("tcp_max_orphans = 2 after 4 closes: %d in FIN-WAIT, %d connections, TCPAbortOnMemory %d; want 2, 2, 2",
			finWait(), len(p.A.Connections()), p.A.Stats().TCP.TCPAbortOnMemory)
	}
	if got := p.A.tcp.orphans.Load(); got != 2 {
		t.Errorf("orphan count %d, want 2", got)
	}
	// Like Linux, the excess closes send their FIN, then the RST: on B
	// only the first two connections remain, in CLOSE-WAIT.
	peer := func() (closeWait, all int) {
		for _, c := range p.B.Connections() {
			if c.State == tcp.CloseWait {
				closeWait++
			}
			if c.State != tcp.Listen {
				all++
			}
		}
		return
	}
	if !pollUntil(5*time.Second, func() bool { cw, all := peer(); return cw == 2 && all == 2 }) {
		cw, all := peer()
		t.Errorf("peer: %d connections in CLOSE-WAIT, %d in all; want 2 and 2 (the others reset)", cw, all)
	}
	if _, err := servers[3].Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write on a reset peer connection: %v, want ECONNRESET or EPIPE", err)
	}
	// Closing the peers ends the orphans (LAST-ACK on B, TIME-WAIT on A):
	// the count goes back to zero.
	for _, s := range servers {
		s.Close()
	}
	if !pollUntil(5*time.Second, func() bool { return p.A.tcp.orphans.Load() == 0 }) {
		t.Errorf("orphan count %d after the peers closed, want 0", p.A.tcp.orphans.Load())
	}
}

// newPairStacks is newPairCfg with whole stack configurations.
func newPairStacks(t *testing.T, ca, cb Config) *pair {
	t.Helper()
	a, b := link.Pipe(1500)
	sa, err := New(ca)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	if err := sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	return &pair{A: sa, B: sb}
}

// TestLimitMaxConnsDial: with MaxConns = 2, a third Dial fails at once
// with EMFILE; once one connection reached TIME-WAIT (not counted), Dial
// works again.
func TestLimitMaxConnsDial(t *testing.T) {
	p := newPairStacks(t, Config{MaxConns: 2}, Config{})
	ln, err := p.B.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 1)); c.Close() }()
		}
	}()
	var cs []net.Conn
	for i := 0; i < 2; i++ {
		c, err := p.A.Dial("tcp", "10.0.0.2:9")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	_, err = p.A.Dial("tcp", "10.0.0.2:9")
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("third dial with MaxConns = 2: %v, want EMFILE", err)
	}
	t.Logf("at the limit: %v", err)
	if n := p.A.Stats().TCP.ActiveOpens; n != 2 {
		t.Errorf("ActiveOpens %d, want 2", n)
	}
	cs[0].Close()
	timeWait := func() bool {
		for _, c := range p.A.Connections() {
			if c.State == tcp.TimeWait {
				return true
			}
		}
		return false
	}
	if !pollUntil(5*time.Second, timeWait) {
		t.Fatalf("no connection reached TIME-WAIT: %v", p.A.Connections())
	}
	c, err := p.A.Dial("tcp", "10.0.0.2:9")
	if err != nil {
		t.Fatalf("dial after one connection left: %v", err)
	}
	c.Close()
}

// TestLimitMaxConnsListen: a server with MaxConns = 1 drops the SYN of a
// second connection (ListenDrops), so that Dial times out; the first
// connection still works.
func TestLimitMaxConnsListen(t *testing.T) {
	p := newPairStacks(t, Config{}, Config{MaxConns: 1})
	ln, err := p.B.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := p.A.Dial("tcp", "10.0.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	before := p.B.Stats().TCP.ListenDrops
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := p.A.DialContext(ctx, "tcp", "10.0.0.2:9"); err == nil {
		c.Close()
		t.Fatal("second connection to a server with MaxConns = 1 succeeded")
	}
	if d := p.B.Stats().TCP.ListenDrops - before; d < 1 {
		t.Errorf("ListenDrops grew by %d, want >= 1", d)
	}
	if n := p.B.Stats().TCP.PassiveOpens; n != 1 {
		t.Errorf("PassiveOpens %d, want 1", n)
	}
	if _, err := c1.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	s1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s1, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("first connection: read %q, %v", buf, err)
	}
}

// TestLimitTCPMem: with tcp_mem = 1 1 2 pages (high = 8 KiB), a receiver
// that does not read keeps at most high + one segment buffered: the data
// beyond is dropped (TCPMemoryDrops) and pressure is counted. Once the
// application reads, the sender's retransmissions deliver every byte.
func TestLimitTCPMem(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.Mem = [3]int{1, 1, 2}
	p := newPairStacks(t, Config{}, Config{TCP: cfg})
	ln, err := p.B.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := p.A.Dial("tcp", "10.0.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 64 << 10
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i * 7)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		werr <- err
	}()
	const high = 2 * 4096
	if !pollUntil(5*time.Second, func() bool { return p.B.Stats().TCP.TCPMemoryDrops > 0 }) {
		t.Fatalf("no data dropped above tcp_mem high; B buffers %d bytes", p.B.tcp.memBytes.Load())
	}
	st := p.B.Stats().TCP
	if st.TCPMemoryPressures < 1 || st.TCPRcvQDrop < st.TCPMemoryDrops {
		t.Errorf("TCPMemoryPressures %d, TCPRcvQDrop %d, TCPMemoryDrops %d", st.TCPMemoryPressures, st.TCPRcvQDrop, st.TCPMemoryDrops)
	}
	if m := p.B.tcp.memBytes.Load(); m > high+1500 {
		t.Errorf("B buffers %d bytes, want at most %d", m, high+1500)
	}
	e := s.(*TCPConn).e
	e.sh.mu.Lock()
	r := e.tc.Readable()
	e.sh.mu.Unlock()
	if r > high+1500 {
		t.Errorf("B's connection holds %d unread bytes, want at most %d", r, high+1500)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatalf("read after the pressure: %v", err)
	}
	if string(got) != string(data) {
		t.Fatal("data corrupted")
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}

// TestLimitTCPMemPressureNoAutotune: under tcp_mem pressure the receive
// buffer does not grow (tcp.Conn.SetMemoryPressure, Linux
// tcp_under_memory_pressure). tcp_mem = 0 0 N keeps the receiver under
// pressure from its first buffered byte on; the same 16 MiB transfer
// without pressure grows the receive buffer.
func TestLimitTCPMemPressureNoAutotune(t *testing.T) {
	for _, pressure := range []bool{false, true} {
		cfg := tcp.DefaultConfig()
		if pressure {
			cfg.Mem = [3]int{0, 0, 1 << 20}
		}
		p := newPairStacks(t, Config{}, Config{TCP: cfg})
		ln, err := p.B.Listen("tcp", ":9")
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.A.Dial("tcp", "10.0.0.2:9")
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		const n = 16 << 20
		go func() {
			c.Write(make([]byte, n))
			c.Close()
		}()
		s.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.Copy(io.Discard, s)
		if err != nil || got != n {
			t.Fatalf("pressure %v: read %d of %d bytes: %v", pressure, got, n, err)
		}
		rcv := s.(*TCPConn).Info().RcvSpace
		st := p.B.Stats().TCP
		t.Logf("pressure %v: receive buffer %d, TCPMemoryPressures %d", pressure, rcv, st.TCPMemoryPressures)
		if pressure && (rcv != cfg.RMem[1] || st.TCPMemoryPressures == 0) {
			t.Errorf("under pressure (%d entries): receive buffer grew to %d, want %d", st.TCPMemoryPressures, rcv, cfg.RMem[1])
		}
		if !pressure && rcv <= cfg.RMem[1] {
			t.Errorf("without pressure: receive buffer %d did not grow", rcv)
		}
		s.Close()
		ln.Close()
	}
}
