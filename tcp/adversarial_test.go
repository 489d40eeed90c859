package tcp

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// Adversarial tests: a hostile peer (or an off-path attacker that guesses
// tuples) sends segments to a connection driven on the virtual clock. Each
// test asserts the exact reaction (segments sent, state, counters).

// advEstablished returns an idle established pair and the client's view of
// its sequence space. The injected segments target the client (A).
func advEstablished(t *testing.T, cfg *Config) (*vnet, *Conn, *Conn, Info) {
	t.Helper()
	v, a, b := established(t, cfg)
	if a.State() != Established || b.State() != Established {
		t.Fatalf("not established: %v %v", a.State(), b.State())
	}
	return v, a, b, a.Info()
}

// isPureACK reports whether s is a bare ACK of rcvNxt from sndNxt.
func isPureACK(s Segment, in Info) bool {
	return s.Flags == wire.TCPFlagACK && s.Seq == in.SndNxt && s.Ack == in.RcvNxt && len(s.Payload) == 0
}

// TestAdvBlindRSTSweep: an attacker sweeps RSTs over the whole receive
// window (one every 1000 bytes, 2 ms apart). None resets the connection;
// the challenge ACKs are rate limited to one per tcp_invalid_ratelimit; only
// the RST at exactly RCV.NXT is accepted (RFC 5961 3.2).
func TestAdvBlindRSTSweep(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	wnd := uint32(in.RcvWnd)
	if wnd < 60000 {
		t.Fatalf("receive window %d", wnd)
	}
	start := v.now
	sent, challenges := 0, 0
	for off := uint32(1); off < wnd; off += 1000 {
		for _, fl := range []uint8{wire.TCPFlagRST, wire.TCPFlagRST | wire.TCPFlagACK} {
			out := inject(v, a, Segment{Seq: in.RcvNxt + off, Ack: in.SndNxt, Flags: fl})
			sent++
			for _, s := range out {
				if !isPureACK(s, in) {
					t.Fatalf("reply to in-window RST at +%d: %+v", off, s)
				}
				challenges++
			}
			if a.State() != Established {
				t.Fatalf("in-window RST at +%d (flags %#x) changed state to %v", off, fl, a.State())
			}
			v.now = v.now.Add(2 * time.Millisecond)
		}
	}
	// One challenge ACK per 500 ms of the sweep.
	span := v.now.Sub(start)
	want := int((span-time.Nanosecond)/(500*time.Millisecond)) + 1
	if challenges != want {
		t.Errorf("%d RSTs over %v: %d challenge ACKs, want %d", sent, span, challenges, want)
	}
	if got := v.ctr[0].TCPChallengeACK; got != uint64(want) {
		t.Errorf("TCPChallengeACK %d want %d", got, want)
	}
	if got := v.ctr[0].TCPACKSkippedChallenge; got != uint64(sent-want) {
		t.Errorf("TCPACKSkippedChallenge %d want %d", got, sent-want)
	}
	// RSTs just outside the window on either side: silently dropped, not
	// even a challenge ACK.
	v.now = v.now.Add(time.Second)
	for _, seq := range []uint32{in.RcvNxt - 1, in.RcvNxt + wnd + 1, in.RcvNxt + 1<<31} {
		if out := inject(v, a, Segment{Seq: seq, Flags: wire.TCPFlagRST}); len(out) != 0 || a.State() != Established {
			t.Fatalf("out-of-window RST seq %d: %+v %v", seq-in.RcvNxt, out, a.State())
		}
	}
	// The connection still carries data both ways.
	if n, _ := a.Send([]byte("still alive")); n != 11 {
		t.Fatal("send failed")
	}
	v.flush(0)
	v.advance(v.now.Sub(t0) + time.Second)
	if v.c[1].Readable() != 11 || a.Info().SndUna != in.SndNxt+11 {
		t.Fatalf("after the sweep: peer readable %d, snd.una +%d", v.c[1].Readable(), a.Info().SndUna-in.SndNxt)
	}
	// The exact RST resets.
	in = a.Info()
	inject(v, a, Segment{Seq: in.RcvNxt, Flags: wire.TCPFlagRST})
	if a.State() != Closed || !errors.Is(a.Err(), syscall.ECONNRESET) {
		t.Fatalf("exact RST: state %v err %v", a.State(), a.Err())
	}
}

// TestAdvSYNInEstablished: a SYN anywhere (in the window, at RCV.NXT, out of
// the window, with ACK, FIN or data) gets a challenge ACK and never resets or
// resynchronises the connection (RFC 5961 4.2). SYN+RST is handled as a RST.
func TestAdvSYNInEstablished(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	cases := []Segment{
		{Seq: in.RcvNxt, Flags: wire.TCPFlagSYN},
		{Seq: in.RcvNxt + 1000, Flags: wire.TCPFlagSYN},
		{Seq: in.RcvNxt - 5000, Flags: wire.TCPFlagSYN},
		{Seq: in.RcvNxt + 1<<30, Flags: wire.TCPFlagSYN},
		{Seq: in.RcvNxt + 10, Ack: in.SndNxt, Flags: wire.TCPFlagSYN | wire.TCPFlagACK},
		{Seq: in.RcvNxt + 10, Flags: wire.TCPFlagSYN | wire.TCPFlagFIN},
		{Seq: in.RcvNxt, Ack: in.SndNxt, Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Payload: []byte("inject")},
		{Seq: in.RcvNxt + 10, Flags: wire.TCPFlagSYN | wire.TCPFlagRST},
	}
	for i, seg := range cases {
		v.now = v.now.Add(time.Second) // past the rate limit
		out := inject(v, a, seg)
		if len(out) != 1 || !isPureACK(out[0], in) {
			t.Fatalf("case %d flags %#x seq %+d: want one challenge ACK, got %+v", i, seg.Flags, int32(seg.Seq-in.RcvNxt), out)
		}
		if a.State() != Established || a.Readable() != 0 || a.Info().RcvNxt != in.RcvNxt {
			t.Fatalf("case %d: state %v readable %d rcv.nxt moved %d", i, a.State(), a.Readable(), a.Info().RcvNxt-in.RcvNxt)
		}
	}
	if got := v.ctr[0].TCPSYNChallenge; got != 7 {
		t.Errorf("TCPSYNChallenge %d, want 7 (the SYN+RST is a RST challenge)", got)
	}
	if got := v.ctr[0].TCPChallengeACK; got != 8 {
		t.Errorf("TCPChallengeACK %d, want 8", got)
	}
	// SYN+RST at exactly RCV.NXT: the RST is processed (as Linux: RST
	// checks come first), the connection resets.
	inject(v, a, Segment{Seq: in.RcvNxt, Flags: wire.TCPFlagSYN | wire.TCPFlagRST})
	if a.State() != Closed || !errors.Is(a.Err(), syscall.ECONNRESET) {
		t.Fatalf("SYN+RST at RCV.NXT: %v %v", a.State(), a.Err())
	}
}

// TestAdvBlindDataInjection: data with a sequence number in the window but
// an ACK outside [SND.UNA - MAX.SND.WND, SND.NXT] is dropped with a challenge
// ACK (RFC 5961 5.2); data whose ACK is old but within MAX.SND.WND is
// accepted (the RFC's acceptable range).
func TestAdvBlindDataInjection(t *testing.T) {
	v, a, b, _ := advEstablished(t, nil)
	// Move some data A -> B so that SND.UNA is well above the ISS.
	a.Send(make([]byte, 3000))
	v.flush(0)
	v.advance(v.now.Sub(t0) + time.Second)
	b.Recv(make([]byte, 3000))
	in := a.Info()
	maxWnd := uint32(in.SndWnd)
	if in.SndUna != in.SndNxt || maxWnd == 0 {
		t.Fatalf("not idle: una %d nxt %d wnd %d", in.SndUna, in.SndNxt, maxWnd)
	}
	maxWnd = a.maxSndWnd // MAX.SND.WND, the largest window the peer offered
	bad := []uint32{in.SndNxt + 1, in.SndNxt + 1<<20, in.SndUna - maxWnd - 1, in.SndUna - 1<<31}
	for i, ack := range bad {
		v.now = v.now.Add(time.Second)
		out := inject(v, a, Segment{Seq: in.RcvNxt, Ack: ack, Flags: wire.TCPFlagACK | wire.TCPFlagPSH, Window: 1000, Payload: []byte("evil")})
		if len(out) != 1 || !isPureACK(out[0], in) {
			t.Fatalf("bad ack %d: want a challenge ACK, got %+v", i, out)
		}
		if a.Readable() != 0 || a.Info().RcvNxt != in.RcvNxt || a.Info().SndUna != in.SndUna {
			t.Fatalf("bad ack %d: data accepted (readable %d) or snd.una moved", i, a.Readable())
		}
	}
	if got := v.ctr[0].TCPChallengeACK; got != uint64(len(bad)) {
		t.Errorf("TCPChallengeACK %d want %d", got, len(bad))
	}
	// A second bad segment within 500 ms gets no reply at all.
	if out := inject(v, a, Segment{Seq: in.RcvNxt, Ack: in.SndNxt + 99, Flags: wire.TCPFlagACK, Payload: []byte("evil")}); len(out) != 0 || a.Readable() != 0 {
		t.Fatalf("rate limit: %+v readable %d", out, a.Readable())
	}
	// ACK just inside the acceptable range (SND.UNA - MAX.SND.WND): the data
	// is accepted.
	v.now = v.now.Add(time.Second)
	inject(v, a, Segment{Seq: in.RcvNxt, Ack: in.SndUna - maxWnd, Flags: wire.TCPFlagACK, Window: 1000, Payload: []byte("ok")})
	if a.Readable() != 2 {
		t.Fatalf("data with an old but acceptable ACK: readable %d", a.Readable())
	}
}

// TestAdvChallengeACKRateLimit: 1000 in-window RSTs 10 ms apart (10 s) give
// exactly 20 challenge ACKs (tcp_invalid_ratelimit = 500 ms); the global
// limiter (tcp_challenge_ack_limit) suppresses what it refuses.
func TestAdvChallengeACKRateLimit(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	n := 0
	for k := 0; k < 1000; k++ {
		n += len(inject(v, a, Segment{Seq: in.RcvNxt + 1 + uint32(k), Flags: wire.TCPFlagRST}))
		v.now = v.now.Add(10 * time.Millisecond)
	}
	if n != 20 || v.ctr[0].TCPChallengeACK != 20 || v.ctr[0].TCPACKSkippedChallenge != 980 {
		t.Fatalf("challenge ACKs %d (counter %d, skipped %d), want 20/980", n, v.ctr[0].TCPChallengeACK, v.ctr[0].TCPACKSkippedChallenge)
	}
	// A global limiter allowing 3 challenge ACKs in total.
	budget := 3
	a.SetChallengeACKLimiter(func(time.Time) bool {
		if budget == 0 {
			return false
		}
		budget--
		return true
	})
	n = 0
	for k := 0; k < 10; k++ {
		v.now = v.now.Add(time.Second)
		n += len(inject(v, a, Segment{Seq: in.RcvNxt + 7, Flags: wire.TCPFlagSYN}))
	}
	if n != 3 || v.ctr[0].TCPChallengeACKGlobalRL != 7 {
		t.Fatalf("with a global budget of 3: %d challenge ACKs, %d globally limited", n, v.ctr[0].TCPChallengeACKGlobalRL)
	}
	if a.State() != Established {
		t.Fatalf("state %v", a.State())
	}
}

// TestAdvOutOfWindowAndOld: unacceptable segments are dropped and answered
// with an ACK (RFC 9293 3.10.7.4), rate limited for segments without data;
// old data is D-SACKed; nothing reaches the receive buffer.
func TestAdvOutOfWindowAndOld(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	wnd := uint32(in.RcvWnd)
	type tc struct {
		name  string
		seg   Segment
		reply bool // an ACK is expected (after 1 s of quiet)
	}
	cases := []tc{
		{"data beyond window", Segment{Seq: in.RcvNxt + wnd + 100, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Payload: []byte("x")}, true},
		{"data far beyond", Segment{Seq: in.RcvNxt + 1<<30, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Payload: []byte("xyz")}, true},
		{"old data", Segment{Seq: in.RcvNxt - 100, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Payload: make([]byte, 50)}, true},
		{"pure ACK beyond window", Segment{Seq: in.RcvNxt + wnd + 1, Ack: in.SndNxt, Flags: wire.TCPFlagACK}, true},
		{"old FIN", Segment{Seq: in.RcvNxt - 10, Ack: in.SndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagFIN}, true},
	}
	for _, c := range cases {
		v.now = v.now.Add(time.Second)
		out := inject(v, a, c.seg)
		if c.reply != (len(out) == 1) || (len(out) == 1 && (out[0].Flags&^wire.TCPFlagPSH != wire.TCPFlagACK || out[0].Ack != in.RcvNxt || len(out[0].Payload) != 0)) {
			t.Fatalf("%s: reply %+v", c.name, out)
		}
		if a.Readable() != 0 || a.Info().RcvNxt != in.RcvNxt || a.State() != Established {
			t.Fatalf("%s: readable %d state %v", c.name, a.Readable(), a.State())
		}
	}
	// The old-data ACK carries a D-SACK block for it (RFC 2883).
	v.now = v.now.Add(time.Second)
	out := inject(v, a, Segment{Seq: in.RcvNxt - 100, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Payload: make([]byte, 50)})
	if len(out) != 1 || out[0].Options.NumSACK < 1 || out[0].Options.SACK[0] != (wire.SACKBlock{Left: in.RcvNxt - 100, Right: in.RcvNxt - 50}) {
		t.Fatalf("old data: want D-SACK, got %+v", out)
	}
	// Bare out-of-window ACKs in a burst: one reply per 500 ms.
	n := 0
	for k := 0; k < 100; k++ {
		n += len(inject(v, a, Segment{Seq: in.RcvNxt + wnd + 1 + uint32(k), Ack: in.SndNxt, Flags: wire.TCPFlagACK}))
		v.now = v.now.Add(time.Millisecond)
	}
	if n != 0 && n != 1 {
		t.Fatalf("100 out-of-window ACKs in 100 ms: %d replies", n)
	}
}

// TestAdvTimeWaitRST: RSTs in TIME-WAIT. With tcp_rfc1337=0 an acceptable
// RST ends TIME-WAIT early (Linux); with tcp_rfc1337=1 it is ignored and
// TIME-WAIT lasts its full 60 s. An out-of-window RST never does anything.
func TestAdvTimeWaitRST(t *testing.T) {
	for _, rfc1337 := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.RFC1337 = rfc1337
		v, a, b, _ := advEstablished(t, &cfg)
		a.CloseWrite()
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		b.CloseWrite()
		v.flush(1)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		if a.State() != TimeWait {
			t.Fatalf("state %v", a.State())
		}
		twStart := v.now
		in := a.Info()
		if out := inject(v, a, Segment{Seq: in.RcvNxt + 1<<30, Flags: wire.TCPFlagRST}); len(out) != 0 || a.State() != TimeWait {
			t.Fatalf("rfc1337=%v out-of-window RST: %+v %v", rfc1337, out, a.State())
		}
		out := inject(v, a, Segment{Seq: in.RcvNxt, Flags: wire.TCPFlagRST})
		if len(out) != 0 {
			t.Fatalf("reply to RST in TIME-WAIT: %+v", out)
		}
		if !rfc1337 {
			if a.State() != Closed || a.Err() != nil {
				t.Fatalf("rfc1337=0: state %v err %v after RST", a.State(), a.Err())
			}
			continue
		}
		if a.State() != TimeWait {
			t.Fatalf("rfc1337=1: state %v after RST", a.State())
		}
		v.run(v.now.Sub(t0)+2*time.Minute, func() bool { return a.State() == Closed })
		if d := v.now.Sub(twStart); a.State() != Closed || d < 59*time.Second || d > 61*time.Second {
			t.Fatalf("rfc1337=1: TIME-WAIT ended after %v (state %v), want 60 s", d, a.State())
		}
	}
}

// synFrom builds a client SYN with the given options.
func synFrom(o wire.TCPOptions) *Segment {
	return &Segment{Seq: 7000, Flags: wire.TCPFlagSYN, Window: 65535, Options: o}
}

// TestAdvHugeWindowScale: a window scale above 14 is clamped to 14 (RFC
// 7323 2.3), both passively and actively.
func TestAdvHugeWindowScale(t *testing.T) {
	for _, ws := range []uint8{14, 15, 30, 255} {
		c, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 1, synFrom(wire.TCPOptions{HasWScale: true, WScale: ws, HasMSS: true, MSS: 1460}), t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Info().SndWScale; got != 14 {
			t.Errorf("passive wscale %d: using shift %d, want 14", ws, got)
		}
		// The largest window field then means at most 65535 << 14 bytes.
		c.Output(t0, func(*Segment) {})
		c.Input(&Segment{Seq: 7001, Ack: 2, Flags: wire.TCPFlagACK, Window: 65535}, t0.Add(time.Millisecond))
		if c.State() != Established || c.Info().SndWnd != 65535<<14 {
			t.Errorf("wscale %d: state %v snd.wnd %d", ws, c.State(), c.Info().SndWnd)
		}
	}
	a := NewActive(cfgDefault(), Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	a.Output(t0, func(*Segment) {})
	a.Input(&Segment{Seq: 9, Ack: 1001, Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: 1000,
		Options: wire.TCPOptions{HasWScale: true, WScale: 200}}, t0.Add(time.Millisecond))
	if a.State() != Established || a.Info().SndWScale != 14 {
		t.Fatalf("active: state %v shift %d", a.State(), a.Info().SndWScale)
	}
}

// TestAdvTinyMSS: MSS 0 means "no MSS option" (default 536, RFC 9293
// 3.7.1); a tiny MSS is raised to tcp_min_snd_mss (48, Linux
// CVE-2019-11479 fix) minus the option space, and data segments never carry
// more than that.
func TestAdvTinyMSS(t *testing.T) {
	type tc struct {
		mss  uint16
		ts   bool
		want int
	}
	for _, c := range []tc{
		{0, false, 536},
		{0, true, 536 - 12},
		{1, true, 48 - 12},
		{47, true, 48 - 12},
		{100, true, 100 - 12},
		{100, false, 100},
	} {
		o := wire.TCPOptions{HasMSS: true, MSS: c.mss}
		if c.ts {
			o.HasTS, o.TSVal = true, 1
		}
		b, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 1, synFrom(o), t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Info().SndMSS; got != c.want {
			t.Errorf("peer MSS %d ts=%v: SndMSS %d want %d", c.mss, c.ts, got, c.want)
			continue
		}
		b.Output(t0, func(*Segment) {})
		ack := Segment{Seq: 7001, Ack: 2, Flags: wire.TCPFlagACK, Window: 65535}
		if c.ts {
			ack.Options.HasTS, ack.Options.TSVal = true, 2
		}
		b.Input(&ack, t0.Add(time.Millisecond))
		b.Send(make([]byte, 5000))
		maxLen := 0
		b.Output(t0.Add(time.Millisecond), func(s *Segment) { maxLen = max(maxLen, len(s.Payload)) })
		if maxLen != c.want {
			t.Errorf("peer MSS %d ts=%v: largest segment %d, want %d", c.mss, c.ts, maxLen, c.want)
		}
	}
}

// TestAdvTinyMSSNoTimestamps: without timestamps the floor is the full
// tcp_min_snd_mss of 48 bytes (Linux clamps the MSS to tcp_min_snd_mss
// before subtracting option space, and there is none).
func TestAdvTinyMSSNoTimestamps(t *testing.T) {
	b, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 1, synFrom(wire.TCPOptions{HasMSS: true, MSS: 1}), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Info().SndMSS; got != 48 {
		t.Fatalf("peer MSS 1 without timestamps gives SndMSS %d, Linux uses tcp_min_snd_mss = 48 (no timestamp allowance to subtract when timestamps are off)", got)
	}
}

// TestAdvBadSYNFlags: SYN+FIN and SYN+RST never create a connection, and a
// segment with no flags at all is ignored in every synchronized state.
func TestAdvBadSYNFlags(t *testing.T) {
	for _, fl := range []uint8{
		wire.TCPFlagSYN | wire.TCPFlagFIN,
		wire.TCPFlagSYN | wire.TCPFlagRST,
		wire.TCPFlagSYN | wire.TCPFlagACK,
		wire.TCPFlagSYN | wire.TCPFlagFIN | wire.TCPFlagRST | wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagURG,
		0,
	} {
		if c, err := NewPassive(cfgDefault(), Tuple{Local: addrB, Remote: addrA}, 1, &Segment{Seq: 5, Flags: fl}, t0); err == nil || c != nil || !errors.Is(err, ErrBadSYN) {
			t.Errorf("flags %#x: NewPassive %v, %v", fl, c, err)
		}
	}
	// SYN-SENT: SYN+FIN+ACK with a good ACK is a SYN-ACK carrying a FIN
	// (allowed); SYN+RST without ACK is ignored.
	a := NewActive(cfgDefault(), Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	a.Output(t0, func(*Segment) {})
	a.Input(&Segment{Seq: 50, Flags: wire.TCPFlagSYN | wire.TCPFlagRST}, t0)
	if a.State() != SynSent {
		t.Fatalf("SYN+RST in SYN-SENT: %v", a.State())
	}
	// No-flag segments in ESTABLISHED (with and without data, in window):
	// dropped, no reply, nothing delivered.
	v, c, _, in := advEstablished(t, nil)
	for _, p := range [][]byte{nil, []byte("noflags")} {
		v.now = v.now.Add(time.Second)
		if out := inject(v, c, Segment{Seq: in.RcvNxt, Ack: in.SndNxt, Flags: 0, Payload: p}); len(out) != 0 {
			t.Fatalf("no-flag segment: reply %+v", out)
		}
		if c.Readable() != 0 || c.Info().RcvNxt != in.RcvNxt || c.State() != Established {
			t.Fatalf("no-flag segment accepted: readable %d", c.Readable())
		}
	}
	// FIN without ACK: dropped as well (RFC 9293: no ACK, drop).
	if out := inject(v, c, Segment{Seq: in.RcvNxt, Flags: wire.TCPFlagFIN}); len(out) != 0 || c.State() != Established {
		t.Fatalf("FIN without ACK: %+v %v", out, c.State())
	}
}

// TestAdvUrgentPointer: URG with absurd urgent pointers (beyond the data,
// 0xffff, without data, without the URG flag) never corrupts the stream:
// ustack does not implement urgent data (RFC 6093 discourages it); the
// bytes are delivered in line, in order.
func TestAdvUrgentPointer(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	seq := in.RcvNxt
	var want []byte
	for i, u := range []struct {
		flags uint8
		urg   uint16
		data  string
	}{
		{wire.TCPFlagACK | wire.TCPFlagURG, 0xffff, "abc"},
		{wire.TCPFlagACK | wire.TCPFlagURG, 0, "def"},
		{wire.TCPFlagACK | wire.TCPFlagURG, 1, ""},
		{wire.TCPFlagACK, 5000, "ghi"},
		{wire.TCPFlagACK | wire.TCPFlagURG | wire.TCPFlagPSH, 2, "jkl"},
	} {
		inject(v, a, Segment{Seq: seq, Ack: in.SndNxt, Flags: u.flags, Urgent: u.urg, Window: 1000, Payload: []byte(u.data)})
		seq += uint32(len(u.data))
		want = append(want, u.data...)
		if a.State() != Established {
			t.Fatalf("case %d: state %v", i, a.State())
		}
	}
	got := make([]byte, 100)
	n, _ := a.Recv(got)
	if string(got[:n]) != string(want) {
		t.Fatalf("stream %q want %q", got[:n], want)
	}
	// Segments we send never carry URG.
	a.Send([]byte("reply"))
	a.Output(v.now, func(s *Segment) {
		if s.Flags&wire.TCPFlagURG != 0 || s.Urgent != 0 {
			t.Errorf("sent URG: %+v", s)
		}
	})
}

// TestAdvEndlessOutOfOrder: a peer that sends 100,000 out-of-order segments
// (never filling the first hole) at random offsets and sizes cannot make the
// reassembly queue hold more than the receive buffer.
func TestAdvEndlessOutOfOrder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RMem = [3]int{4096, 65536, 65536}
	v, _, b, _ := advEstablished(t, &cfg)
	in := b.Info()
	capBytes := b.rcvBufCap
	x := uint32(12345)
	rnd := func(n uint32) uint32 { x = x*1664525 + 1013904223; return (x >> 8) % n }
	payload := make([]byte, 1460)
	maxOOO := 0
	for k := 0; k < 100000; k++ {
		off := 1 + rnd(3*uint32(capBytes))
		n := 1 + rnd(1460)
		inject(v, b, Segment{Seq: in.RcvNxt + off, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: payload[:n]})
		if b.oooBytes > capBytes {
			t.Fatalf("segment %d: %d out-of-order bytes queued, cap %d", k, b.oooBytes, capBytes)
		}
		maxOOO = max(maxOOO, b.oooBytes)
		if k%1000 == 0 {
			v.now = v.now.Add(time.Millisecond)
		}
	}
	if b.Readable() != 0 || b.Info().RcvNxt != in.RcvNxt || b.State() != Established {
		t.Fatalf("readable %d rcv.nxt +%d state %v", b.Readable(), b.Info().RcvNxt-in.RcvNxt, b.State())
	}
	held := 0
	for _, o := range b.ooo {
		held += cap(o.data)
	}
	if held > 2*capBytes {
		t.Fatalf("reassembly queue holds %d bytes of buffers for a %d-byte cap", held, capBytes)
	}
	if maxOOO == 0 || v.ctr[1].TCPOFOQueue == 0 {
		t.Fatalf("nothing queued out of order (max %d)", maxOOO)
	}
	checkInvariants(t, b, "after ooo flood")
}

// TestAdvTinyOutOfOrderSegments: 1-byte out-of-order segments, every other
// byte, arriving in descending order: the number of queued blocks (and the
// memory their bookkeeping takes) must stay bounded like Linux's truesize
// accounting bounds it, not grow to one block per byte.
//
// Before 714b66d (default 128 KiB buffer, descending 1-byte segments, one
// connection): 8192 segments 60 ms, 16384 94 ms, 32768 1.0 s, 65535 19.8 s
// of CPU, quadratic (every insertion shifts the sorted block slice), all
// under the connection's shard lock in the stack. Since the fix the queue
// stops at about 510 blocks and 65535 segments take about 40 ms.
func TestAdvTinyOutOfOrderSegments(t *testing.T) {
	v, _, b, _ := advEstablished(t, nil)
	in := b.Info()
	const n = 32768
	for k := n; k >= 1; k-- {
		inject(v, b, Segment{Seq: in.RcvNxt + 2*uint32(k), Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: []byte{byte(k)}})
	}
	// Bookkeeping: each block costs its oooSeg entry plus its buffer.
	const perBlock = 32
	mem := len(b.ooo) * perBlock
	for _, o := range b.ooo {
		mem += cap(o.data)
	}
	if v.ctr[1].TCPOFODrop == 0 {
		t.Errorf("no out-of-order segment dropped: %d blocks", len(b.ooo))
	}
	if mem > b.rcvBufCap {
		t.Fatalf("%d one-byte out-of-order segments are kept as %d blocks using ~%d bytes for a %d-byte receive buffer; "+
			"only payload bytes count against the cap (Linux charges skb truesize), and each insertion is O(blocks), so descending arrival is quadratic",
			n, len(b.ooo), mem, b.rcvBufCap)
	}
}

// fill keeps a's send buffer full for the rest of the run.
func fill(v *vnet, a *Conn) {
	buf := make([]byte, 65536)
	push := func() {
		for {
			if n, _ := a.Send(buf); n == 0 {
				break
			}
		}
		v.flush(0)
	}
	push()
	v.hook = push
}

// TestAdvZeroWindowForever: the receiver never reads and keeps advertising
// a zero window but answers every probe. Persist probes continue (backing
// off to tcp_rto_max) for hours without killing the connection.
func TestAdvZeroWindowForever(t *testing.T) {
	cfgB := DefaultConfig()
	cfgB.RMem = [3]int{4096, 16384, 16384}
	v := newPair(t, cfgDefault(), &cfgB, 5*time.Millisecond)
	v.noTrace = true
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a := v.c[0]
	fill(v, a)
	v.advance(10 * time.Second)
	if a.Info().SndWnd != 0 {
		t.Fatalf("window %d", a.Info().SndWnd)
	}
	probes0 := v.ctr[0].TCPWinProbe
	v.advance(3 * time.Hour)
	probes := v.ctr[0].TCPWinProbe - probes0
	// Backoff caps at 120 s: at least (3 h - a few minutes) / 120 s probes.
	if a.State() != Established || probes < 80 || probes > 200 {
		t.Fatalf("after 3 h of zero window: state %v, %d probes", a.State(), probes)
	}
	if v.c[1].Readable() != 16384 && v.c[1].Readable() > 16384 {
		t.Fatalf("receiver holds %d bytes", v.c[1].Readable())
	}
}

// TestAdvZeroWindowUserTimeout: with TCP_USER_TIMEOUT set, a connection
// stuck behind a zero window is killed with ETIMEDOUT once the timeout has
// passed since the probes started, even though the peer answers every probe
// (Linux 5.11+ tcp_probe_timer).
func TestAdvZeroWindowUserTimeout(t *testing.T) {
	cfgB := DefaultConfig()
	cfgB.RMem = [3]int{4096, 16384, 16384}
	v := newPair(t, cfgDefault(), &cfgB, 5*time.Millisecond)
	v.noTrace = true
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a := v.c[0]
	a.SetUserTimeout(30 * time.Second)
	fill(v, a)
	v.advance(2 * time.Second)
	if a.Info().SndWnd != 0 {
		t.Fatalf("window %d", a.Info().SndWnd)
	}
	v.run(30*time.Minute, func() bool { return a.State() == Closed })
	if a.State() != Closed {
		t.Fatalf("TCP_USER_TIMEOUT 30 s is ignored by the persist timer; after 30 min behind a zero window the connection is still %v (%d probes). "+
			"Linux aborts with ETIMEDOUT once the user timeout passed since the first probe", a.State(), v.ctr[0].TCPWinProbe)
	}
	if !errors.Is(a.Err(), syscall.ETIMEDOUT) || v.now.Sub(t0) > 3*time.Minute {
		t.Fatalf("closed at %v with %v, want ETIMEDOUT shortly after 30 s", v.now.Sub(t0), a.Err())
	}
}

// TestAdvPeerNeverReads: the sender's buffer stays bounded (tcp_wmem[2])
// however much the application offers while the peer never reads.
func TestAdvPeerNeverReads(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WMem = [3]int{4096, 16384, 65536}
	cfgB := DefaultConfig()
	cfgB.RMem = [3]int{4096, 16384, 16384}
	v := newPair(t, &cfg, &cfgB, 5*time.Millisecond)
	v.noTrace = true
	v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established })
	a := v.c[0]
	chunk := make([]byte, 1<<20)
	total := 0
	for k := 0; k < 200; k++ {
		n, err := a.Send(chunk)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		v.flush(0)
		v.advance(v.now.Sub(t0) + 100*time.Millisecond)
		if q := a.sndQueued(); q > cfg.WMem[2] {
			t.Fatalf("send buffer holds %d bytes, tcp_wmem[2] %d", q, cfg.WMem[2])
		}
		if cap(a.sbuf) > 4*cfg.WMem[2] {
			t.Fatalf("send buffer capacity %d", cap(a.sbuf))
		}
	}
	if total > cfg.WMem[2]+16384 || a.Writable() != 0 {
		t.Fatalf("accepted %d bytes from the application, writable %d", total, a.Writable())
	}
	if a.State() != Established {
		t.Fatalf("state %v", a.State())
	}
}
