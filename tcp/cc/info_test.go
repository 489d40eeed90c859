package cc

import (
	"strings"
	"testing"
	"time"
)

// Inspect on a BBR flow over a 1000 packet/s, 50 ms path (mss 1000): the
// state names ss shows, the bandwidth estimate in bytes/s, min RTT and gains.
func TestBBRInspect(t *testing.T) {
	b := NewBBR()
	b.Init(1000, t0)
	in := Inspect(b)
	if in.Name != "bbr" || in.State != "STARTUP" || in.PacingGain != 2.77 || in.CwndGain != 2 ||
		in.BwEstimate != 0 || in.MinRTT != 0 || in.InflightHi != 0 || in.InflightLo != 0 {
		t.Fatalf("fresh BBR: %+v", in)
	}

	s := newBBRSim(t, 1000, 50*time.Millisecond)
	s.b.draftMinRTT = true // ProbeRTT after 5 s, as in TestBBRStateMachine
	seen := map[string]bool{}
	s.onAck = func(*RateSample) {
		in := s.b.Inspect()
		seen[in.State] = true
		if in.PacingGain != s.b.PacingGain() {
			t.Fatalf("%s: pacing gain %v, BBR has %v", in.State, in.PacingGain, s.b.PacingGain())
		}
	}
	s.run(t0.Add(12 * time.Second))
	in = s.b.Inspect()
	t.Logf("after 12 s: %+v; states seen %v", in, seen)
	if in.BwEstimate < 950_000 || in.BwEstimate > 1_050_000 {
		t.Errorf("bw estimate %d B/s, want about 1,000,000 (1000 packets/s of 1000 bytes)", in.BwEstimate)
	}
	if in.MinRTT < 50*time.Millisecond || in.MinRTT > 52*time.Millisecond {
		t.Errorf("min RTT %v, want 50 ms", in.MinRTT)
	}
	for _, st := range []string{"STARTUP", "DRAIN", "PROBE_BW_DOWN", "PROBE_BW_CRUISE", "PROBE_BW_REFILL", "PROBE_BW_UP", "PROBE_RTT"} {
		if !seen[st] {
			t.Errorf("state %s never seen by Inspect", st)
		}
	}
	for st := range seen {
		if st != strings.ToUpper(st) {
			t.Errorf("state %q not upper case", st)
		}
	}
}

func TestInspectNonBBR(t *testing.T) {
	for _, name := range []string{"cubic", "reno"} {
		c, err := New(name)
		if err != nil {
			t.Fatal(err)
		}
		c.Init(1448, t0)
		if in := Inspect(c); in != (Info{Name: name}) {
			t.Errorf("%s: Inspect = %+v, want only the name", name, in)
		}
	}
	if in := Inspect(nil); in != (Info{}) {
		t.Errorf("Inspect(nil) = %+v", in)
	}
}

func TestBoundPkts(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want int
	}{{inf, 0}, {0, 0}, {-3, 0}, {12.4, 12}, {12.6, 13}, {1e18, maxCwndPackets}} {
		if got := boundPkts(c.v); got != c.want {
			t.Errorf("boundPkts(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}
