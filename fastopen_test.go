package ustack

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// TestFastOpenCookies: the first Fast Open connection asks for a cookie
// and caches the one the server grants; the second sends it and the server
// validates it. Data written right after Dial arrives either way.
func TestFastOpenCookies(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.FastOpen = tcp.FastOpenClient | tcp.FastOpenServer
	a, b := link.Pipe(1500)
	sa, _ := New(Config{TCP: cfg})
	sb, _ := New(Config{TCP: cfg})
	defer sa.Close()
	defer sb.Close()
	sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"))
	sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"))
	ln, err := sb.ListenTCP("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetFastOpen(true)
	d := Dialer{Stack: sa, FastOpen: true}
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", "10.0.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET")); err != nil {
			t.Fatal(err)
		}
		ln.SetDeadline(time.Now().Add(5 * time.Second))
		s, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 3)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "GET" {
			t.Fatalf("server read %q %v", buf, err)
		}
		c.Close()
		s.Close()
		if i == 0 {
			sa.tcp.tfo.mu.Lock()
			e, ok := sa.tcp.tfo.cache.Entry(netip.MustParseAddr("10.0.0.2"))
			sa.tcp.tfo.mu.Unlock()
			if !ok || e.CookieLen != tcp.FastOpenCookieLen {
				t.Fatalf("no cookie cached after the first connection: %+v", e)
			}
		}
	}
	if n := sa.Stats().TCP.TCPFastOpenActive; n != 1 {
		t.Errorf("client TCPFastOpenActive %d, want 1", n)
	}
	if n := sb.Stats().TCP.TCPFastOpenPassive; n != 1 {
		t.Errorf("server TCPFastOpenPassive %d, want 1", n)
	}
}
