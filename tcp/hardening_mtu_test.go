package tcp

import (
	"testing"

	"github.com/ustack/ustack/wire"
)

// TestHardSegmentsFitMTU: a data segment must fit the path MTU together with
// all its options. When the receive side has holes, ACKs carry SACK blocks
// (8 + 8 per block bytes); a full-sized data segment sent at the same time
// must shrink by that much (Linux tcp_current_mss), or the IP packet
// exceeds the MTU and the link drops it — forever, since every
// retransmission carries the same blocks.
func TestHardSegmentsFitMTU(t *testing.T) {
	v, a, b, _ := advEstablished(t, nil)
	in := b.Info()
	// B has a hole: A's segment at +1000 arrives, the one at 0 does not.
	inject(v, b, Segment{Seq: in.RcvNxt + 1000, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 500),
		Options: wire.TCPOptions{HasTS: true, TSVal: 1 << 20}})
	inject(v, b, Segment{Seq: in.RcvNxt + 3000, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 500),
		Options: wire.TCPOptions{HasTS: true, TSVal: 1 << 20}})
	inject(v, b, Segment{Seq: in.RcvNxt + 5000, Ack: in.SndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: make([]byte, 500),
		Options: wire.TCPOptions{HasTS: true, TSVal: 1 << 20}})
	_ = a
	b.Send(make([]byte, 10000))
	const mtu = 1500
	worst := 0
	b.Output(v.now, func(s *Segment) {
		ip := 20 + 20 + s.Options.Len() + len(s.Payload)
		worst = max(worst, ip)
		if ip > mtu {
			t.Logf("segment of %d payload bytes with %d option bytes (%d SACK blocks): %d-byte IPv4 packet", len(s.Payload), s.Options.Len(), s.Options.NumSACK, ip)
		}
	})
	if worst > mtu {
		t.Fatalf("MSS not reduced for the SACK option space: data segments build %d-byte IPv4 packets on a %d-byte MTU path", worst, mtu)
	}
}
