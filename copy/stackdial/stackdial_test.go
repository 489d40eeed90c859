package stackdial

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack"
	tcpcopy "github.com/ustack/ustack/copy"
	"github.com/ustack/ustack/link"
)

// pingServer answers "PING x\n" with "PONG x\n" and records each
// connection's remote address.
type pingServer struct {
	mu    sync.Mutex
	peers []string
	wg    sync.WaitGroup
}

func (p *pingServer) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.peers = append(p.peers, netip.MustParseAddrPort(c.RemoteAddr().String()).Addr().String())
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := c.Write([]byte(strings.Replace(line, "PING", "PONG", 1))); err != nil {
					return
				}
			}
		}()
	}
}

// session builds a captured session of ping exchanges.
func session(id int, client, server string, pings ...string) *tcpcopy.Session {
	s := &tcpcopy.Session{ID: id, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server), Handshake: true, ClientFIN: true, ServerFIN: true}
	t := time.Unix(1000, 0)
	for _, p := range pings {
		req, resp := "PING "+p+"\n", "PONG "+p+"\n"
		s.Exchanges = append(s.Exchanges, tcpcopy.Exchange{ReqOff: len(s.ClientData), ReqLen: len(req), ReqStart: t, ReqEnd: t,
			RespOff: len(s.ServerData), RespLen: len(resp), RespStart: t.Add(time.Millisecond), RespEnd: t.Add(time.Millisecond)})
		s.ClientData = append(s.ClientData, req...)
		s.ServerData = append(s.ServerData, resp...)
		t = t.Add(10 * time.Millisecond)
	}
	s.Start, s.End = s.Exchanges[0].ReqStart, t
	return s
}

// TestReplayThroughStack replays sessions from several captured client
// addresses through a ustack stack that owns those addresses, to a server
// on a second stack: the server sees the captured client addresses.
func TestReplayThroughStack(t *testing.T) {
	a, b := link.Pipe(1500)
	sa, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	defer sb.Close()
	// The replaying stack owns the captured client addresses.
	if err := sa.AddInterface("p0", a, netip.MustParsePrefix("10.9.0.11/24"), netip.MustParsePrefix("10.9.0.12/24"), netip.MustParsePrefix("fd09::11/64")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("fd09::2/64")); err != nil {
		t.Fatal(err)
	}
	ln, err := sb.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &pingServer{}
	srv.wg.Add(1)
	go srv.serve(ln)
	defer func() { ln.Close(); srv.wg.Wait() }()

	sessions := []*tcpcopy.Session{
		session(1, "10.9.0.11:40001", "192.0.2.1:80", "a", "b", "c"),
		session(2, "10.9.0.12:40002", "192.0.2.1:80", "d"),
		session(3, "[fd09::11]:40003", "[2001:db8::1]:80", "e", "f"),
		session(4, "198.51.100.7:40004", "192.0.2.1:80", "g"), // not an address of the stack
	}
	rp := tcpcopy.NewReplayer(tcpcopy.Options{
		Dialer: &Dialer{Stack: sa, KeepClientAddr: true, Timeout: 5 * time.Second},
		Target: func(s *tcpcopy.Session) (string, bool) {
			if s.Client.Addr().Is6() {
				return "[fd09::2]:8080", true
			}
			return "10.9.0.2:8080", true
		},
		Copies: 2,
	})
	for _, s := range sessions {
		if err := rp.Submit(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	rep := rp.Wait()
	if rep.Replayed != 8 || rep.Status[tcpcopy.StatusIdentical] != 6 || rep.Status[tcpcopy.StatusNoConnect] != 2 {
		var sb strings.Builder
		rep.WriteText(&sb)
		t.Fatalf("report:\n%s", sb.String())
	}
	srv.mu.Lock()
	peers := map[string]int{}
	for _, p := range srv.peers {
		peers[p]++
	}
	srv.mu.Unlock()
	want := map[string]int{"10.9.0.11": 2, "10.9.0.12": 2, "fd09::11": 2}
	for k, v := range want {
		if peers[k] != v {
			t.Errorf("server saw %v, want %v", peers, want)
			break
		}
	}
}
