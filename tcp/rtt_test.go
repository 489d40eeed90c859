package tcp

import (
	"testing"
	"time"
)

const rttMs = time.Millisecond

func TestRTTFirstSampleAndEWMA(t *testing.T) {
	cfg := DefaultConfig()
	e := NewRTTEstimator(&cfg)
	if e.HasSample() || e.RTO() != time.Second {
		t.Fatalf("initial RTO %v", e.RTO())
	}
	e.Sample(100 * rttMs)
	if e.SRTT() != 100*rttMs || e.RTTVar() != 50*rttMs || e.RTO() != 300*rttMs {
		t.Fatalf("first: srtt %v rttvar %v rto %v", e.SRTT(), e.RTTVar(), e.RTO())
	}
	// R=200: RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5; RTO = 112.5+250 = 362.5
	e.Sample(200 * rttMs)
	if e.RTTVar() != 62500*time.Microsecond || e.SRTT() != 112500*time.Microsecond || e.RTO() != 362500*time.Microsecond {
		t.Fatalf("second: srtt %v rttvar %v rto %v", e.SRTT(), e.RTTVar(), e.RTO())
	}
	// R=112.5 exactly: RTTVAR decays by 1/4, SRTT unchanged; 4*RTTVAR is
	// 187.5 ms, below G = 200 ms, so RTO = 112.5 + 200.
	e.Sample(112500 * time.Microsecond)
	if e.SRTT() != 112500*time.Microsecond || e.RTTVar() != 46875*time.Microsecond || e.RTO() != 312500*time.Microsecond {
		t.Fatalf("third: srtt %v rttvar %v rto %v", e.SRTT(), e.RTTVar(), e.RTO())
	}
}

func TestRTTGranularityAndClamp(t *testing.T) {
	cfg := DefaultConfig()
	// Linux-like: the 200 ms minimum is added to SRTT.
	e := NewRTTEstimator(&cfg)
	e.Sample(10 * rttMs)
	if e.RTO() != 210*rttMs {
		t.Errorf("linux-style RTO for 10 ms = %v, want 210ms", e.RTO())
	}
	// Plain RFC 6298 with 1 ms clock: 10 + 20 = 30 ms, clamped up to 200 ms.
	e = NewRTTEstimator(&cfg)
	e.Granularity = rttMs
	e.Sample(10 * rttMs)
	if e.RTO() != 200*rttMs {
		t.Errorf("RFC RTO for 10 ms = %v, want 200ms", e.RTO())
	}
	// Upper clamp.
	e.Sample(100 * time.Second)
	e.Sample(100 * time.Second)
	if e.RTO() != 120*time.Second {
		t.Errorf("RTO %v not clamped to 120s", e.RTO())
	}
	// Non-positive samples do not break anything.
	e = NewRTTEstimator(&cfg)
	e.Sample(0)
	if e.SRTT() != time.Microsecond || e.RTO() != 200*rttMs+time.Microsecond {
		t.Errorf("zero sample: srtt %v rto %v", e.SRTT(), e.RTO())
	}
}

func TestRTTBackoff(t *testing.T) {
	cfg := DefaultConfig()
	e := NewRTTEstimator(&cfg)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 120, 120}
	for i, w := range want {
		if e.RTO() != w*time.Second {
			t.Fatalf("after %d backoffs RTO %v want %v", i, e.RTO(), w*time.Second)
		}
		e.Backoff()
	}
	if e.Backoffs() != len(want) {
		t.Fatal(e.Backoffs())
	}
	for range 100 {
		e.Backoff()
	}
	if e.RTO() != 120*time.Second {
		t.Fatalf("huge backoff %v", e.RTO())
	}
	e.ResetBackoff()
	if e.RTO() != time.Second || e.Backoffs() != 0 {
		t.Fatalf("reset: %v", e.RTO())
	}
	e.SetBaseRTO(cfg.RTOFallback)
	if e.RTO() != 3*time.Second {
		t.Fatalf("fallback %v", e.RTO())
	}
	// Sum of the SYN schedule: 1+2+4+8+16+32 s of retransmissions, and the
	// give-up timer 64 s after the last one: 127 s.
	e = NewRTTEstimator(&cfg)
	var at time.Duration
	var sends []time.Duration
	for range cfg.SynRetries + 1 {
		at += e.RTO()
		sends = append(sends, at)
		e.Backoff()
	}
	wantSends := []time.Duration{1, 3, 7, 15, 31, 63, 127}
	for i := range sends {
		if sends[i] != wantSends[i]*time.Second {
			t.Fatalf("SYN timer expiries %v", sends)
		}
	}
}

func TestBackoffRTO(t *testing.T) {
	cases := []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{200 * rttMs, 0, 200 * rttMs},
		{200 * rttMs, 9, 102400 * rttMs},
		{200 * rttMs, 10, 120 * time.Second},
		{200 * rttMs, 1000, 120 * time.Second},
		{200 * rttMs, -1, 200 * rttMs},
		{time.Duration(1 << 62), 1, 120 * time.Second},
	}
	for _, c := range cases {
		if got := BackoffRTO(c.base, c.n, 120*time.Second); got != c.want {
			t.Errorf("BackoffRTO(%v,%d) = %v want %v", c.base, c.n, got, c.want)
		}
	}
}

func TestRetriesToTime(t *testing.T) {
	cases := []struct {
		boundary int
		base     time.Duration
		want     time.Duration
	}{
		{15, 200 * rttMs, 924600 * rttMs}, // tcp_retries2 default
		{3, 200 * rttMs, 3000 * rttMs},    // tcp_retries1: (2<<3)-1 = 15 * 0.2
		{9, 200 * rttMs, 204600 * rttMs},  // last doubling step
		{10, 200 * rttMs, 324600 * rttMs}, // first linear step
		{8, 200 * rttMs, 102200 * rttMs},  // orphan retries 8
		{6, time.Second, 127 * time.Second},
		{5, time.Second, 63 * time.Second},
		{7, time.Second, 247 * time.Second},
		{0, 200 * rttMs, 200 * rttMs},
		{-1, 200 * rttMs, 0},
	}
	for _, c := range cases {
		if got := RetriesToTime(c.boundary, c.base); got != c.want {
			t.Errorf("RetriesToTime(%d, %v) = %v want %v", c.boundary, c.base, got, c.want)
		}
	}
	if got := RetriesToTimeMax(15, 200*rttMs, 60*time.Second); got != (511*200*rttMs + 7*60*time.Second) {
		t.Errorf("RetriesToTimeMax with 60 s: %v", got)
	}
}

func TestRetransmitsTimedOut(t *testing.T) {
	t0 := time.Unix(1000, 0)
	limit := 924600 * rttMs
	if RetransmitsTimedOut(0, t0, t0.Add(time.Hour), 15, 200*rttMs, 0) {
		t.Error("timed out without retransmissions")
	}
	if RetransmitsTimedOut(5, t0, t0.Add(limit-1), 15, 200*rttMs, 0) {
		t.Error("timed out 1ns early")
	}
	if !RetransmitsTimedOut(5, t0, t0.Add(limit), 15, 200*rttMs, 0) {
		t.Error("not timed out at 924.6 s")
	}
	if !RetransmitsTimedOut(1, t0, t0.Add(10*time.Second), 15, 200*rttMs, 10*time.Second) {
		t.Error("user timeout ignored")
	}
	if RetransmitsTimedOut(1, t0, t0.Add(10*time.Second-1), 15, 200*rttMs, 10*time.Second) {
		t.Error("user timeout early")
	}
}

func TestRTTSampleLinux(t *testing.T) {
	cfg := DefaultConfig()
	e := NewRTTEstimator(&cfg)
	us := time.Microsecond
	steps := []struct {
		r            time.Duration
		una, nxt     uint32
		srtt, rttvar time.Duration
		rto          time.Duration
	}{
		// First sample: srtt 100, mdev 200 (4*50), variance term max(200, 200).
		{100 * rttMs, 0, 1000, 100 * rttMs, 50 * rttMs, 300 * rttMs},
		// RTT falls inside the window: srtt 93.75 ms, mdev unchanged
		// (|err| 50 - mdev/4 50 = 0), RTO 293.75 rounded up to 294 ms.
		{50 * rttMs, 500, 1000, 93750 * us, 50 * rttMs, 294 * rttMs},
		// RTT rises, window ends: err 206.25, mdev 200+156.25 = 356.25 (new
		// max, becomes the variance term); srtt 119.531 ms; RTO 475.781 -> 476.
		{300 * rttMs, 1500, 3000, 119531 * us, 89062 * us, 476 * rttMs},
		// RTT falls, window ends: mdev 356.25 - 69.531 = 286.719; variance
		// term decays by 1/4 toward it: 356.25 - 17.382 = 338.868; srtt
		// 117.089; RTO 455.957 -> 456 ms.
		{100 * rttMs, 3500, 4000, 117089 * us, 71679 * us, 456 * rttMs},
	}
	for i, s := range steps {
		e.SampleLinux(s.r, s.una, s.nxt)
		if e.SRTT() != s.srtt || e.RTTVar() != s.rttvar || e.BaseRTO() != s.rto {
			t.Fatalf("step %d: srtt %v rttvar %v rto %v; want %v %v %v", i, e.SRTT(), e.RTTVar(), e.BaseRTO(), s.srtt, s.rttvar, s.rto)
		}
	}
	// Short path: RTO = SRTT + 200 ms.
	e = NewRTTEstimator(&cfg)
	for i := range 20 {
		e.SampleLinux(10*rttMs, uint32(i*100), uint32(i*100+100))
	}
	if e.BaseRTO() != 210*rttMs {
		t.Fatalf("10 ms path: RTO %v", e.BaseRTO())
	}
	// Capped at MaxRTO.
	e.SampleLinux(300*time.Second, 5000, 6000)
	if e.BaseRTO() != 120*time.Second {
		t.Fatalf("cap: %v", e.BaseRTO())
	}
}

func TestSynTimeoutSchedule(t *testing.T) {
	total := func(cfg *Config) (sends []time.Duration, giveUp time.Duration) {
		var at time.Duration
		for n := 0; n <= SynMaxRetransmits(cfg); n++ {
			at += SynTimeout(cfg, n)
			if n < SynMaxRetransmits(cfg) {
				sends = append(sends, at)
			}
		}
		return sends, at
	}
	cfg := DefaultConfig()
	sends, giveUp := total(&cfg)
	want := []time.Duration{1, 3, 7, 15, 31, 63}
	if len(sends) != len(want) || giveUp != 127*time.Second {
		t.Fatalf("default: retransmits at %v, give up at %v", sends, giveUp)
	}
	for i := range want {
		if sends[i] != want[i]*time.Second {
			t.Fatalf("default: retransmits at %v", sends)
		}
	}
	// Linux 6.5+ default of 4 linear timeouts: 1,1,1,1,1,2,4,... and 131 s.
	cfg.SynLinearTimeouts = 4
	sends, giveUp = total(&cfg)
	if giveUp != 131*time.Second || len(sends) != 10 || sends[4] != 5*time.Second || sends[5] != 7*time.Second {
		t.Fatalf("linear 4: retransmits at %v, give up at %v", sends, giveUp)
	}
	// tcp_syn_retries=3: 1, 3, 7, give up at 15 s.
	cfg = DefaultConfig()
	cfg.SynRetries = 3
	if _, giveUp = total(&cfg); giveUp != 15*time.Second {
		t.Fatalf("syn_retries 3: give up at %v", giveUp)
	}
}
