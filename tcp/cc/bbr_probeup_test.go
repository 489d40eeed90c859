package cc

import (
	"testing"
	"time"
)

// In ProbeBW_UP a cwnd-limited flow whose window has reached
// inflight_longterm raises inflight_longterm (draft
// ProbeInflightLongtermUpward), also when inflight_longterm is fractional
// (handleInflightTooHigh sets it to 0.7 * target): cwnd is whole packets,
// and comparing it with the exact value never let a late flow's
// inflight_longterm grow again (sim: 16 of 96 Mbit/s for 25 s).
func TestBBRProbeUpRaisesFractionalLongterm(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.b.inflightLongterm = 130.6
	s.b.startProbeBWRefill()
	s.inflight = 129 // PriorInFlight 130 >= cwnd 130: cwnd-limited; TxInFlight 130 stays below 130.6
	for range 2 {
		s.round(100, 1000, nil)
	}
	s.expect(BBRProbeBWUp)
	for range 3 {
		s.round(100, 1000, nil)
	}
	if s.b.InflightLongterm() <= 131 {
		t.Fatalf("inflight_longterm %v after 3 cwnd-limited rounds at it in ProbeBW_UP, want growth", s.b.InflightLongterm())
	}
}
