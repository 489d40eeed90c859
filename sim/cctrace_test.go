package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// TestSendEventsCarryCongestionState: the JSON trace's send events carry
// the engine's cwnd, ssthresh (once set) and srtt (once measured), which
// plot draws.
func TestSendEventsCarryCongestionState(t *testing.T) {
	r, err := Demo(DemoOptions{Seed: 5, Delay: 20 * ms, Loss: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Env.Sim.Trace().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var sends, cwnd, ss, srtt int
	sc := bufio.NewScanner(&b)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Ev       string   `json:"ev"`
			Cwnd     *int     `json:"cwnd"`
			Ssthresh *int     `json:"ssthresh"`
			SRTT     *float64 `json:"srtt"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Ev != KindSend {
			if e.Cwnd != nil || e.SRTT != nil {
				t.Fatalf("congestion state on a %s event: %s", e.Ev, sc.Bytes())
			}
			continue
		}
		sends++
		if e.Cwnd != nil && *e.Cwnd > 0 {
			cwnd++
		}
		if e.Ssthresh != nil && *e.Ssthresh > 0 {
			ss++
		}
		if e.SRTT != nil && *e.SRTT >= 0.04 && *e.SRTT < 5 {
			srtt++
		}
	}
	if sends == 0 || cwnd < sends*9/10 || ss == 0 || srtt < sends/2 {
		t.Errorf("%d send events: %d with cwnd, %d with ssthresh, %d with srtt >= 40 ms", sends, cwnd, ss, srtt)
	}
}
