package ustack

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// TestSynCookiesAlways runs connections through tcp_syncookies=2 (cookies
// for every SYN) between two stacks and moves data over them.
func TestSynCookiesAlways(t *testing.T) {
	a, b := link.Pipe(1500)
	sa, _ := New(Config{})
	cfg := tcp.DefaultConfig()
	cfg.Syncookies = 2
	sb, _ := New(Config{TCP: cfg})
	defer sa.Close()
	defer sb.Close()
	sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"))
	sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64"))
	p := &pair{A: sa, B: sb}
	for _, addr := range []string{"10.0.0.2:20", "[fd00::2]:20"} {
		c, s := p.dialAccept(t, "tcp", ":20", addr)
		d := transfer(t, c, s, 1<<20)
		d += transfer(t, s, c, 1<<20)
		t.Logf("%s: 2 MiB over a cookie connection in %v; server wscale %d sack %v ts %v",
			addr, d, s.Info().RcvWScale, s.Info().Options.SACK, s.Info().Options.Timestamps)
		if !s.Info().Options.SACK || !s.Info().Options.Timestamps || !s.Info().Options.WScale {
			t.Errorf("options lost through the cookie: %+v", s.Info().Options)
		}
	}
	st := sb.Stats()
	if st.TCP.SyncookiesSent != 2 || st.TCP.SyncookiesRecv != 2 || st.TCP.SyncookiesFailed != 0 {
		t.Errorf("SyncookiesSent %d Recv %d Failed %d", st.TCP.SyncookiesSent, st.TCP.SyncookiesRecv, st.TCP.SyncookiesFailed)
	}
}

// TestSynCookiesOnOverflow fills a listener's SYN queue (max_syn_backlog 2)
// with half-open connections from a hand-driven peer; the next SYN gets a
// cookie, and the ACK echoing it creates a connection that Accept returns.
// A forged ACK gets a RST.
func TestSynCookiesOnOverflow(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.MaxSynBacklog = 2
	s, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	a, peer := link.Pipe(1500)
	defer s.Close()
	defer peer.Close()
	s.AddInterface("p0", a, addr4)
	ln, err := s.ListenTCP("tcp", ":30")
	if err != nil {
		t.Fatal(err)
	}
	us := netip.AddrPortFrom(addr4.Addr(), 30)
	opts := &wire.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, WScale: 7, HasWScale: true, HasTS: true, TSVal: 1000}
	for i := 0; i < 3; i++ {
		them := netip.AddrPortFrom(peer4, uint16(40000+i))
		peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 5000, Flags: wire.TCPFlagSYN, Window: 65535, Options: opts}, nil))
		_, _, r := parseReply(t, readPacket(t, peer))
		if r.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK || r.Ack() != 5001 {
			t.Fatalf("SYN %d: reply flags %#x ack %d", i, r.Flags(), r.Ack())
		}
		if i < 2 {
			continue
		}
		if st := s.Stats(); st.TCP.SyncookiesSent != 1 {
			t.Fatalf("SyncookiesSent %d after the queue filled", st.TCP.SyncookiesSent)
		}
		var ro wire.TCPOptions
		if err := r.ParseOptions(&ro); err != nil || !ro.HasTS || !ro.HasWScale || !ro.SACKPermitted {
			t.Fatalf("cookie SYN-ACK options %+v %v", ro, err)
		}
		// A forged cookie: RST.
		ack := &wire.TCPOptions{HasTS: true, TSVal: 1001, TSEcr: ro.TSVal}
		peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 5001, Ack: r.Seq() + 2, Flags: wire.TCPFlagACK, Window: 512, Options: ack}, nil))
		_, _, rst := parseReply(t, readPacket(t, peer))
		if rst.Flags() != wire.TCPFlagRST {
			t.Fatalf("forged cookie ACK answered with flags %#x", rst.Flags())
		}
		// The real one, with data.
		peer.WritePacket(tcpSegment(t, them, us, wire.TCPHeader{Seq: 5001, Ack: r.Seq() + 1, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 512, Options: ack}, []byte("ping")))
	}
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != "10.0.0.1:40002" {
		t.Errorf("accepted %v, want the cookie connection", c.RemoteAddr())
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q %v", buf, err)
	}
	info := c.Info()
	if info.State != tcp.Established || info.SndWScale != 7 || !info.Options.SACK || !info.Options.Timestamps {
		t.Errorf("cookie connection info: state %v sndwscale %d options %+v", info.State, info.SndWScale, info.Options)
	}
	st := s.Stats()
	if st.TCP.SyncookiesRecv != 1 || st.TCP.SyncookiesFailed != 1 {
		t.Errorf("SyncookiesRecv %d Failed %d", st.TCP.SyncookiesRecv, st.TCP.SyncookiesFailed)
	}
}
