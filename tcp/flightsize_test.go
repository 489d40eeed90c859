package tcp

import (
	"fmt"
	"testing"
	"time"
)

// ssthreshRecorder records the inFlight argument of the reduction calls.
type ssthreshRecorder struct {
	*ccRecorder
	events []string
}

func (r *ssthreshRecorder) OnCongestionEvent(now time.Time, inFlight int) {
	r.events = append(r.events, fmt.Sprint("loss ", inFlight))
	r.ccRecorder.Controller.OnCongestionEvent(now, inFlight)
}

func (r *ssthreshRecorder) OnRTO(now time.Time, inFlight int) {
	r.events = append(r.events, fmt.Sprint("rto ", inFlight))
	r.ccRecorder.Controller.OnRTO(now, inFlight)
}

// The reduction on entering fast recovery is based on FlightSize (RFC 5681
// eq. 4, RFC 6675 section 5 step 4.2: data sent and not cumulatively
// acknowledged, SACKed data included), not on the RFC 6675 pipe, which
// leaves out what the SACKs that revealed the loss delivered: with 10
// segments out and the first lost, Reno's ssthresh is 10/2 = 5, not
// (10-3)/2 = 3.
func TestRecoveryReductionUsesFlightSize(t *testing.T) {
	cfg := cfgDefault()
	cfg.CongestionControl = "reno"
	v, a, _ := established(t, cfg)
	r := &ssthreshRecorder{ccRecorder: record(a)}
	a.cc = r
	mss := a.Info().SndMSS
	dropped := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && len(s.Payload) > 0 && !dropped {
			dropped = true
			return true
		}
		return false
	}
	a.Send(make([]byte, 10*mss))
	v.flush(0)
	v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().Unacked == 0 })
	if want := "[loss 10]"; fmt.Sprint(r.events) != want {
		t.Fatalf("reductions %v, want %s\n%s", r.events, want, v.traceStr())
	}
	if got := a.Info().SndSsthresh; got != 5 {
		t.Fatalf("ssthresh %d, want 5", got)
	}
}

// An RTO cuts ssthresh to FlightSize/2 (RFC 5681 eq. 4) as well. Here
// (NewReno, no SACK) the first segment and its fast retransmission are
// lost: when the timer fires, the five duplicate ACKs have taken the pipe
// down to one packet, but six are outstanding.
func TestRTOReductionUsesFlightSize(t *testing.T) {
	cfg := cfgDefault()
	cfg.CongestionControl = "reno"
	cfg.SACK = false
	v, a, _ := established(t, cfg)
	r := &ssthreshRecorder{ccRecorder: record(a)}
	a.cc = r
	mss := a.Info().SndMSS
	first := uint32(0)
	drops := 0
	v.drop = func(from int, s *Segment) bool {
		if from != 0 || len(s.Payload) == 0 {
			return false
		}
		if drops == 0 {
			first = s.Seq
		}
		if s.Seq == first && drops < 2 {
			drops++
			return true
		}
		return false
	}
	a.Send(make([]byte, 6*mss))
	v.flush(0)
	v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().Unacked == 0 })
	if want := "[loss 6 rto 6]"; fmt.Sprint(r.events) != want {
		t.Fatalf("reductions %v, want %s\n%s", r.events, want, v.traceStr())
	}
	if got := a.Info().SndSsthresh; got != 3 {
		t.Fatalf("ssthresh %d, want 3", got)
	}
}

// Config.SACKRecoveryInflate (off by default) replaces PRR's window in SACK
// recovery with netstack's ssthresh + tcp_reordering.
func TestSACKRecoveryInflate(t *testing.T) {
	for _, inflate := range []bool{false, true} {
		cfg := cfgDefault()
		cfg.CongestionControl = "reno"
		cfg.SACKRecoveryInflate = inflate
		v, a, _ := established(t, cfg)
		mss := a.Info().SndMSS
		dropped := false
		v.drop = func(from int, s *Segment) bool {
			if from == 0 && len(s.Payload) > 0 && !dropped {
				dropped = true
				return true
			}
			return false
		}
		a.Send(make([]byte, 30*mss))
		v.flush(0)
		if !v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().CAState == CARecovery }) {
			t.Fatalf("inflate=%v: no recovery\n%s", inflate, v.traceStr())
		}
		// Reno: 10 out, the first lost, ssthresh 5. The nine SACKs
		// arrive together; after them the pipe is 2 and PRR's window
		// is ssthresh (5); netstack's rule allows 5+3 = 8.
		want := 5
		if inflate {
			want = 8
		}
		if got := a.sendCwnd(); got != want || a.cc.Ssthresh() != 5 {
			t.Fatalf("inflate=%v: window %d (ssthresh %d), want %d (5)\n%s", inflate, got, a.cc.Ssthresh(), want, v.traceStr())
		}
	}
}

// NewReno (no SACK) fast recovery: PRR counts each duplicate ACK as one
// packet delivered (Linux tcp_add_reno_sack), so new data keeps flowing
// while the retransmission is under way. 10 out, the first lost: the nine
// duplicate ACKs (Reno: ssthresh 5, RecoverFS 10) clock out the fast
// retransmission and three new segments (none before this), before the
// ACK of the retransmission.
func TestNewRenoRecoveryClocksOutNewData(t *testing.T) {
	cfg := cfgDefault()
	cfg.CongestionControl = "reno"
	cfg.SACK = false
	cfg.WMem[1] = 1 << 20 // all 20 segments buffered at once
	v, a, _ := established(t, cfg)
	mss := a.Info().SndMSS
	var first uint32
	dropped := false
	v.drop = func(from int, s *Segment) bool {
		if from == 0 && len(s.Payload) > 0 && !dropped {
			dropped, first = true, s.Seq
			return true
		}
		return false
	}
	total := 20 * mss
	if n, _ := a.Send(make([]byte, total)); n != total {
		t.Fatalf("send took %d of %d", n, total)
	}
	v.flush(0)
	v.run(v.now.Sub(t0)+5*time.Second, func() bool { return a.Info().BytesAcked == uint64(total) })
	// Data segments A sent at the instant of its fast retransmission.
	var at time.Duration = -1
	seen, newData := 0, 0
	for _, e := range v.trace {
		if e.from != 0 || len(e.seg.Payload) == 0 {
			continue
		}
		if e.seg.Seq == first {
			if seen++; seen == 2 {
				at = e.at
			}
			continue
		}
		if at >= 0 && e.at == at && seqGEQ(e.seg.Seq, first+uint32(10*mss)) {
			newData++
		}
	}
	if at < 0 || newData != 3 {
		t.Fatalf("fast retransmission at %v with %d new segments, want 3\n%s", at, newData, v.traceStr())
	}
}
