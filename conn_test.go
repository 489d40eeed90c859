package ustack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// pair is two stacks joined by a pipe: A is 10.0.0.1 / fd00::1, B is
// 10.0.0.2 / fd00::2.
type pair struct {
	A, B *Stack
}

func newPair(t testing.TB, mtu int) *pair {
	t.Helper()
	return newPairLinks(t, mtu, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) { return a, b })
}

func newPairLinks(t testing.TB, mtu int, wrap func(a, b link.Endpoint) (link.Endpoint, link.Endpoint)) *pair {
	t.Helper()
	a, b := link.Pipe(mtu)
	a, b = wrap(a, b)
	sa, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sa.Close()
		sb.Close()
	})
	return &pair{A: sa, B: sb}
}

// dialAccept connects A to a listener on B and returns both ends.
func (p *pair) dialAccept(t testing.TB, network, laddr, raddr string) (client, server *TCPConn) {
	t.Helper()
	ln, err := p.B.Listen(network, laddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.A.DialContext(ctx, network, raddr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	var r res
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("accept timed out")
	}
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	t.Cleanup(func() {
		c.Close()
		r.c.Close()
	})
	return c.(*TCPConn), r.c.(*TCPConn)
}

func TestDialAcceptEcho(t *testing.T) {
	for _, tc := range []struct{ name, network, laddr, raddr string }{
		{"v4", "tcp", ":7", "10.0.0.2:7"},
		{"v6", "tcp", ":7", "[fd00::2]:7"},
		{"tcp4", "tcp4", "10.0.0.2:7", "10.0.0.2:7"},
		{"tcp6", "tcp6", "[fd00::2]:7", "[fd00::2]:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, 1500)
			c, s := p.dialAccept(t, tc.network, tc.laddr, tc.raddr)
			if c.RemoteAddr().String() != s.LocalAddr().String() || c.LocalAddr().String() != s.RemoteAddr().String() {
				t.Errorf("addresses: client %v->%v server %v->%v", c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
			}
			if c.State() != tcp.Established {
				t.Errorf("client state %v", c.State())
			}
			go io.Copy(s, s) // echo
			msg := []byte("hello, ustack")
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Errorf("echo %q", got)
			}
			st := p.A.Stats()
			if st.TCP.ActiveOpens != 1 || p.B.Stats().TCP.PassiveOpens != 1 {
				t.Errorf("ActiveOpens %d PassiveOpens %d", st.TCP.ActiveOpens, p.B.Stats().TCP.PassiveOpens)
			}
			if conns := p.A.Connections(); len(conns) != 1 || conns[0].State != tcp.Established {
				t.Errorf("Connections: %+v", conns)
			}
		})
	}
}

// transfer sends n random bytes from w to r and checks the SHA-256.
func transfer(t testing.TB, w, r net.Conn, n int64) time.Duration {
	t.Helper()
	start := time.Now()
	h := sha256.New()
	errc := make(chan error, 1)
	go func() {
		src := rand.NewChaCha8([32]byte{1, 2, 3})
		wh := io.MultiWriter(w, h)
		_, err := io.CopyN(wh, src, n)
		if err == nil {
			err = w.(*TCPConn).CloseWrite()
		}
		errc <- err
	}()
	rh := sha256.New()
	r.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.Copy(rh, r)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got != n {
		t.Fatalf("got %d bytes, want %d", got, n)
	}
	if !bytes.Equal(h.Sum(nil), rh.Sum(nil)) {
		t.Fatal("SHA-256 mismatch")
	}
	return time.Since(start)
}

func TestTransferAndHalfClose(t *testing.T) {
	p := newPair(t, 1500)
	c, s := p.dialAccept(t, "tcp", ":9", "10.0.0.2:9")
	n := int64(8 << 20)
	if raceEnabled {
		n = 2 << 20
	}
	d := transfer(t, c, s, n)
	t.Logf("client->server %d MiB in %v (%.0f Mbit/s)", n>>20, d, float64(n)*8/d.Seconds()/1e6)
	// The client half-closed; the server can still send.
	d = transfer(t, s, c, n)
	t.Logf("server->client %d MiB in %v (%.0f Mbit/s)", n>>20, d, float64(n)*8/d.Seconds()/1e6)
	sa, sb := p.A.Stats(), p.B.Stats()
	t.Logf("A: OutSegs %d RetransSegs %d TCPTimeouts %d; B: OutSegs %d RetransSegs %d TCPTimeouts %d; WinProbe B %d ToZeroWindowAdv A %d FromZero A %d",
		sa.TCP.OutSegs, sa.TCP.RetransSegs, sa.TCP.TCPTimeouts, sb.TCP.OutSegs, sb.TCP.RetransSegs, sb.TCP.TCPTimeouts, sb.TCP.TCPWinProbe, sa.TCP.TCPToZeroWindowAdv, sa.TCP.TCPFromZeroWindowAdv)
}

func TestRefused(t *testing.T) {
	p := newPair(t, 1500)
	for _, addr := range []string{"10.0.0.2:1", "[fd00::2]:1"} {
		_, err := p.A.Dial("tcp", addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial %s: %v, want ECONNREFUSED", addr, err)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			t.Errorf("Dial %s: error %T not a dial *net.OpError", addr, err)
		}
	}
	if n := len(p.A.Connections()); n != 0 {
		t.Errorf("%d connections left after refused dials", n)
	}
}

func TestReset(t *testing.T) {
	p := newPair(t, 1500)
	c, s := p.dialAccept(t, "tcp", ":10", "10.0.0.2:10")
	if err := s.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after peer reset: %v, want ECONNRESET", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after reset: %v", err)
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	p := newPair(t, 1500)
	c, _ := p.dialAccept(t, "tcp", ":11", "10.0.0.2:11")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want deadline exceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error timeout", err)
	}
	// A past deadline fails at once; clearing it lets reads block again.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with past deadline: %v", err)
	}
	// Writes block once the peer stops reading; the deadline ends them.
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1<<20)
	var total int
	for i := 0; i < 64; i++ {
		n, err := c.Write(buf)
		total += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v", err)
			}
			break
		}
		if i == 63 {
			t.Fatalf("64 MiB written to a peer that does not read")
		}
	}
	t.Logf("wrote %d bytes before the write deadline", total)
}

func TestDialTimeout(t *testing.T) {
	// B's link drops everything A sends: the SYN never arrives.
	p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
		return link.Impair(a, link.Impairment{Loss: 1}), b
	})
	d := Dialer{Stack: p.A, Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := d.Dial("tcp", "10.0.0.2:80")
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a timeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("dial took %v", el)
	}
	if n := len(p.A.Connections()); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

func TestManyConnections(t *testing.T) {
	p := newPair(t, 1500)
	ln, err := p.B.Listen("tcp", ":12")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.A.Dial("tcp", "10.0.0.2:12")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := []byte{byte(i), byte(i >> 8), 1, 2, 3}
			c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- errors.New("echo mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ports := map[uint16]bool{}
	for _, ci := range p.A.Connections() {
		if ports[ci.Local.Port()] {
			t.Errorf("port %d used twice", ci.Local.Port())
		}
		ports[ci.Local.Port()] = true
	}
}

func TestStackCloseUnblocks(t *testing.T) {
	p := newPair(t, 1500)
	c, _ := p.dialAccept(t, "tcp", ":13", "10.0.0.2:13")
	ln, err := p.A.Listen("tcp", ":14")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	p.A.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call returned %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stack.Close did not unblock Read/Accept")
		}
	}
	if _, err := p.A.Dial("tcp", "10.0.0.2:13"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
}

// TestTimeWaitReusedBySYN: the server closes first and keeps the tuple in
// TIME-WAIT; the client connects again from the same port and the new SYN
// takes the tuple over.
func TestTimeWaitReusedBySYN(t *testing.T) {
	p := newPair(t, 1500)
	ln, err := p.B.Listen("tcp", ":60")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	laddr := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 45000}
	d := Dialer{Stack: p.A, LocalAddr: laddr}
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", "10.0.0.2:60")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close() // server closes first: TIME-WAIT on B
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read: %v", err)
		}
		c.Close()
		waitFor(t, "TIME-WAIT on the server", func() bool {
			n := 0
			for _, c := range p.B.Connections() {
				if c.State == tcp.TimeWait {
					n++
				}
			}
			return n == 1
		})
		waitFor(t, "the client tuple to close", func() bool { return len(p.A.Connections()) == 0 })
	}
	if n := p.B.Stats().TCP.TCPTimeWaitReuse; n != 1 {
		t.Errorf("TCPTimeWaitReuse %d, want 1", n)
	}
	// Binding a dial to a port with a listener fails like bind(2).
	lnA, err := p.A.Listen("tcp", ":45001")
	if err != nil {
		t.Fatal(err)
	}
	defer lnA.Close()
	d.LocalAddr = &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 45001}
	if _, err := d.Dial("tcp", "10.0.0.2:60"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("dial from a listening port: %v, want EADDRINUSE", err)
	}
}

// TestDeadlineSetWhileBlocked: a deadline set while Read, Write or Accept
// is already blocked ends the call (net/http aborts background reads so).
func TestDeadlineSetWhileBlocked(t *testing.T) {
	p := newPair(t, 1500)
	c, _ := p.dialAccept(t, "tcp", ":15", "10.0.0.2:15")
	ln, err := p.A.ListenTCP("tcp", ":16")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 3)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the three calls block (no event to wait on)
	past := time.Now().Add(-time.Second)
	c.SetDeadline(past)
	ln.SetDeadline(past)
	for i := 0; i < 3; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked call returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a deadline set while blocked did not end the call")
		}
	}
}

func TestConnectionsString(t *testing.T) {
	p := newPair(t, 1500)
	c, _ := p.dialAccept(t, "tcp", ":17", "10.0.0.2:17")
	ln, err := p.B.Listen("tcp4", ":18")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c.Write([]byte("hello"))
	waitFor(t, "the data to be acked", func() bool { return c.Info().BytesAcked >= 5 })
	var lines []string
	for _, ci := range p.B.Connections() {
		lines = append(lines, ci.String())
	}
	out := strings.Join(lines, "\n")
	t.Logf("\n%s", out)
	for _, want := range []string{"LISTEN", "0.0.0.0:18 *:*", "ESTAB", "5      0      10.0.0.2:17 10.0.0.1:", "rtt:", "cwnd:"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}

// TestLoopback: a stack connects to its own listeners through lo, on
// 127.0.0.1, ::1 and its interface addresses.
func TestLoopback(t *testing.T) {
	p := newPair(t, 1500)
	s := p.A
	ln, err := s.Listen("tcp", ":19")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	for _, addr := range []string{"127.0.0.1:19", "[::1]:19", "10.0.0.1:19", "[fd00::1]:19", "localhost:19"} {
		c, err := s.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if c.LocalAddr().(*net.TCPAddr).IP.String() != c.RemoteAddr().(*net.TCPAddr).IP.String() {
			t.Errorf("%s: local %v remote %v", addr, c.LocalAddr(), c.RemoteAddr())
		}
		stop := dumpIfSlow(t, 10*time.Second, s)
		d := transfer(t, c, c, 1<<20) // echoed back to ourselves
		stop()
		t.Logf("%s: 1 MiB echoed in %v", addr, d)
		c.Close()
	}
	if n := p.B.Stats().IP.InReceives; n != 0 {
		t.Errorf("loopback traffic reached the other stack (%d packets)", n)
	}
}

// dumpIfSlow logs the stacks' connections (ss-like, with tcp_info) if the
// returned stop function is not called within d: a stalled transfer then
// shows where it stopped.
func dumpIfSlow(t *testing.T, d time.Duration, stacks ...*Stack) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(d):
			for i, s := range stacks {
				for _, ci := range s.Connections() {
					t.Logf("stack %d: %s\n\t%+v", i, ci, ci.Info)
				}
				st := s.Stats()
				t.Logf("stack %d: IP %+v\n\tTCP %+v", i, st.IP, st.TCP)
			}
		}
	}()
	return func() { close(done) }
}

// serveEcho accepts connections on ln until it is closed and echoes each
// one back to its sender.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			c.Close()
		}()
	}
}
