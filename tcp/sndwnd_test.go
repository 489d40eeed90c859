package tcp

import (
	"testing"

	"github.com/ustack/ustack/wire"
)

// TestWindowUpdateOnAdvancingAck: the peer, in loss recovery, retransmits
// old data (a sequence number below SND.WL1) carrying a newer ACK and its
// current window. The ACK advances SND.UNA, so its window must be taken
// too (Linux tcp_may_update_window; RFC 9293's SND.WL1/WL2 test alone
// keeps the older, larger window). Otherwise the right edge we use,
// SND.UNA + SND.WND, moves past the edge the peer advertised: we send
// beyond it, the peer drops that data, and with its window then closed
// our pure ACKs (SEQ = SND.NXT, now outside its window) are dropped too:
// the peer never learns that its own data arrived, both sides back off
// their retransmission timers, and a blocking echo stalls (the soak's
// server "write: i/o timeout" after 60 s: both ends in Loss, RTO 43 and
// 52 s, SRTT 5.8 s on a 1 ms link).
func TestWindowUpdateOnAdvancingAck(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	if a.sndWScale != 7 {
		t.Fatalf("window scale %d, want 7", a.sndWScale)
	}
	s, r := in.SndNxt, in.RcvNxt
	data := make([]byte, 8192)
	if n, _ := a.Send(data); n != len(data) {
		t.Fatalf("queued %d", n)
	}
	v.flush(0) // A sends what the (large) window allows
	// The peer's new data (seq r+1000) acks 1024 bytes; its right edge is
	// s+4096 (window field 24 << 7 = 3072).
	inject(v, a, Segment{Seq: r + 1000, Ack: s + 1024, Flags: wire.TCPFlagACK, Window: 24, Payload: make([]byte, 100)})
	if got := a.sndUna + a.sndWnd; got != s+4096 {
		t.Fatalf("right edge %d after the first ACK, want %d", got-s, 4096)
	}
	// Its retransmission of older data (seq r: below SND.WL1) acks 2048
	// bytes with window 16 << 7 = 2048: the same right edge, s+4096.
	inject(v, a, Segment{Seq: r, Ack: s + 2048, Flags: wire.TCPFlagACK, Window: 16, Payload: make([]byte, 100)})
	if got := a.sndUna + a.sndWnd; got != s+4096 {
		t.Errorf("right edge %d after an ACK advancing SND.UNA from an old segment, want %d (window %d)", got-s, 4096, a.sndWnd)
	}
	// Whatever A sends now stays within the peer's edge.
	var out []Segment
	a.Output(v.now, func(seg *Segment) { out = append(out, copySeg(seg)) })
	for _, seg := range out {
		if end := seg.Seq + uint32(len(seg.Payload)); seqGT(end, s+4096) {
			t.Errorf("segment [%d, %d) beyond the peer's right edge %d", seg.Seq-s, end-s, 4096)
		}
	}
}

// TestPureACKSeqWithinShrunkWindow: when the peer's window shrank below
// what we already sent (SND.NXT beyond SND.UNA + SND.WND), a pure ACK
// carries SEQ = SND.UNA + SND.WND, which the peer accepts, not SND.NXT,
// which its sequence check (RFC 9293, Linux tcp_sequence) drops, ACK
// field unread (Linux tcp_acceptable_seq).
func TestPureACKSeqWithinShrunkWindow(t *testing.T) {
	v, a, _, in := advEstablished(t, nil)
	s, r := in.SndNxt, in.RcvNxt
	if n, _ := a.Send(make([]byte, 8192)); n != 8192 {
		t.Fatalf("queued %d", n)
	}
	v.flush(0)
	if seqLEQ(a.sndNxt, s+1024) {
		t.Fatalf("sent only %d bytes", a.sndNxt-s)
	}
	// The peer acks 1024 bytes and closes its window (right edge s+1024,
	// below SND.NXT); then it sends data, which we must ACK.
	inject(v, a, Segment{Seq: r, Ack: s + 1024, Flags: wire.TCPFlagACK, Window: 0})
	out := inject(v, a, Segment{Seq: r, Ack: s + 1024, Flags: wire.TCPFlagACK, Window: 0, Payload: []byte("x")})
	acks := 0
	for _, seg := range out {
		if len(seg.Payload) == 0 && seg.Flags == wire.TCPFlagACK && seg.Ack == r+1 {
			acks++
			if seg.Seq != s+1024 {
				t.Errorf("pure ACK with SEQ %d, want the peer's right edge %d (SND.NXT is %d)", seg.Seq-s, 1024, a.sndNxt-s)
			}
		}
	}
	if acks == 0 {
		t.Fatalf("no ACK of the peer's data: %+v", out)
	}
}
