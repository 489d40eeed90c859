package ustack

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
)

// TestPing: echo requests to the peer stack over IPv4 and IPv6 and to our
// own address come back; the counters show the requests and replies.
func TestPing(t *testing.T) {
	p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) { return a, b })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, dst := range []string{"10.0.0.2", "fd00::2", "10.0.0.1", "::1"} {
		rtt, err := p.A.Ping(ctx, netip.MustParseAddr(dst), i+1, []byte("ustack ping payload"))
		if err != nil {
			t.Fatalf("ping %s: %v", dst, err)
		}
		if rtt < 0 || rtt > 10*time.Second {
			t.Errorf("ping %s: rtt %v", dst, rtt)
		}
	}
	a, b := p.A.Stats(), p.B.Stats()
	if a.ICMP.OutEchos != 2 || a.ICMP6.OutEchos != 2 || a.ICMP.InEchoReps != 2 || a.ICMP6.InEchoReps != 2 {
		t.Errorf("A: v4 OutEchos %d InEchoReps %d, v6 OutEchos %d InEchoReps %d, want 2 each",
			a.ICMP.OutEchos, a.ICMP.InEchoReps, a.ICMP6.OutEchos, a.ICMP6.InEchoReps)
	}
	if b.ICMP.OutEchoReps != 1 || b.ICMP6.OutEchoReps != 1 {
		t.Errorf("B: echo replies v4 %d v6 %d, want 1 1", b.ICMP.OutEchoReps, b.ICMP6.OutEchoReps)
	}
	if _, err := p.A.Ping(ctx, netip.MustParseAddr("192.0.2.1"), 1, nil); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("ping without a route: %v, want ENETUNREACH", err)
	}
	if _, err := p.A.Ping(ctx, netip.MustParseAddr("10.0.0.2"), 1, make([]byte, 1500)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("ping larger than the MTU: %v, want EMSGSIZE", err)
	}
}

// TestPingVirtualTime: on a link with 25 ms delay each way the RTT is
// exactly 50 ms; with every request lost, the context deadline ends the
// wait with os.ErrDeadlineExceeded at its time; a reply with another
// payload or sequence number does not count.
func TestPingVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d *dropper
		p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
			d = &dropper{Endpoint: link.Impair(a, link.Impairment{Delay: 25 * time.Millisecond})}
			return d, link.Impair(b, link.Impairment{Delay: 25 * time.Millisecond})
		})
		dst := netip.MustParseAddr("10.0.0.2")
		for seq := 1; seq <= 3; seq++ {
			rtt, err := p.A.Ping(context.Background(), dst, seq, []byte{byte(seq)})
			if err != nil || rtt != 50*time.Millisecond {
				t.Fatalf("ping seq %d: rtt %v err %v, want 50ms", seq, rtt, err)
			}
		}
		d.drop.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := p.A.Ping(ctx, dst, 4, nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("lost ping: %v after %v, want a deadline error after 1s", err, time.Since(start))
		}
		// A reply with another payload or sequence number is ignored.
		done := make(chan error, 1)
		go func() {
			_, err := p.A.Ping(context.Background(), dst, 5, []byte("abc"))
			done <- err
		}()
		synctest.Wait()
		p.A.ping.mu.Lock()
		var id uint16
		for k := range p.A.ping.waits {
			id = k.id
		}
		p.A.ping.mu.Unlock()
		reply := func(seq byte, payload string) []byte {
			return append([]byte{0, 0, 0, 0, byte(id >> 8), byte(id), 0, seq}, payload...)
		}
		p.A.pingReply(dst, reply(5, "abd"))
		p.A.pingReply(dst, reply(6, "abc"))
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("ping completed by a non-matching reply: %v", err)
		default:
		}
		p.A.pingReply(dst, reply(5, "abc"))
		if err := <-done; err != nil {
			t.Errorf("ping with matching reply: %v", err)
		}
		p.A.ping.mu.Lock()
		n := len(p.A.ping.waits)
		p.A.ping.mu.Unlock()
		if n != 0 {
			t.Errorf("%d echo waits left behind", n)
		}
		p.A.Close()
		p.B.Close()
	})
}
