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
