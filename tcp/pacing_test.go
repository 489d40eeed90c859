package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/tcp/cc"
)

// fixedPacing wraps a controller with a fixed pacing rate (bytes/s) and,
// when cwnd > 0, a fixed congestion window.
type fixedPacing struct {
	cc.Controller
	rate int64
	cwnd int
}

func (f *fixedPacing) PacingRate() int64 { return f.rate }

func (f *fixedPacing) Cwnd() int {
	if f.cwnd > 0 {
		return f.cwnd
	}
	return f.Controller.Cwnd()
}

// TestPaceQuantum: a paced sender may run one quantum (2 ms at the pacing
// rate, at least two segments) ahead of the rate; the release time is when
// it is a quantum ahead, each segment costing payload / rate.
func TestPaceQuantum(t *testing.T) {
	c := NewActive(cfgDefault(), Tuple{Local: addrA, Remote: addrB}, 1000, t0)
	c.sndMSS = 1500
	c.cc = &fixedPacing{Controller: c.cc, rate: 1_000_000} // 1.5 ms per 1500-byte segment
	// quantum = max(rate/500 = 2000, 2*1500) = 3000 bytes = 3 ms.
	ms := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }
	want := []time.Time{{}, {}, ms(1.5)} // two segments free, the third reaches the quantum
	for i, w := range want {
		c.pace(1500, t0)
		if !c.paceAt.Equal(w) {
			t.Fatalf("segment %d: paceAt %v, want %v", i+1, c.paceAt.Sub(t0), w.Sub(t0))
		}
	}
	// At the release time one more segment goes, then the next waits 1.5 ms.
	c.pace(1500, ms(1.5))
	if want := ms(3); !c.paceAt.Equal(want) {
		t.Fatalf("after the release: paceAt %v, want %v", c.paceAt.Sub(t0), want.Sub(t0))
	}
	// A timer 1 ms late loses nothing: the backlog still counts from paceEnd.
	c.pace(1500, ms(4))
	if want := ms(4.5); !c.paceAt.Equal(want) {
		t.Fatalf("late wakeup: paceAt %v, want %v", c.paceAt.Sub(t0), want.Sub(t0))
	}
	// After an idle period the sender starts over with a full quantum.
	c.pace(1500, ms(100))
	if !c.paceAt.IsZero() {
		t.Fatalf("after idle: paceAt %v, want zero", c.paceAt.Sub(t0))
	}
	// Without a pacing rate there is no release time.
	c.cc.(*fixedPacing).rate = 0
	c.pace(1500, ms(100))
	if !c.paceAt.IsZero() || !c.paceEnd.IsZero() {
		t.Fatalf("no pacing: paceAt %v paceEnd %v", c.paceAt, c.paceEnd)
	}
}

// TestPacedRateCoarseTimers drives a paced bulk sender the way a runtime
// with 1 ms timer granularity does (Go timers): everything happens on 1 ms
// ticks. The sender must still reach its pacing rate (20 Mbit/s, a segment
// every 600 us) and not exceed it by more than a quantum. Pacing segment by
// segment sent one segment per tick (about 12 Mbit/s).
func TestPacedRateCoarseTimers(t *testing.T) {
	v := newPair(t, cfgDefault(), cfgDefault(), 5*time.Millisecond)
	v.noTrace = true
	if !v.run(time.Second, func() bool { return v.c[1] != nil && v.c[1].State() == Established }) {
		t.Fatal("no connection")
	}
	a, b := v.c[0], v.c[1]
	const rate = 2_500_000 // bytes/s
	a.cc = &fixedPacing{Controller: a.cc, rate: rate, cwnd: 1000}
	buf := make([]byte, 64<<10)
	var got int
	tick := time.Millisecond
	start := v.now.Truncate(tick).Add(tick)
	const dur = 2 * time.Second
	for now := start; now.Before(start.Add(dur)); now = now.Add(tick) {
		v.now = now
		for a.Writable() > 0 {
			if n, _ := a.Send(buf); n == 0 {
				break
			}
		}
		for len(v.q) > 0 && !v.q[0].at.After(now) {
			p := v.q[0]
			v.q = v.q[1:]
			v.c[p.to].Input(&p.seg, now)
			v.flush(p.to)
		}
		for i, c := range v.c {
			if d := c.Deadline(); !d.IsZero() && !d.After(now) {
				c.Timeout(now)
			}
			v.flush(i)
		}
		for {
			n, _ := b.Recv(buf)
			if n == 0 {
				break
			}
			got += n
		}
	}
	payload := float64(got) / dur.Seconds() // pacing charges payload bytes
	t.Logf("paced at %d B/s on 1 ms ticks: %.0f B/s of payload", rate, payload)
	if payload < 0.9*rate || payload > 1.01*rate {
		t.Fatalf("payload rate %.0f B/s, want about the pacing rate %d B/s", payload, rate)
	}
}

// In fast recovery a controller that owns its window (BBR) keeps it; the
// others send within PRR's window.
func TestRecoveryCwndOwner(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		owns bool
	}{{"bbr", true}, {"cubic", false}, {"reno", false}} {
		cfg := cfgDefault()
		cfg.CongestionControl = tc.cc
		c := NewActive(cfg, Tuple{Local: addrA, Remote: addrB}, 1000, t0)
		c.caState = CARecovery
		c.recoveryCwnd = 3
		want := 3
		if tc.owns {
			want = c.cc.Cwnd()
		}
		if got := c.sendCwnd(); got != want || c.ccOwnsRecovery != tc.owns {
			t.Errorf("%s: send window in recovery %d (owns %v), want %d", tc.cc, got, c.ccOwnsRecovery, want)
		}
	}
}
