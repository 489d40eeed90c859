package ustack

import (
	"errors"
	"syscall"
	"testing"
	"time"

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
