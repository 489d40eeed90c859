package ustack

import (
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// ceMarker is a link endpoint that marks ECT data packets written to it
// with Congestion Experienced, like an AQM router, and counts them.
type ceMarker struct {
	link.Endpoint
	ect, marked atomic.Int64
	mark        atomic.Bool
}

func (m *ceMarker) WritePacket(p []byte) error {
	if ip, err := wire.ParseIPv4(p); err == nil && ip.Protocol() == wire.ProtoTCP {
		if h, err := wire.ParseTCP(ip.Payload()); err == nil && len(h.Payload()) > 0 && ip.TOS()&3 == tcp.ECNECT0 {
			m.ect.Add(1)
			if m.mark.Load() {
				q := append([]byte(nil), p...)
				ip := wire.IPv4(q)
				ip.SetTOS(ip.TOS() | tcp.ECNCE)
				ip.ComputeChecksum()
				m.marked.Add(1)
				return m.Endpoint.WritePacket(q)
			}
		}
	}
	return m.Endpoint.WritePacket(p)
}

// TestECNCodepoints: with net.ipv4.tcp_ecn=1 on both stacks, data goes out
// as ECT(0) in the IP header, and a CE mark on the way reaches the
// receiver's engine, whose echo makes the sender reduce its window.
func TestECNCodepoints(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.ECN = 1
	a, b := link.Pipe(1500)
	m := &ceMarker{Endpoint: a}
	sa, _ := New(Config{TCP: cfg})
	sb, _ := New(Config{TCP: cfg})
	defer sa.Close()
	defer sb.Close()
	sa.AddInterface("p0", m, netip.MustParsePrefix("10.0.0.1/24"))
	sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"))
	ln, err := sb.ListenTCP("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	if !c.(*TCPConn).Info().Options.ECN {
		t.Fatal("ECN not negotiated")
	}
	buf := make([]byte, 64<<10)
	c.Write(buf)
	m.mark.Store(true)
	c.Write(buf)
	c.Close()
	select {
	case n := <-got:
		if n != 128<<10 {
			t.Fatalf("received %d bytes", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("transfer did not finish")
	}
	if m.ect.Load() == 0 || m.marked.Load() == 0 {
		t.Fatalf("ECT(0) data packets %d, CE-marked %d", m.ect.Load(), m.marked.Load())
	}
	if r := sa.Stats().TCP.TCPECNReductions; r == 0 {
		t.Errorf("TCPECNReductions 0 after %d CE marks", m.marked.Load())
	}
}
