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

// eceCounter counts the TCP segments written to it that carry ECE.
type eceCounter struct {
	link.Endpoint
	segs, ece atomic.Int64
}

func (m *eceCounter) WritePacket(p []byte) error {
	if ip, err := wire.ParseIPv4(p); err == nil && ip.Protocol() == wire.ProtoTCP {
		if h, err := wire.ParseTCP(ip.Payload()); err == nil {
			m.segs.Add(1)
			if h.Flags()&wire.TCPFlagECE != 0 && h.Flags()&wire.TCPFlagSYN == 0 {
				m.ece.Add(1)
			}
		}
	}
	return m.Endpoint.WritePacket(p)
}

// TestECNCodepoints: with net.ipv4.tcp_ecn=1 on both stacks, data goes out
// as ECT(0) in the IP header, and a CE mark on the way reaches the
// receiver's engine, which echoes it with ECE.
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
	eb := &eceCounter{Endpoint: b}
	sb.AddInterface("p0", eb, netip.MustParsePrefix("10.0.0.2/24"))
	ln, err := sb.ListenTCP("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	c, err := sa.Dial("tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.(*TCPConn).Info().Options.ECN {
		t.Fatal("ECN not negotiated")
	}
	buf := make([]byte, 8<<10)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 8; i++ {
		c.Write(buf)
	}
	m.mark.Store(true)
	for i := 0; i < 8; i++ {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	// The echoes may still be on their way.
	deadline := time.Now().Add(5 * time.Second)
	for eb.ece.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no ECE from the receiver after %d CE marks", m.marked.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if m.ect.Load() == 0 || m.marked.Load() == 0 {
		t.Fatalf("ECT(0) data packets %d, CE-marked %d", m.ect.Load(), m.marked.Load())
	}
	t.Logf("ECT(0) data packets %d, CE-marked %d, receiver segments with ECE %d of %d, sender TCPECNReductions %d",
		m.ect.Load(), m.marked.Load(), eb.ece.Load(), eb.segs.Load(), sa.Stats().TCP.TCPECNReductions)
}
