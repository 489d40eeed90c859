package cc

import (
	"math"
	"testing"
	"time"
)

// lossEvery marks every k-th ACK of a round (from the first) as reporting
// one lost packet.
func lossEvery(k int) func(i int, rs *RateSample) {
	return func(i int, rs *RateSample) {
		if i%k == 0 {
			rs.Losses = 1
			rs.LostSinceTx = 1
		}
	}
}

// With a standing queue, a loss round cuts the short-term model only when
// it lost more than 2 % of its packets (ustack deviation, roundLossHigh):
// 1 loss in 100 does not, 5 in 100 do.
func TestBBRLossRoundThreshold(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.queue = 30 * time.Millisecond
	for range 3 {
		s.round(100, 1000, lossEvery(100)) // 1 %
	}
	s.round(1, 1000, nil)
	if !math.IsInf(s.b.bwShortterm, 1) || !math.IsInf(s.b.inflightShortterm, 1) {
		t.Fatalf("1 %% loss cut the short-term model: bw %v inflight %v", s.b.bwShortterm, s.b.inflightShortterm)
	}
	s.round(100, 1000, lossEvery(20)) // 5 %
	s.round(1, 800, nil)
	if s.b.bwShortterm != 1000 || s.b.inflightShortterm == inf {
		t.Fatalf("5 %% loss: bw_shortterm %v inflight_shortterm %v, want a cut to max(bw_latest, 0.7 bw)", s.b.bwShortterm, s.b.inflightShortterm)
	}
}

// The threshold follows the recent loss rate (twice it, and 3 standard
// deviations above the count it predicts): on a path losing 3 % at
// random, a 4 % round with a queue is not congestion, a 15 % round is.
func TestBBRLossRoundBackground(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	for range 40 { // 4000 packets at 3 % loss, no queue
		s.round(100, 1000, func(i int, rs *RateSample) {
			if i%33 == 0 {
				rs.Losses = 1
				rs.LostSinceTx = 1
			}
		})
	}
	if s.b.lossAvg < 0.025 || s.b.lossAvg > 0.035 {
		t.Fatalf("background loss %.4f, want about 0.03", s.b.lossAvg)
	}
	if !math.IsInf(s.b.bwShortterm, 1) {
		t.Fatalf("random loss without a queue cut bw_shortterm to %v", s.b.bwShortterm)
	}
	s.queue = 30 * time.Millisecond
	s.round(100, 1000, lossEvery(25)) // 4 %
	s.round(1, 1000, nil)
	if !math.IsInf(s.b.bwShortterm, 1) {
		t.Fatalf("4 %% loss over a 3 %% background cut bw_shortterm to %v", s.b.bwShortterm)
	}
	s.round(100, 1000, lossEvery(7)) // 15 %
	s.round(1, 1000, nil)
	if math.IsInf(s.b.bwShortterm, 1) {
		t.Fatalf("15 %% loss with a queue did not cut the short-term model")
	}
}

// A sample whose interval is below min_rtt is no observation (Linux:
// interval_us = -1): it neither ends a round nor a loss round, even if its
// packet was sent after the round began.
func TestBBRInvalidSampleNoRound(t *testing.T) {
	s := newBBRScript(t, 100*time.Millisecond)
	s.toCruise()
	s.round(20, 1000, nil)
	rounds := s.b.roundCount
	s.now = s.now.Add(time.Millisecond)
	s.delivered++
	s.b.OnAck(s.now, &RateSample{
		Delivered: 1, Interval: time.Millisecond, PriorDelivered: s.delivered - 1, TotalDelivered: s.delivered,
		MinRTT: s.rtt, AckedSacked: 1, PriorInFlight: 90, InFlight: 89, TxInFlight: 90,
	})
	if s.b.roundCount != rounds || s.b.roundStart || s.b.lossRoundStart {
		t.Fatalf("invalid sample: round %d -> %d, round_start %v, loss_round_start %v", rounds, s.b.roundCount, s.b.roundStart, s.b.lossRoundStart)
	}
	s.round(1, 1000, nil)
	if s.b.roundCount != rounds+1 {
		t.Fatalf("valid sample: round %d, want %d", s.b.roundCount, rounds+1)
	}
}
