package cc

import (
	"encoding/binary"
	"testing"
	"time"
)

// While the application does not fill the window, CUBIC neither grows cwnd
// nor lets the cubic curve run ahead in time.
func TestCubicAppLimitedFreezesEpoch(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c, f := cubicAfterLoss(t, 1000, rtt)
	f.runUntil(f.now.Add(time.Second))
	f.appLimit = 100           // far below cwnd/2
	f.runUntil(f.now.Add(rtt)) // in-flight drains to 100
	before := c.Cwnd()
	epoch := c.epoch
	f.runUntil(f.now.Add(5 * time.Second))
	if c.Cwnd() != before {
		t.Fatalf("cwnd grew while app-limited: %d -> %d", before, c.Cwnd())
	}
	if shift := c.epoch.Sub(epoch); shift < 4900*time.Millisecond {
		t.Fatalf("epoch shifted by %v only", shift)
	}
	// Once cwnd-limited again the growth continues where it stopped (no jump
	// of 5 s worth of curve).
	f.appLimit = 0
	f.restart(rtt)
	f.runUntil(f.now.Add(rtt))
	if c.Cwnd() > before+15 {
		t.Fatalf("cwnd jumped from %d to %d after app-limited period", before, c.Cwnd())
	}
}

// Idle time is taken out of the cubic epoch even when slow start after idle
// is off (rto = 0): no jump of the curve when sending resumes.
func TestCubicIdleShiftsEpoch(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c, f := cubicAfterLoss(t, 1000, rtt)
	f.runUntil(f.now.Add(2 * time.Second))
	before, epoch := c.Cwnd(), c.epoch
	f.q = f.q[:0] // everything acked, connection idle for 10 s
	f.now = f.now.Add(10 * time.Second)
	c.OnIdleRestart(f.now, 10*time.Second, 0)
	if c.Cwnd() != before || c.epoch.Sub(epoch) != 10*time.Second {
		t.Fatalf("cwnd %d->%d, epoch shift %v", before, c.Cwnd(), c.epoch.Sub(epoch))
	}
	f.restart(rtt)
	f.runUntil(f.now.Add(rtt))
	if c.Cwnd() > before+15 {
		t.Fatalf("cwnd jumped from %d to %d after idle", before, c.Cwnd())
	}
}

func TestCubicNoGrowthInRecovery(t *testing.T) {
	c, f := cubicAfterLoss(t, 1000, 50*time.Millisecond)
	f.inRec = true
	f.runUntil(f.now.Add(time.Second))
	if c.Cwnd() != 700 {
		t.Fatalf("cwnd %d", c.Cwnd())
	}
}

// FuzzControllers drives every controller with arbitrary event sequences:
// no panics, cwnd >= 1, ssthresh >= 2.
func FuzzControllers(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0})
	f.Add([]byte{3, 200, 3, 200, 3, 200, 1, 9, 0, 255, 255, 5, 4, 6, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range Names() {
			c, err := New(name)
			if err != nil {
				t.Fatal(err)
			}
			c.Init(1448, t0)
			now := t0
			var delivered int64
			for len(data) >= 3 {
				op, a := data[0], binary.BigEndian.Uint16(data[1:3])
				data = data[3:]
				now = now.Add(time.Duration(a) * 100 * time.Microsecond)
				switch op % 8 {
				case 0, 1, 2:
					delivered += int64(a % 64)
					c.OnAck(now, &RateSample{
						Delivered: int64(a % 64), Interval: time.Duration(a) * time.Microsecond,
						PriorDelivered: delivered - int64(a%200), TotalDelivered: delivered,
						RTT: time.Duration(a%300) * time.Millisecond, MinRTT: time.Duration(a%50) * time.Millisecond,
						AckedSacked: int(a % 64), Losses: int(a % 3), PriorInFlight: int(a % 500),
						InFlight: int(a % 400), IsAppLimited: a&1 == 1, InRecovery: a&2 == 2,
					})
				case 3:
					c.OnCongestionEvent(now, int(a))
				case 4:
					c.OnRecoveryEnd(now)
				case 5:
					c.OnRTO(now, int(a))
				case 6:
					c.Undo()
					c.OnECE(now)
				case 7:
					c.OnIdleRestart(now, time.Duration(a)*time.Millisecond, 200*time.Millisecond)
				}
				if c.Cwnd() < 1 || c.Ssthresh() < 2 {
					t.Fatalf("%s: cwnd %d ssthresh %d", name, c.Cwnd(), c.Ssthresh())
				}
				if r := c.PacingRate(); r < 0 {
					t.Fatalf("%s: pacing rate %d", name, r)
				}
			}
		}
	})
}
