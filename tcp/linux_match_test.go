package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// The passive side takes its first RTT sample (and min RTT) from the
// SYN-ACK -> ACK exchange, so RACK's reordering window (min_rtt/4) is in
// force from the start: a SACK of only the last segment of a flight does
// not retransmit the holes before min_rtt/4 has passed (Linux).
func TestPassiveHandshakeMinRTTAndRACKWindow(t *testing.T) {
	v, a, b := established(t, nil)
	if got := b.Info().MinRTT; got != 20*time.Millisecond {
		t.Fatalf("server min RTT %v, want 20ms (SYN-ACK at 10ms, ACK at 30ms)", got)
	}
	if got := b.Info().RTT; got != 20*time.Millisecond {
		t.Fatalf("server srtt %v, want 20ms", got)
	}
	// B sends three segments; the first two are lost once.
	start := v.now
	mss := b.Info().SndMSS
	dropped := 0
	v.drop = func(from int, s *Segment) bool {
		if from == 1 && len(s.Payload) > 0 && dropped < 2 {
			dropped++
			return true
		}
		return false
	}
	if n, _ := b.Send(make([]byte, 3*mss)); n != 3*mss {
		t.Fatal("send")
	}
	v.flush(1)
	v.run(v.now.Sub(t0)+time.Second, func() bool { return a.Readable() == 3*mss })
	var rtx []time.Duration
	for _, e := range v.trace {
		if e.from == 1 && len(e.seg.Payload) > 0 && e.at >= start.Sub(t0) {
			rtx = append(rtx, e.at-start.Sub(t0))
		}
	}
	// Sent at 0; the SACK of the third arrives at 20ms; RACK: 20ms + 20ms/4.
	want := []time.Duration{0, 0, 0, 25 * time.Millisecond, 25 * time.Millisecond}
	if !eqDur(rtx, want) {
		t.Fatalf("data segments at %v, want %v\n%s", rtx, want, v.traceStr())
	}
	_ = wire.TCPFlagACK
}
