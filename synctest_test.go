package ustack

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
)

// TestSynRetriesVirtualTime dials into a link that drops everything, on
// testing/synctest's virtual clock: with tcp_syn_retries=6 the connect
// fails with ETIMEDOUT 127 s after it started (SYNs at 0, 1, 3, 7, 15, 31,
// 63 s; Linux counts all 7 in OutSegs and 6 in RetransSegs), driven by the stack's single timer goroutine.
func TestSynRetriesVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
			return link.Impair(a, link.Impairment{Loss: 1, Seed: 1}), b
		})
		start := time.Now()
		_, err := p.A.Dial("tcp", "10.0.0.2:80")
		el := time.Since(start)
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("dial: %v, want ETIMEDOUT", err)
		}
		if el != 127*time.Second {
			t.Errorf("gave up after %v, want 127s", el)
		}
		st := p.A.Stats()
		if st.TCP.TCPSynRetrans != 6 || st.TCP.OutSegs != 7 || st.TCP.RetransSegs != 6 {
			t.Errorf("TCPSynRetrans %d OutSegs %d RetransSegs %d", st.TCP.TCPSynRetrans, st.TCP.OutSegs, st.TCP.RetransSegs)
		}
		p.A.Close()
		p.B.Close()
	})
}

// dropper is a link endpoint that can stop delivering what is written to it.
type dropper struct {
	link.Endpoint
	drop atomic.Bool
}

func (d *dropper) WritePacket(p []byte) error {
	if d.drop.Load() {
		return nil
	}
	return d.Endpoint.WritePacket(p)
}

// TestKeepaliveVirtualTime: an idle connection with keepalive idle 10 s,
// interval 5 s, 3 probes whose peer vanishes fails with ETIMEDOUT at
// 10 + 3*5 = 25 s; a read deadline fires at exactly its time.
func TestKeepaliveVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d *dropper
		p := newPairLinks(t, 1500, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
			d = &dropper{Endpoint: a}
			return d, b
		})
		c, _ := p.dialAccept(t, "tcp", ":50", "10.0.0.2:50")
		start := time.Now()
		c.SetReadDeadline(start.Add(1500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 1500*time.Millisecond {
			t.Fatalf("read deadline: %v after %v", err, time.Since(start))
		}
		c.SetReadDeadline(time.Time{})
		if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}); err != nil {
			t.Fatal(err)
		}
		d.drop.Store(true)
		start = time.Now()
		_, err := c.Read(make([]byte, 1))
		el := time.Since(start)
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("read: %v, want ETIMEDOUT", err)
		}
		// The idle clock started at the last packet, 1.5 s before.
		if want := 25*time.Second - 1500*time.Millisecond; el != want {
			t.Errorf("keepalive gave up after %v, want %v", el, want)
		}
		if ka := p.A.Stats().TCP.TCPKeepAlive; ka != 3 {
			t.Errorf("TCPKeepAlive %d, want 3", ka)
		}
		p.A.Close()
		p.B.Close()
	})
}
