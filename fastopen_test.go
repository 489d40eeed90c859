package ustack

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// tfoPair is two stacks over a pipe, both with tcp_fastopen=3 (client and
// server), and a Fast Open listener on B port 80.
type tfoPair struct {
	A, B  *Stack
	ln    *TCPListener
	reqAt chan time.Time // when serveEcho read each request
}

func newTFOPair(t testing.TB, wrap func(a, b link.Endpoint) (link.Endpoint, link.Endpoint)) *tfoPair {
	t.Helper()
	cfg := tcp.DefaultConfig()
	cfg.FastOpen = tcp.FastOpenClient | tcp.FastOpenServer
	a, b := link.Pipe(1500)
	if wrap != nil {
		a, b = wrap(a, b)
	}
	sa, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	if err := sa.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")); err != nil {
		t.Fatal(err)
	}
	ln, err := sb.ListenTCP("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := ln.SetFastOpen(16); err != nil {
		t.Fatal(err)
	}
	return &tfoPair{A: sa, B: sb, ln: ln, reqAt: make(chan time.Time, 16)}
}

// serveEcho answers every request (one Read) on the listener with
// "re:"+request, then closes.
func (p *tfoPair) serveEcho(t testing.TB) {
	go func() {
		for {
			c, err := p.ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				p.reqAt <- time.Now()
				c.Write(append([]byte("re:"), buf[:n]...))
				io.Copy(io.Discard, c)
			}()
		}
	}()
}

// fetch dials (with Fast Open or not), writes req and returns the time
// from the start of Dial to the first response byte.
func (p *tfoPair) fetch(t testing.TB, fastOpen bool, req string) time.Duration {
	el, _ := p.fetchTimes(t, fastOpen, req)
	return el
}

// fetchTimes is fetch, also returning when the server read the request
// (from the start of Dial).
func (p *tfoPair) fetchTimes(t testing.TB, fastOpen bool, req string) (resp, atServer time.Duration) {
	return p.fetchFrom(t, "10.0.0.2:80", fastOpen, req)
}

func (p *tfoPair) fetchFrom(t testing.TB, addr string, fastOpen bool, req string) (resp, atServer time.Duration) {
	t.Helper()
	start := time.Now()
	d := Dialer{Stack: p.A, FastOpen: fastOpen, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	rest := make([]byte, len(req)+2)
	if _, err := io.ReadFull(c, rest); err != nil || string(buf)+string(rest) != "re:"+req {
		t.Fatalf("response %q %v", string(buf)+string(rest), err)
	}
	return el, (<-p.reqAt).Sub(start)
}

// TestFastOpenCookies: the first Fast Open connection asks for a cookie
// and caches the one the server grants; the second sends it with the
// request in the SYN and the server validates it. Data written right
// after Dial arrives either way.
func TestFastOpenCookies(t *testing.T) {
	p := newTFOPair(t, nil)
	p.serveEcho(t)
	for i := 0; i < 2; i++ {
		p.fetch(t, true, "GET")
		if i == 0 {
			p.A.tcp.tfo.mu.Lock()
			e, ok := p.A.tcp.tfo.cache.Entry(netip.MustParseAddr("10.0.0.2"))
			p.A.tcp.tfo.mu.Unlock()
			if !ok || e.CookieLen != tcp.FastOpenCookieLen {
				t.Fatalf("no cookie cached after the first connection: %+v", e)
			}
			want := p.B.FastOpenKeys()
			ck := want.Cookie(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
			if !bytes.Equal(e.Bytes(), ck[:]) {
				t.Fatalf("cached cookie %x, server's %x", e.Bytes(), ck)
			}
		}
	}
	// IPv6: its own cookie (the cache is keyed by server address).
	for i := 0; i < 2; i++ {
		p.fetchFrom(t, "[fd00::2]:80", true, "GET6")
	}
	sa, sb := p.A.Stats().TCP, p.B.Stats().TCP
	if sa.TCPFastOpenActive != 2 || sa.TCPFastOpenActiveFail != 0 {
		t.Errorf("client TCPFastOpenActive %d ActiveFail %d, want 2 0", sa.TCPFastOpenActive, sa.TCPFastOpenActiveFail)
	}
	if sb.TCPFastOpenPassive != 2 || sb.TCPFastOpenCookieReqd != 2 || sb.TCPFastOpenPassiveFail != 0 {
		t.Errorf("server TCPFastOpenPassive %d CookieReqd %d PassiveFail %d, want 2 2 0",
			sb.TCPFastOpenPassive, sb.TCPFastOpenCookieReqd, sb.TCPFastOpenPassiveFail)
	}
}

// TestFastOpenDeferredConnect: a Fast Open Dial with a cached cookie
// sends nothing until the first Write; a Read first sends the SYN (without
// data); closing before any I/O leaves nothing behind.
func TestFastOpenDeferredConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTFOPair(t, nil)
		p.serveEcho(t)
		p.fetch(t, true, "cookie please")
		d := Dialer{Stack: p.A, FastOpen: true}
		// Close before any I/O.
		c, err := d.Dial("tcp", "10.0.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(p.A.Connections()); n != 2 { // the fetch's TIME-WAIT and c
			t.Errorf("%d connections, want 2", n)
		}
		if st := c.(*TCPConn).State(); st != tcp.SynSent {
			t.Errorf("deferred connect in %v, want SYN-SENT", st)
		}
		out := p.A.Stats().TCP.OutSegs
		c.Close()
		synctest.Wait()
		if n := len(p.A.Connections()); n != 1 || p.A.Stats().TCP.OutSegs != out {
			t.Errorf("after closing a deferred connect: %d connections (want 1), %d segments sent (want 0)", n, p.A.Stats().TCP.OutSegs-out)
		}
		// Read first: the SYN goes without data; the exchange still works.
		c, err = d.Dial("tcp", "10.0.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read before the request returned data")
		}
		if st := c.(*TCPConn).State(); st != tcp.Established {
			t.Errorf("after a read: %v, want ESTABLISHED", st)
		}
		c.SetReadDeadline(time.Time{})
		c.Write([]byte("late"))
		buf := make([]byte, 7)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "re:late" {
			t.Errorf("response %q %v", buf, err)
		}
		c.Close()
		p.A.Close()
		p.B.Close()
	})
}

// TestFastOpenRTT measures, on virtual time over a link with 25 ms delay
// each way (RTT 50 ms), the time from Dial to the first response byte of a
// small request: two round trips without Fast Open (handshake, then
// request) and on the first Fast Open connection (which only fetches the
// cookie), one round trip once the cookie is cached (the request rides in
// the SYN and the server answers before the handshake ends).
func TestFastOpenRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 25 * time.Millisecond
		const rtt = 2 * delay
		p := newTFOPair(t, func(a, b link.Endpoint) (link.Endpoint, link.Endpoint) {
			return link.Impair(a, link.Impairment{Delay: delay}), link.Impair(b, link.Impairment{Delay: delay})
		})
		p.serveEcho(t)
		plain, plainSrv := p.fetchTimes(t, false, "GET /")
		first, firstSrv := p.fetchTimes(t, true, "GET /")
		cached, cachedSrv := p.fetchTimes(t, true, "GET /")
		again := p.fetch(t, true, "GET /")
		t.Logf("Dial to first response byte, RTT %v: without Fast Open %v, Fast Open cookie request %v, with cached cookie %v and %v",
			rtt, plain, first, cached, again)
		t.Logf("Dial to request read by the server: without Fast Open %v, cookie request %v, with cached cookie %v",
			plainSrv, firstSrv, cachedSrv)
		// The request reaches the server's application with the SYN.
		if plainSrv != 3*delay || firstSrv != 3*delay || cachedSrv != delay {
			t.Errorf("request at the server after %v, %v, %v; want 1.5, 1.5 and 0.5 RTT", plainSrv, firstSrv, cachedSrv)
		}
		if plain != 2*rtt || first != 2*rtt {
			t.Errorf("without a cookie: %v and %v, want 2 RTT = %v", plain, first, 2*rtt)
		}
		if cached != rtt || again != rtt {
			t.Errorf("with a cached cookie: %v and %v, want 1 RTT = %v", cached, again, rtt)
		}
		if plain-cached < rtt {
			t.Errorf("Fast Open saved %v, want one RTT (%v)", plain-cached, rtt)
		}
		p.A.Close()
		p.B.Close()
	})
}

// rawServer is a stack with a Fast Open listener on 10.0.0.2:80 and the
// other end of its link, where a test writes hand-made segments.
type rawServer struct {
	s    *Stack
	ln   *TCPListener
	peer link.Endpoint
	pkts chan []byte
}

var (
	rawClient = netip.MustParseAddr("10.0.0.1")
	rawSrv    = netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), 80)
)

func newRawServer(t *testing.T, fastOpen int, qlen int) *rawServer {
	t.Helper()
	cfg := tcp.DefaultConfig()
	cfg.FastOpen = fastOpen
	a, b := link.Pipe(1500)
	s, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); a.Close() })
	if err := s.AddInterface("p0", b, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	ln, err := s.ListenTCP("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	if qlen >= 0 {
		ln.SetFastOpen(qlen)
	}
	r := &rawServer{s: s, ln: ln, peer: a, pkts: make(chan []byte, 64)}
	go func() {
		for {
			buf := make([]byte, 2048)
			n, err := a.ReadPacket(buf)
			if err != nil {
				close(r.pkts)
				return
			}
			r.pkts <- buf[:n]
		}
	}()
	return r
}

// syn sends a SYN from port with the given Fast Open option (nil: none;
// empty: cookie request) and data, and returns the SYN-ACK.
func (r *rawServer) syn(t *testing.T, port uint16, cookie []byte, data string) (wire.TCP, wire.TCPOptions) {
	t.Helper()
	o := wire.TCPOptions{MSS: 1460, HasMSS: true}
	if cookie != nil {
		o.HasFastOpen = true
		o.CookieLen = copy(o.Cookie[:], cookie)
	}
	src := netip.AddrPortFrom(rawClient, port)
	pkt := rawTCP4(src, rawSrv, wire.TCPHeader{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535, Options: &o}, []byte(data))
	if err := r.peer.WritePacket(pkt); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case b := <-r.pkts:
			ip, err := wire.ParseIPv4(b)
			if err != nil {
				t.Fatal(err)
			}
			var opts wire.TCPOptions
			h, err := wire.ParseTCPWithOptions(ip.Payload(), &opts)
			if err != nil {
				t.Fatal(err)
			}
			if h.DstPort() != port {
				continue // e.g. a retransmitted SYN-ACK of an earlier SYN
			}
			if h.Flags() != wire.TCPFlagSYN|wire.TCPFlagACK {
				t.Fatalf("got flags %#x to port %d, want SYN-ACK", h.Flags(), port)
			}
			return h, opts
		case <-timeout:
			t.Fatal("no SYN-ACK")
		}
	}
}

func (r *rawServer) cookie() []byte {
	k := r.s.FastOpenKeys()
	c := k.Cookie(rawClient, rawSrv.Addr())
	return c[:]
}

// TestFastOpenServerCookies: on the wire, a listener with TCP_FASTOPEN
// answers a cookie request with the cookie Linux would compute from the
// key; a valid cookie gets its data acknowledged in the SYN-ACK and handed
// to Accept/Read before the handshake completes; an invalid one gets only
// the SYN acknowledged and a fresh cookie. Cookies of the previous key
// stay valid after a rotation and are replaced.
func TestFastOpenServerCookies(t *testing.T) {
	r := newRawServer(t, tcp.FastOpenServer, 4)
	// Cookie request.
	_, o := r.syn(t, 5001, []byte{}, "")
	if !o.HasFastOpen || !bytes.Equal(o.Cookie[:o.CookieLen], r.cookie()) {
		t.Fatalf("SYN-ACK Fast Open option %v %x, want cookie %x", o.HasFastOpen, o.Cookie[:o.CookieLen], r.cookie())
	}
	// Valid cookie with data.
	h, o := r.syn(t, 5002, r.cookie(), "hello")
	if h.Ack() != 1000+1+5 || o.HasFastOpen {
		t.Errorf("valid cookie: SYN-ACK ack %d (want %d), Fast Open option %v (want none)", h.Ack(), 1006, o.HasFastOpen)
	}
	r.ln.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := r.ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept of the Fast Open connection: %v", err)
	}
	if st := c.State(); st != tcp.SynReceived {
		t.Errorf("accepted Fast Open connection in %v, want SYN-RECEIVED", st)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("read of the SYN data: %q %v", buf[:n], err)
	}
	// Wrong cookie: data not taken, fresh cookie.
	bad := append([]byte(nil), r.cookie()...)
	bad[0] ^= 1
	h, o = r.syn(t, 5003, bad, "hello")
	if h.Ack() != 1001 || !bytes.Equal(o.Cookie[:o.CookieLen], r.cookie()) {
		t.Errorf("invalid cookie: SYN-ACK ack %d (want 1001), cookie %x (want %x)", h.Ack(), o.Cookie[:o.CookieLen], r.cookie())
	}
	// Rotation: the old cookie is still good and gets replaced.
	old := r.cookie()
	r.s.RotateFastOpenKey([16]byte{1, 2, 3})
	if bytes.Equal(old, r.cookie()) {
		t.Fatal("rotation did not change the cookie")
	}
	h, o = r.syn(t, 5004, old, "hi")
	if h.Ack() != 1003 || !bytes.Equal(o.Cookie[:o.CookieLen], r.cookie()) {
		t.Errorf("backup-key cookie: SYN-ACK ack %d (want 1003), cookie %x (want the new %x)", h.Ack(), o.Cookie[:o.CookieLen], r.cookie())
	}
	st := r.s.Stats().TCP
	if st.TCPFastOpenCookieReqd != 1 || st.TCPFastOpenPassive != 2 || st.TCPFastOpenPassiveFail != 1 || st.TCPFastOpenListenOverflow != 0 {
		t.Errorf("CookieReqd %d Passive %d PassiveFail %d ListenOverflow %d, want 1 2 1 0",
			st.TCPFastOpenCookieReqd, st.TCPFastOpenPassive, st.TCPFastOpenPassiveFail, st.TCPFastOpenListenOverflow)
	}
}

// TestFastOpenListenOverflow: with TCP_FASTOPEN qlen 1, a second Fast
// Open SYN while the first connection is still in its handshake gets a
// normal handshake (data not acknowledged) and counts
// TCPFastOpenListenOverflow; once the first handshake completes, Fast
// Open works again.
func TestFastOpenListenOverflow(t *testing.T) {
	r := newRawServer(t, tcp.FastOpenServer, 1)
	ck := r.cookie()
	h1, _ := r.syn(t, 6001, ck, "one")
	if h1.Ack() != 1004 {
		t.Fatalf("first Fast Open SYN: ack %d, want 1004", h1.Ack())
	}
	h, o := r.syn(t, 6002, ck, "two")
	if h.Ack() != 1001 || o.HasFastOpen {
		t.Errorf("over the queue limit: ack %d (want 1001), Fast Open option %v (want none)", h.Ack(), o.HasFastOpen)
	}
	if n := r.s.Stats().TCP.TCPFastOpenListenOverflow; n != 1 {
		t.Errorf("TCPFastOpenListenOverflow %d, want 1", n)
	}
	// Complete the first handshake: its queue slot is freed.
	ack := rawTCP4(netip.AddrPortFrom(rawClient, 6001), rawSrv, wire.TCPHeader{Seq: 1004, Ack: h1.Seq() + 1, Flags: wire.TCPFlagACK, Window: 65535}, nil)
	r.peer.WritePacket(ack)
	deadline := time.Now().Add(5 * time.Second)
	for r.ln.l.tfoQ.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Fast Open queue not drained after the handshake completed")
		}
		time.Sleep(time.Millisecond)
	}
	if h, _ := r.syn(t, 6003, ck, "three"); h.Ack() != 1006 {
		t.Errorf("after the queue drained: ack %d, want 1006", h.Ack())
	}
}

// TestFastOpenListenerOff: without TCP_FASTOPEN on the listener (and
// without tcp_fastopen 0x400) no cookie is granted; with 0x400 it is.
func TestFastOpenListenerOff(t *testing.T) {
	r := newRawServer(t, tcp.FastOpenServer, -1)
	if _, o := r.syn(t, 7001, []byte{}, ""); o.HasFastOpen {
		t.Error("cookie granted by a listener without TCP_FASTOPEN")
	}
	if n := r.s.Stats().TCP.TCPFastOpenCookieReqd; n != 1 {
		t.Errorf("TCPFastOpenCookieReqd %d, want 1", n)
	}
	r = newRawServer(t, tcp.FastOpenServer|tcp.FastOpenServerAllListeners, -1)
	if _, o := r.syn(t, 7002, []byte{}, ""); !o.HasFastOpen || o.CookieLen != tcp.FastOpenCookieLen {
		t.Error("no cookie with tcp_fastopen 0x400")
	}
}

// rawPeer is the far end of a client stack's link, where a test plays a
// Fast Open server by hand.
type rawPeer struct {
	s    *Stack
	ep   link.Endpoint
	pkts chan []byte
}

func newRawPeer(t *testing.T, fastOpen int) *rawPeer {
	t.Helper()
	cfg := tcp.DefaultConfig()
	cfg.FastOpen = fastOpen
	a, b := link.Pipe(1500)
	s, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{s: s, ep: b, pkts: make(chan []byte, 64)}
	go func() {
		defer close(r.pkts)
		for {
			buf := make([]byte, 2048)
			n, err := b.ReadPacket(buf)
			if err != nil {
				return
			}
			r.pkts <- buf[:n]
		}
	}()
	return r
}

func (r *rawPeer) close() { r.s.Close(); r.ep.Close() }

// next returns the next TCP segment the client sent.
func (r *rawPeer) next(t *testing.T) (wire.TCP, wire.TCPOptions) {
	t.Helper()
	select {
	case b := <-r.pkts:
		ip, err := wire.ParseIPv4(b)
		if err != nil {
			t.Fatal(err)
		}
		var o wire.TCPOptions
		h, err := wire.ParseTCPWithOptions(ip.Payload(), &o)
		if err != nil {
			t.Fatal(err)
		}
		return h, o
	case <-time.After(30 * time.Second):
		t.Fatal("no segment from the client")
	}
	return nil, wire.TCPOptions{}
}

// synAck answers the client's SYN syn, acknowledging acked data bytes,
// with an optional cookie and the MSS 1200.
func (r *rawPeer) synAck(syn wire.TCP, acked int, cookie []byte) {
	o := wire.TCPOptions{MSS: 1200, HasMSS: true}
	if cookie != nil {
		o.HasFastOpen = true
		o.CookieLen = copy(o.Cookie[:], cookie)
	}
	srv := netip.AddrPortFrom(rawSrv.Addr(), syn.DstPort())
	cl := netip.AddrPortFrom(rawClient, syn.SrcPort())
	r.ep.WritePacket(rawTCP4(srv, cl, wire.TCPHeader{Seq: 5000, Ack: syn.Seq() + 1 + uint32(acked), Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: 65535, Options: &o}, nil))
}

func (r *rawPeer) cache() tcp.FastOpenEntry {
	r.s.tcp.tfo.mu.Lock()
	defer r.s.tcp.tfo.mu.Unlock()
	e, _ := r.s.tcp.tfo.cache.Entry(rawSrv.Addr())
	return e
}

// TestFastOpenClientFallback plays the server by hand, on virtual time:
// a cookie request learns the cookie and MSS; with a cookie, Dial returns
// without sending anything and the first Write sends the SYN with cookie
// (and data); a server that acknowledges only the SYN counts
// TCPFastOpenActiveFail; a Fast Open SYN that is lost, answered without a
// cookie, is a SYN loss, and after two of them the client stops using Fast
// Open towards that server.
func TestFastOpenClientFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRawPeer(t, tcp.FastOpenClient)
		defer r.close()
		d := Dialer{Stack: r.s, FastOpen: true}
		cookie := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		srv := rawSrv.String()

		// 1. Cookie request; Dial waits for the handshake.
		done := make(chan error, 1)
		go func() {
			c, err := d.Dial("tcp", srv)
			if err == nil {
				c.(*TCPConn).SetLinger(0)
				c.Close()
			}
			done <- err
		}()
		syn, o := r.next(t)
		if !o.HasFastOpen || o.CookieLen != 0 || len(syn.Payload()) != 0 {
			t.Fatalf("first SYN: Fast Open %v cookie len %d payload %d, want a bare cookie request", o.HasFastOpen, o.CookieLen, len(syn.Payload()))
		}
		r.synAck(syn, 0, cookie)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if e := r.cache(); !bytes.Equal(e.Bytes(), cookie) || e.MSS != 1200 {
			t.Fatalf("cache after the cookie request: %+v", e)
		}
		synctest.Wait()
		for len(r.pkts) > 0 {
			<-r.pkts // ACK, RST
		}

		// 2. With the cookie: nothing leaves before the first Write.
		c, err := d.Dial("tcp", srv)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(r.pkts) != 0 {
			t.Fatal("a Fast Open Dial with a cookie sent something before the first Write")
		}
		c.Write([]byte("hello"))
		syn, o = r.next(t)
		if syn.Flags() != wire.TCPFlagSYN || !bytes.Equal(o.Cookie[:o.CookieLen], cookie) {
			t.Fatalf("SYN after Write: flags %#x cookie %x, want SYN with %x", syn.Flags(), o.Cookie[:o.CookieLen], cookie)
		}
		synData := len(syn.Payload())
		// The server takes only the SYN.
		r.synAck(syn, 0, nil)
		if synData > 0 {
			// The data follows the handshake.
			for {
				h, _ := r.next(t)
				if len(h.Payload()) > 0 {
					if string(h.Payload()) != "hello" || h.Seq() != syn.Seq()+1 {
						t.Errorf("data after the handshake: seq %d %q, want %d hello", h.Seq(), h.Payload(), syn.Seq()+1)
					}
					break
				}
			}
			if st := r.s.Stats().TCP; st.TCPFastOpenActiveFail != 1 || st.TCPFastOpenActive != 0 {
				t.Errorf("TCPFastOpenActiveFail %d Active %d, want 1 0", st.TCPFastOpenActiveFail, st.TCPFastOpenActive)
			}
		}
		c.(*TCPConn).SetLinger(0)
		c.Close()
		synctest.Wait()
		for len(r.pkts) > 0 {
			<-r.pkts
		}

		// 3. Fast Open SYNs lost twice, answered without a cookie after
		// the retransmission: the server is avoided for a while.
		for i := 0; i < 2; i++ {
			c, err := d.Dial("tcp", srv)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("hello"))
			syn1, _ := r.next(t) // lost
			syn2, _ := r.next(t) // retransmitted after 1 s
			if syn2.Seq() != syn1.Seq() || syn2.Flags() != wire.TCPFlagSYN {
				t.Fatalf("retransmitted SYN: seq %d flags %#x", syn2.Seq(), syn2.Flags())
			}
			r.synAck(syn2, 0, nil)
			synctest.Wait()
			c.(*TCPConn).SetLinger(0)
			c.Close()
			synctest.Wait()
			for len(r.pkts) > 0 {
				<-r.pkts
			}
			if synData > 0 {
				if e := r.cache(); e.SynLoss != i+1 {
					t.Errorf("after lost Fast Open SYN %d: SynLoss %d", i+1, e.SynLoss)
				}
			}
		}
		if synData > 0 {
			go func() {
				c, err := d.Dial("tcp", srv)
				if err == nil {
					c.Close()
				}
			}()
			syn, o = r.next(t)
			if o.HasFastOpen {
				t.Errorf("SYN to a server in SYN-loss backoff carries a Fast Open option")
			}
			r.synAck(syn, 0, nil)
		}
		r.close()
	})
}

// TestFastOpenNoCookie: with tcp_fastopen 0x200 a listener with
// TCP_FASTOPEN takes data from SYNs without any cookie; with 0x4 a client
// sends its first data in a SYN without a Fast Open option.
func TestFastOpenNoCookie(t *testing.T) {
	r := newRawServer(t, tcp.FastOpenServer|tcp.FastOpenServerNoCookie, 4)
	if h, o := r.syn(t, 8001, nil, "data"); h.Ack() != 1005 || o.HasFastOpen {
		t.Errorf("tcp_fastopen 0x200: SYN-ACK ack %d (want 1005), option %v", h.Ack(), o.HasFastOpen)
	}
	if n := r.s.Stats().TCP.TCPFastOpenPassive; n != 1 {
		t.Errorf("TCPFastOpenPassive %d, want 1", n)
	}

	synctest.Test(t, func(t *testing.T) {
		p := newRawPeer(t, tcp.FastOpenClient|tcp.FastOpenClientNoCookie)
		defer p.close()
		d := Dialer{Stack: p.s, FastOpen: true}
		c, err := d.Dial("tcp", rawSrv.String())
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(p.pkts) != 0 {
			t.Fatal("SYN sent before the first Write with tcp_fastopen 0x4")
		}
		c.Write([]byte("data"))
		syn, o := p.next(t)
		if o.HasFastOpen || string(syn.Payload()) != "data" {
			t.Errorf("tcp_fastopen 0x4 SYN: option %v payload %q, want none and data", o.HasFastOpen, syn.Payload())
		}
		c.Close()
		p.close()
	})
}

// TestFastOpenBlackhole: with tcp_fastopen_blackhole_timeout_sec set, a
// Fast Open connection whose SYN times out three times makes the stack
// pause active Fast Open (the next Dial sends a plain SYN) for that long.
func TestFastOpenBlackhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := tcp.DefaultConfig()
		cfg.FastOpen = tcp.FastOpenClient
		cfg.FastOpenBlackholeTimeout = time.Hour
		a, b := link.Pipe(1500)
		defer b.Close()
		s, err := New(Config{TCP: cfg})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.AddInterface("p0", a, netip.MustParsePrefix("10.0.0.1/24"))
		syns := make(chan wire.TCPOptions, 64)
		go func() {
			buf := make([]byte, 2048)
			for {
				n, err := b.ReadPacket(buf)
				if err != nil {
					return
				}
				ip, _ := wire.ParseIPv4(buf[:n])
				var o wire.TCPOptions
				if h, err := wire.ParseTCPWithOptions(ip.Payload(), &o); err == nil && h.Flags()&wire.TCPFlagSYN != 0 {
					syns <- o
				}
			}
		}()
		d := Dialer{Stack: s, FastOpen: true, Timeout: 8 * time.Second}
		// No answer at all: SYNs at 0, 1, 3 s, third timeout at 7 s.
		if _, err := d.Dial("tcp", "10.0.0.2:80"); err == nil {
			t.Fatal("dial into a black hole succeeded")
		}
		synctest.Wait()
		for len(syns) > 0 {
			if o := <-syns; !o.HasFastOpen {
				t.Fatal("first connection's SYN without Fast Open option")
			}
		}
		s.tcp.tfo.mu.Lock()
		disabled := s.tcp.tfo.cache.ActiveDisabled(time.Now())
		s.tcp.tfo.mu.Unlock()
		if !disabled {
			t.Fatal("active Fast Open not paused after three SYN timeouts")
		}
		d.Timeout = time.Second
		d.Dial("tcp", "10.0.0.2:80")
		synctest.Wait()
		if o := <-syns; o.HasFastOpen {
			t.Error("SYN during the blackhole pause carries a Fast Open option")
		}
	})
}

// TestFastOpenKeyConfig: net.ipv4.tcp_fastopen_key from the Config is the
// server key (primary and backup); without it the key is random.
func TestFastOpenKeyConfig(t *testing.T) {
	cfg := tcp.DefaultConfig()
	if err := cfg.Set("net.ipv4.tcp_fastopen_key", "00000001-00000002-00000003-00000004,0000000a-0000000b-0000000c-0000000d"); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{TCP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := s.FastOpenKeys()
	if k != cfg.FastOpenKey || !k.HasBackup {
		t.Errorf("stack keys %+v, want the configured %+v", k, cfg.FastOpenKey)
	}
	s2, _ := New(Config{})
	defer s2.Close()
	s3, _ := New(Config{})
	defer s3.Close()
	if k2, k3 := s2.FastOpenKeys(), s3.FastOpenKeys(); k2.IsZero() || k2 == k3 {
		t.Errorf("default keys not random: %+v %+v", k2, k3)
	}
	s2.SetFastOpenKeys(k)
	if s2.FastOpenKeys() != k {
		t.Error("SetFastOpenKeys did not take")
	}
}
