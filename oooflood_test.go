package ustack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// TestHardOOOFloodTCPMem: an adversary on 32 connections sends endless
// out-of-order segments (a hole at RCV.NXT that it never fills, then
// small pieces all over the window, again and again). The out-of-order
// queues count against net.ipv4.tcp_mem: pressure is entered, data beyond
// high is dropped (TCPMemoryDrops), and the global total stays within
// high plus, per connection, the tcp_rmem[0] every connection keeps plus
// one segment (Linux's sk_rmem_schedule guarantee). Each connection's
// queue stays within its receive buffer, which does not grow. A
// legitimate connection opened during the flood still receives its data.
// Then, still above high, it streams in-order data on new connections
// behind a parked out-of-order byte: each is held to tcp_rmem[0]. When
// the adversary resets its connections, the memory returns to zero.
func TestHardOOOFloodTCPMem(t *testing.T) {
	cfg := tcp.DefaultConfig()
	const page = 4096
	cfg.Mem = [3]int{32, 48, 64} // pressure 192 KiB, high 256 KiB
	high := int64(cfg.Mem[2]) * page
	h := newHStack(t, Config{TCP: cfg})
	ln, err := h.s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const nConns = 32
	type adv struct {
		them   netip.AddrPort
		rcvNxt uint32 // the adversary's next in-order byte (never sent)
		sndNxt uint32 // our next sequence number, for its ACKs
		c      *TCPConn
	}
	advs := make([]adv, nConns)
	for i := range advs {
		them := netip.AddrPortFrom(peer4, uint16(41000+i))
		iss := uint32(100000 * (i + 1))
		sndNxt, c := h.handshake(ln, them, hUs4, iss)
		advs[i] = adv{them: them, rcvNxt: iss + 1, sndNxt: sndNxt, c: c}
	}
	h.rec = func([]byte) bool { return false }
	before := h.s.Stats().TCP

	// Round r sends, on every connection, 100-byte pieces every 300 bytes
	// of the window starting at 1+100*(r%3): after three rounds the
	// pieces tile the window but for the first byte, then it starts
	// again (duplicates).
	payload := make([]byte, 100)
	var peak int64
	const rounds = 12
	for r := 0; r < rounds; r++ {
		for i := range advs {
			a := &advs[i]
			batch := make([][]byte, 0, 220)
			for off := uint32(1 + 100*(r%3)); off+100 <= 65535; off += 300 {
				batch = append(batch, rawTCP4(a.them, hUs4, wire.TCPHeader{
					Seq: a.rcvNxt + off, Ack: a.sndNxt, Flags: wire.TCPFlagACK, Window: 65535}, payload))
			}
			h.feed(batch...)
			if m := h.s.tcp.memBytes.Load(); m > peak {
				peak = m
			}
		}
	}
	st := h.s.Stats().TCP
	ooo := st.TCPOFOQueue - before.TCPOFOQueue
	t.Logf("flood: %d conns x %d rounds: peak tcp_mem %d KiB (high %d KiB), TCPOFOQueue %d, TCPOFODrop %d, TCPMemoryDrops %d, pressures %d",
		nConns, rounds, peak>>10, high>>10, ooo, st.TCPOFODrop-before.TCPOFODrop, st.TCPMemoryDrops-before.TCPMemoryDrops,
		st.TCPMemoryPressures-before.TCPMemoryPressures)
	if st.TCPMemoryPressures == before.TCPMemoryPressures || st.TCPMemoryDrops == before.TCPMemoryDrops {
		t.Errorf("out-of-order data did not count against tcp_mem: pressures %d, memory drops %d, peak %d bytes",
			st.TCPMemoryPressures-before.TCPMemoryPressures, st.TCPMemoryDrops-before.TCPMemoryDrops, peak)
	}
	// Bound: high, one segment of overshoot, and per connection what it
	// may always hold (tcp_rmem[0]) plus one segment and its block.
	perConn := int64(cfg.RMem[0] + 100 + 256)
	if bound := high + 1500 + nConns*perConn; peak > bound {
		t.Errorf("peak tcp_mem %d bytes, want at most %d", peak, bound)
	}
	for i := range advs {
		e := advs[i].c.e
		e.sh.mu.Lock()
		m, info := e.tc.OOOMemory(), e.tc.Info()
		e.sh.mu.Unlock()
		if info.RcvSpace != cfg.RMem[1] || m > info.RcvSpace || info.BytesReceived != 0 {
			t.Errorf("conn %d: out-of-order memory %d, receive buffer %d (want %d), %d bytes received",
				i, m, info.RcvSpace, cfg.RMem[1], info.BytesReceived)
		}
	}

	// Phase 2, memory still above high: on 16 new connections the
	// adversary parks one out-of-order byte far ahead, then streams
	// in-order data that never reaches it (and nobody reads). Data that
	// fills the hole before an out-of-order queue gets in above high, but
	// only while the connection's unread data is below tcp_rmem[0]: each
	// connection is held to tcp_rmem[0] plus a segment, not its window.
	if m := h.s.tcp.memBytes.Load(); m <= high {
		t.Fatalf("tcp_mem %d bytes, not above high (%d) for phase 2", m, high)
	}
	seg := make([]byte, 1448)
	for i := 0; i < 16; i++ {
		them := netip.AddrPortFrom(peer4, uint16(42000+i))
		iss := uint32(7000000 * (i + 1))
		h.rec = nil
		sndNxt, c := h.handshake(ln, them, hUs4, iss)
		h.rec = func([]byte) bool { return false }
		batch := [][]byte{rawTCP4(them, hUs4, wire.TCPHeader{Seq: iss + 1 + 60000, Ack: sndNxt, Flags: wire.TCPFlagACK, Window: 65535}, []byte{1})}
		for k := uint32(0); k < 40; k++ {
			batch = append(batch, rawTCP4(them, hUs4, wire.TCPHeader{Seq: iss + 1 + k*1448, Ack: sndNxt, Flags: wire.TCPFlagACK, Window: 65535}, seg))
		}
		h.feed(batch...)
		e := c.e
		e.sh.mu.Lock()
		unread, ooo := e.tc.Readable(), e.tc.OOOMemory()
		e.sh.mu.Unlock()
		if unread+ooo > cfg.RMem[0]+1448+257 || unread == 0 {
			t.Errorf("phase 2 conn %d: %d unread and %d out-of-order bytes above high, want at most tcp_rmem[0] %d + one segment",
				i, unread, ooo, cfg.RMem[0])
		}
	}

	// A legitimate connection still gets its data through.
	them := netip.AddrPortFrom(peer4, 50000)
	h.rec = nil
	sndNxt, c := h.handshake(ln, them, hUs4, 7000)
	h.feed(rawTCP4(them, hUs4, wire.TCPHeader{Seq: 7001, Ack: sndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 65535}, []byte("real")))
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "real" {
		t.Fatalf("legitimate connection during the flood: read %q, %v (tcp_mem %d bytes)", buf[:k], err, h.s.tcp.memBytes.Load())
	}

	// The adversary resets its connections: their memory is released.
	for i := range advs {
		h.feed(rawTCP4(advs[i].them, hUs4, wire.TCPHeader{Seq: advs[i].rcvNxt, Flags: wire.TCPFlagRST}, nil))
	}
	for _, co := range h.s.Connections() {
		if co.Remote.Port() >= 42000 && co.Remote.Port() < 42016 {
			h.feed(rawTCP4(co.Remote, hUs4, wire.TCPHeader{Seq: co.Info.RcvNxt, Flags: wire.TCPFlagRST}, nil))
		}
	}
	if !pollUntil(5*time.Second, func() bool { return h.s.tcp.memBytes.Load() == 0 }) {
		t.Fatalf("tcp_mem %d bytes after the adversary's connections were reset", h.s.tcp.memBytes.Load())
	}
	if h.s.tcp.memPress.Load() {
		t.Error("still under memory pressure with no memory in use")
	}
}

// TestAcceptResetInSameBatch: the handshake's final ACK, data and a RST
// arrive in one batch of input (a client that connects, writes and aborts
// at once). Like Linux, which queued the child at the ACK already, Accept
// returns the connection; Read gives the data, then ECONNRESET. Before,
// such a connection vanished: the soak's servers never saw about 40% of
// the connections their clients aborted.
func TestAcceptResetInSameBatch(t *testing.T) {
	h := newHStack(t, Config{})
	ln, err := h.s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h.feed(rawTCP4(hThem4, hUs4, wire.TCPHeader{Seq: 5000, Flags: wire.TCPFlagSYN, Window: 65535, Options: &wire.TCPOptions{MSS: 1460, HasMSS: true}}, nil))
	sa := h.waitSent("SYN-ACK", func(p []byte) bool {
		_, _, s, ok := tcpOf(p)
		return ok && s.Flags() == wire.TCPFlagSYN|wire.TCPFlagACK && s.Ack() == 5001
	})
	_, _, s, _ := tcpOf(sa)
	ack := s.Seq() + 1
	h.feed(
		rawTCP4(hThem4, hUs4, wire.TCPHeader{Seq: 5001, Ack: ack, Flags: wire.TCPFlagACK, Window: 65535}, nil),
		rawTCP4(hThem4, hUs4, wire.TCPHeader{Seq: 5001, Ack: ack, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 65535}, []byte("Abort")),
		rawTCP4(hThem4, hUs4, wire.TCPHeader{Seq: 5006, Ack: ack, Flags: wire.TCPFlagRST | wire.TCPFlagACK}, nil),
	)
	ln.(*TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if string(buf[:n]) != "Abort" || err != nil {
		t.Fatalf("first Read: %q, %v; want the data", buf[:n], err)
	}
	if n, err = c.Read(buf); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("second Read: %d bytes, %v; want ECONNRESET", n, err)
	}
	for _, ci := range h.s.Connections() {
		if ci.State != tcp.Listen {
			t.Errorf("connection left: %v", ci)
		}
	}
}
