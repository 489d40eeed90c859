package sim

import (
	"testing"
	"time"
)

// A BBR sender's trace events carry its rate model (pacing rate, bandwidth
// estimate, delivery rate, min RTT, state); CUBIC's carry none of it.
func TestTraceRateFields(t *testing.T) {
	for _, ccName := range []string{"bbr", "cubic"} {
		res, err := Demo(DemoOptions{Seed: 1, Delay: 10 * time.Millisecond, Loss: 0.01, Size: 2 << 20,
			RateBps: 100e6, Queue: 250, Sysctls: []string{"net.ipv4.tcp_congestion_control=" + ccName}})
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]int{}
		withRate, withBW, withDrate, withMinRTT, sends := 0, 0, 0, 0, 0
		var lastBW int64
		var lastMinRTT float64
		for _, e := range res.Env.Sim.Trace().Events {
			if e.Host != "B" || (e.Kind != KindSend && e.Kind != KindRecv) {
				continue
			}
			sends++
			if e.CCState != "" {
				states[e.CCState]++
			}
			if e.Pacing != nil {
				withRate++
			}
			if e.BW != nil {
				withBW++
				lastBW = *e.BW
			}
			if e.Delivery != nil {
				withDrate++
			}
			if e.MinRTT != nil {
				withMinRTT++
				lastMinRTT = *e.MinRTT
			}
		}
		t.Logf("%s: %d server events, states %v, pacing on %d, bw on %d (last %d B/s), drate on %d, minrtt on %d (last %.6f s)",
			ccName, sends, states, withRate, withBW, lastBW, withDrate, withMinRTT, lastMinRTT)
		if ccName == "cubic" {
			if len(states) > 0 || withRate+withBW+withDrate+withMinRTT > 0 {
				t.Errorf("cubic trace carries BBR fields")
			}
			continue
		}
		probeBW := states["PROBE_BW_DOWN"] + states["PROBE_BW_CRUISE"] + states["PROBE_BW_REFILL"] + states["PROBE_BW_UP"]
		if withRate != sends || states["STARTUP"] == 0 || states["DRAIN"] == 0 || probeBW == 0 {
			t.Errorf("bbr: pacing on %d of %d events, states %v; want pacing everywhere and STARTUP, DRAIN, PROBE_BW_*", withRate, sends, states)
		}
		// 100 Mbit/s less 40 bytes of headers per 1500: about 12.1 MB/s of payload.
		if lastBW < 10e6 || lastBW > 12.6e6 {
			t.Errorf("bbr: last bandwidth estimate %d B/s, want about 12.1e6", lastBW)
		}
		if lastMinRTT < 0.020 || lastMinRTT > 0.0215 {
			t.Errorf("bbr: last min RTT %.6f s, want about 0.020", lastMinRTT)
		}
		if withDrate == 0 {
			t.Errorf("bbr: no delivery rate")
		}
	}
}
