package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// TestEventsCarryCongestionState: the JSON trace's send, recv and timer
// events carry the host engine's cwnd, ssthresh (once set) and srtt (once
// measured), which plot draws; every segment of a connection has them, so
// the cwnd line runs to the last ACK. Other events do not.
func TestEventsCarryCongestionState(t *testing.T) {
	r, err := Demo(DemoOptions{Seed: 5, Delay: 20 * ms, Loss: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Env.Sim.Trace().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	var cwnd, ss, srtt, timers int
	sc := bufio.NewScanner(&b)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Ev       string   `json:"ev"`
			Note     string   `json:"note"`
			Cwnd     *int     `json:"cwnd"`
			Ssthresh *int     `json:"ssthresh"`
			SRTT     *float64 `json:"srtt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		switch e.Ev {
		case KindSend, KindRecv:
			n[e.Ev]++
			if e.Cwnd == nil || *e.Cwnd <= 0 {
				t.Fatalf("%s event without cwnd: %s", e.Ev, sc.Bytes())
			}
			cwnd++
			if e.Ssthresh != nil && *e.Ssthresh > 0 {
				ss++
			}
			if e.SRTT != nil && *e.SRTT >= 0.04 && *e.SRTT < 5 {
				srtt++
			}
		case KindTimer:
			timers++
			if e.Cwnd == nil {
				t.Fatalf("timer event without cwnd: %s", sc.Bytes())
			}
		default:
			if e.Cwnd != nil || e.SRTT != nil {
				t.Fatalf("congestion state on a %s event: %s", e.Ev, sc.Bytes())
			}
		}
	}
	if n[KindSend] == 0 || n[KindRecv] == 0 || timers == 0 || ss == 0 || srtt < cwnd/2 {
		t.Errorf("%d send, %d recv, %d timer events; %d with cwnd, %d with ssthresh, %d with srtt >= 40 ms", n[KindSend], n[KindRecv], timers, cwnd, ss, srtt)
	}
}
