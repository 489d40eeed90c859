package tcp

import (
	"bytes"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// tfoRig drives a Fast Open handshake by hand: client at addrA, server at
// addrB, 10 ms one way.
type tfoRig struct {
	t        *testing.T
	now      time.Time
	cfg      *Config
	keys     FastOpenKeys
	cli, srv *Conn
	cctr     Counters
	sctr     Counters
}

func newTFORig(t *testing.T) *tfoRig {
	r := &tfoRig{t: t, now: t0, cfg: cfgDefault()}
	r.cfg.FastOpen = FastOpenClient | FastOpenServer
	r.keys.Primary = *isnTestKey(7)
	r.cli = NewActive(r.cfg, Tuple{Local: addrA, Remote: addrB}, 1000, r.now)
	r.cli.SetCounters(&r.cctr)
	return r
}

func out(c *Conn, now time.Time) []Segment {
	var r []Segment
	c.Output(now, func(s *Segment) { r = append(r, copySeg(s)) })
	return r
}

func (r *tfoRig) one(segs []Segment, what string) Segment {
	r.t.Helper()
	if len(segs) != 1 {
		r.t.Fatalf("%s: want one segment, got %d: %+v", what, len(segs), segs)
	}
	return segs[0]
}

// serve creates the server from syn and applies ServerFastOpen.
func (r *tfoRig) serve(syn Segment) (accepted bool, synack Segment) {
	r.t.Helper()
	r.now = r.now.Add(10 * time.Millisecond)
	srv, err := NewPassive(r.cfg, Tuple{Local: addrB, Remote: addrA}, 5000, &syn, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	srv.SetCounters(&r.sctr)
	r.srv = srv
	accepted = srv.ServerFastOpen(&r.keys, r.cfg.FastOpen, &syn)
	return accepted, r.one(out(srv, r.now), "SYN-ACK")
}

func (r *tfoRig) cookie() []byte {
	c := r.keys.Cookie(addrA.Addr(), addrB.Addr())
	return c[:]
}

func TestFastOpenCookieRequest(t *testing.T) {
	for _, exp := range []bool{false, true} {
		r := newTFORig(t)
		r.cli.SetFastOpen(nil, exp, 0, false)
		r.cli.Send([]byte("early")) // no cookie: stays for after the handshake
		syn := r.one(out(r.cli, r.now), "SYN")
		if syn.Flags != wire.TCPFlagSYN || !syn.Options.HasFastOpen || syn.Options.CookieLen != 0 ||
			syn.Options.FastOpenExp != exp || len(syn.Payload) != 0 {
			t.Fatalf("SYN %+v", syn)
		}
		acc, sa := r.serve(syn)
		if acc || r.sctr.TCPFastOpenCookieReqd != 1 {
			t.Fatalf("accepted %v reqd %d", acc, r.sctr.TCPFastOpenCookieReqd)
		}
		o := sa.Options
		if sa.Flags != wire.TCPFlagSYN|wire.TCPFlagACK || sa.Ack != 1001 || !o.HasFastOpen ||
			o.FastOpenExp != exp || !bytes.Equal(o.Cookie[:o.CookieLen], r.cookie()) {
			t.Fatalf("exp=%v: SYN-ACK %+v", exp, sa)
		}
		r.now = r.now.Add(10 * time.Millisecond)
		r.cli.Input(&sa, r.now)
		if got := r.cli.PeerFastOpenCookie(); !bytes.Equal(got, r.cookie()) || r.cli.PeerFastOpenExp() != exp {
			t.Fatalf("client stored cookie % x exp %v", got, r.cli.PeerFastOpenExp())
		}
		// The data goes after the handshake, carrying the ACK.
		d := r.one(out(r.cli, r.now), "first data")
		if d.Seq != 1001 || d.Ack != 5001 || string(d.Payload) != "early" || r.cli.SynDataAcked() {
			t.Fatalf("data %+v", d)
		}
		if r.cctr.TCPFastOpenActive != 0 || r.cctr.TCPFastOpenActiveFail != 0 {
			t.Fatalf("client counters %+v", r.cctr)
		}
	}
}

func TestFastOpenCookieUse(t *testing.T) {
	r := newTFORig(t)
	r.cli.SetFastOpen(r.cookie(), false, 0, false)
	r.cli.Send([]byte("GET / HTTP/1.0\r\n\r\n"))
	syn := r.one(out(r.cli, r.now), "SYN")
	if syn.Flags != wire.TCPFlagSYN || syn.Seq != 1000 || string(syn.Payload) != "GET / HTTP/1.0\r\n\r\n" ||
		!bytes.Equal(syn.Options.Cookie[:syn.Options.CookieLen], r.cookie()) {
		t.Fatalf("SYN %+v", syn)
	}
	acc, sa := r.serve(syn)
	if !acc || r.sctr.TCPFastOpenPassive != 1 {
		t.Fatalf("not accepted")
	}
	// Readable before the handshake completes.
	if r.srv.State() != SynReceived || r.srv.Readable() != 18 {
		t.Fatalf("server %v readable %d", r.srv.State(), r.srv.Readable())
	}
	buf := make([]byte, 64)
	if n, _ := r.srv.Recv(buf); string(buf[:n]) != "GET / HTTP/1.0\r\n\r\n" {
		t.Fatalf("server read %q", buf[:n])
	}
	// The SYN-ACK acknowledges SYN and data, and carries no new cookie.
	if sa.Ack != 1000+1+18 || sa.Options.HasFastOpen {
		t.Fatalf("SYN-ACK %+v", sa)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	if !r.cli.SynDataAcked() || !r.cli.Info().Options.SynData || r.cctr.TCPFastOpenActive != 1 || r.cli.State() != Established {
		t.Fatalf("client: acked %v counters %+v", r.cli.SynDataAcked(), r.cctr)
	}
	ack := r.one(out(r.cli, r.now), "ACK")
	if ack.Flags != wire.TCPFlagACK || ack.Seq != 1019 || ack.Ack != 5001 || len(ack.Payload) != 0 {
		t.Fatalf("ACK %+v", ack)
	}
	if in := r.cli.Info(); in.Unacked != 0 || in.SndUna != 1019 || in.BytesAcked != 18 {
		t.Fatalf("client info %+v", in)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.srv.Input(&ack, r.now)
	if r.srv.State() != Established {
		t.Fatal(r.srv.State())
	}
	// Nothing is retransmitted later.
	r.now = r.now.Add(5 * time.Second)
	r.cli.Timeout(r.now)
	if s := out(r.cli, r.now); len(s) != 0 {
		t.Fatalf("client sent %+v", s)
	}
}

// An invalid cookie: only the SYN is acknowledged, a fresh cookie comes
// back, and the client sends the data again right after the handshake.
func TestFastOpenBadCookie(t *testing.T) {
	r := newTFORig(t)
	bad := append([]byte(nil), r.cookie()...)
	bad[0] ^= 1
	r.cli.SetFastOpen(bad, true, 0, false)
	r.cli.Send([]byte("hello"))
	syn := r.one(out(r.cli, r.now), "SYN")
	if len(syn.Payload) != 5 || !syn.Options.FastOpenExp {
		t.Fatalf("SYN %+v", syn)
	}
	acc, sa := r.serve(syn)
	if acc || r.srv.Readable() != 0 || r.sctr.TCPFastOpenPassiveFail != 1 {
		t.Fatalf("accepted %v readable %d", acc, r.srv.Readable())
	}
	if sa.Ack != 1001 || !sa.Options.FastOpenExp || !bytes.Equal(sa.Options.Cookie[:sa.Options.CookieLen], r.cookie()) {
		t.Fatalf("SYN-ACK %+v", sa)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	if r.cli.SynDataAcked() || r.cctr.TCPFastOpenActiveFail != 1 || r.cctr.TCPFastOpenActive != 0 {
		t.Fatalf("client counters %+v", r.cctr)
	}
	d := r.one(out(r.cli, r.now), "data")
	if d.Seq != 1001 || d.Ack != 5001 || string(d.Payload) != "hello" || d.Flags != wire.TCPFlagACK|wire.TCPFlagPSH {
		t.Fatalf("data %+v", d)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.srv.Input(&d, r.now)
	buf := make([]byte, 16)
	if n, _ := r.srv.Recv(buf); r.srv.State() != Established || string(buf[:n]) != "hello" {
		t.Fatalf("server %v read %q", r.srv.State(), buf[:n])
	}
}

// A server without Fast Open ignores the SYN data: same fallback, no cookie.
func TestFastOpenSynAckWithoutDataAck(t *testing.T) {
	r := newTFORig(t)
	r.cli.SetFastOpen(r.cookie(), false, 0, false)
	r.cli.Send([]byte("hello"))
	syn := r.one(out(r.cli, r.now), "SYN")
	r.cfg = cfgDefault() // server side: tcp_fastopen=1 (client only)
	acc, sa := r.serve(syn)
	if acc || sa.Ack != 1001 || sa.Options.HasFastOpen {
		t.Fatalf("accepted %v SYN-ACK %+v", acc, sa)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	d := r.one(out(r.cli, r.now), "data")
	if d.Seq != 1001 || string(d.Payload) != "hello" || r.cctr.TCPFastOpenActiveFail != 1 || r.cli.PeerFastOpenCookie() != nil {
		t.Fatalf("data %+v counters %+v", d, r.cctr)
	}
}

// Cookies made with the previous key stay valid after one rotation; the
// client gets a cookie of the new primary key.
func TestFastOpenKeyRotationEngine(t *testing.T) {
	r := newTFORig(t)
	old := r.cookie()
	r.keys.Rotate(*isnTestKey(8))
	r.cli.SetFastOpen(old, false, 0, false)
	r.cli.Send([]byte("x"))
	syn := r.one(out(r.cli, r.now), "SYN")
	acc, sa := r.serve(syn)
	if !acc || sa.Ack != 1002 || !bytes.Equal(sa.Options.Cookie[:sa.Options.CookieLen], r.cookie()) || bytes.Equal(old, r.cookie()) {
		t.Fatalf("accepted %v SYN-ACK %+v", acc, sa)
	}
	// Two rotations later the old cookie fails.
	r2 := newTFORig(t)
	r2.keys.Rotate(*isnTestKey(8))
	r2.keys.Rotate(*isnTestKey(9))
	r2.cli.SetFastOpen(old, false, 0, false)
	r2.cli.Send([]byte("x"))
	acc, sa = r2.serve(r2.one(out(r2.cli, r2.now), "SYN"))
	if acc || sa.Ack != 1001 || r2.sctr.TCPFastOpenPassiveFail != 1 {
		t.Fatalf("stale cookie: accepted %v SYN-ACK %+v", acc, sa)
	}
}

// A retransmitted SYN carries no data (Linux); the data follows the
// handshake. tcp_fastopen 0x4: data without any option. The SYN data is
// bounded by the remembered MSS.
func TestFastOpenSynRetransmitNoData(t *testing.T) {
	r := newTFORig(t)
	r.cli.SetFastOpen(nil, false, 100, true)
	r.cli.Send(bytes.Repeat([]byte("a"), 300))
	syn := r.one(out(r.cli, r.now), "SYN")
	if syn.Options.HasFastOpen || len(syn.Payload) != 100 {
		t.Fatalf("SYN %+v", syn)
	}
	if d := r.cli.Deadline(); d != t0.Add(time.Second) {
		t.Fatalf("deadline %v", d.Sub(t0))
	}
	r.now = t0.Add(time.Second)
	r.cli.Timeout(r.now)
	syn2 := r.one(out(r.cli, r.now), "SYN retransmission")
	if syn2.Flags != wire.TCPFlagSYN || syn2.Seq != 1000 || len(syn2.Payload) != 0 {
		t.Fatalf("retransmitted SYN %+v", syn2)
	}
	acc, sa := r.serve(syn2)
	if acc || sa.Ack != 1001 {
		t.Fatalf("SYN-ACK %+v", sa)
	}
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	d := r.one(out(r.cli, r.now), "data after the handshake")
	if d.Seq != 1001 || d.Ack != 5001 || len(d.Payload) != 300 || r.cctr.TCPFastOpenActiveFail != 1 {
		t.Fatalf("data seq %d len %d, counters %+v", d.Seq, len(d.Payload), r.cctr)
	}
}

// With Fast Open the server answers in SYN-RECEIVED, right behind its
// SYN-ACK: the client has the reply one RTT after its SYN (Linux).
func TestFastOpenServerRepliesBeforeHandshakeEnds(t *testing.T) {
	r := newTFORig(t)
	r.cli.SetFastOpen(r.cookie(), false, 0, false)
	r.cli.Send([]byte("ping"))
	syn := r.one(out(r.cli, r.now), "SYN")
	acc, sa := r.serve(syn) // at 10 ms
	if !acc {
		t.Fatal("not accepted")
	}
	buf := make([]byte, 16)
	if n, _ := r.srv.Recv(buf); string(buf[:n]) != "ping" {
		t.Fatalf("server read %q", buf[:n])
	}
	r.srv.Send([]byte("pong"))
	d := r.one(out(r.srv, r.now), "reply in SYN-RECEIVED")
	if r.srv.State() != SynReceived || d.Seq != 5001 || d.Ack != 1005 || string(d.Payload) != "pong" || d.Flags != wire.TCPFlagACK|wire.TCPFlagPSH {
		t.Fatalf("state %v reply %+v", r.srv.State(), d)
	}
	// Client at 20 ms: SYN-ACK, then the reply.
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	r.cli.Input(&d, r.now)
	if n, _ := r.cli.Recv(buf); string(buf[:n]) != "pong" || r.now.Sub(t0) != 20*time.Millisecond {
		t.Fatalf("client read %q at %v", buf[:n], r.now.Sub(t0))
	}
	ack := r.one(out(r.cli, r.now), "client ACK")
	if ack.Seq != 1005 || ack.Ack != 5005 || len(ack.Payload) != 0 {
		t.Fatalf("client ACK %+v", ack)
	}
	// Server at 30 ms: the ACK covers SYN-ACK and reply.
	r.now = r.now.Add(10 * time.Millisecond)
	r.srv.Input(&ack, r.now)
	if in := r.srv.Info(); r.srv.State() != Established || in.Unacked != 0 || in.SndUna != 5005 || in.BytesAcked != 4 {
		t.Fatalf("server %v info %+v", r.srv.State(), in)
	}
	if !r.srv.Deadline().IsZero() && r.srv.Deadline().Sub(r.now) < time.Second {
		t.Fatalf("server timer at %v", r.srv.Deadline().Sub(t0))
	}
}

// The reply sent in SYN-RECEIVED is retransmitted by the RTO if the
// client's ACK covers only the SYN-ACK.
func TestFastOpenServerReplyRetransmitted(t *testing.T) {
	r := newTFORig(t)
	r.cli.SetFastOpen(r.cookie(), false, 0, false)
	r.cli.Send([]byte("ping"))
	_, sa := r.serve(r.one(out(r.cli, r.now), "SYN"))
	r.srv.Send([]byte("pong"))
	r.one(out(r.srv, r.now), "reply (lost)")
	r.now = r.now.Add(10 * time.Millisecond)
	r.cli.Input(&sa, r.now)
	ack := r.one(out(r.cli, r.now), "client ACK")
	r.now = r.now.Add(10 * time.Millisecond)
	r.srv.Input(&ack, r.now)
	if r.srv.State() != Established || r.srv.Info().Unacked != 1 {
		t.Fatalf("server %v unacked %d", r.srv.State(), r.srv.Info().Unacked)
	}
	dl := r.srv.Deadline()
	if dl.IsZero() {
		t.Fatal("no retransmission timer for the reply")
	}
	r.now = dl
	r.srv.Timeout(r.now)
	d := r.one(out(r.srv, r.now), "retransmitted reply")
	if d.Seq != 5001 || string(d.Payload) != "pong" {
		t.Fatalf("retransmission %+v at %v", d, dl.Sub(t0))
	}
}
