package main

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// dropEndpoint drops the TCP segments written to it that carry data, and
// the first RST, counting them.
type dropEndpoint struct {
	link.Endpoint
	dropped, rsts atomic.Int64
}

func (d *dropEndpoint) WritePacket(pkt []byte) error {
	if ip, err := wire.ParseIPv4(pkt); err == nil && ip.Protocol() == wire.ProtoTCP {
		if seg, err := wire.ParseTCP(ip.Payload()); err == nil {
			if len(seg.Payload()) > 0 || seg.Flags()&wire.TCPFlagRST != 0 && d.rsts.Add(1) == 1 {
				d.dropped.Add(1)
				return nil
			}
		}
	}
	return d.Endpoint.WritePacket(pkt)
}

// TestAbortLostDataAndRST: a client writes and resets its connection, and
// both its data and its RST are lost. The server has nothing to send, so
// only keepalive can find the half-open connection: its probe draws a
// RST from the client's stack and the server's read fails with
// ECONNRESET, an expected reset, instead of timing out (the soak's "idle
// read timeout" failures, about one per 10-minute run).
func TestAbortLostDataAndRST(t *testing.T) {
	oldKA, oldIdle := serverKeepAlive, idleTimeout
	serverKeepAlive = net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}
	idleTimeout = 20 * time.Second
	defer func() { serverKeepAlive, idleTimeout = oldKA, oldIdle }()

	a, b := link.Pipe(1500)
	da := &dropEndpoint{Endpoint: a}
	sa, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := sa.AddInterface("p0", da, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	ln, err := sb.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var st stats
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			serve(c, &st)
		}
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	abortConn(c.(*ustack.TCPConn), []byte("Aborted"))
	start := time.Now()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("server still waiting 15 s after the abort; %d segments dropped", da.dropped.Load())
	}
	t.Logf("server done %v after the abort; %d segments dropped", time.Since(start).Round(time.Millisecond), da.dropped.Load())
	if da.dropped.Load() < 2 {
		t.Errorf("%d segments dropped, want the data and the RST", da.dropped.Load())
	}
	if st.expectedResets.Load() != 1 || st.errs.Load() != 0 || st.halfOpen.Load() != 0 {
		t.Errorf("server outcome: expected resets %d, errors %d, half-open timeouts %d; want 1, 0, 0",
			st.expectedResets.Load(), st.errs.Load(), st.halfOpen.Load())
	}
}
