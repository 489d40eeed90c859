package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addrA = netip.MustParseAddrPort("10.0.0.1:40000")
	addrB = netip.MustParseAddrPort("10.0.0.2:80")
)

type line struct {
	Time     time.Time `json:"time"`
	Local    string    `json:"local"`
	Remote   string    `json:"remote"`
	Kind     string    `json:"kind"`
	State    string    `json:"state"`
	Prev     string    `json:"prev"`
	Seq      *uint32   `json:"seq"`
	Ack      uint32    `json:"ack"`
	Len      int       `json:"len"`
	Flags    string    `json:"flags"`
	Wnd      uint32    `json:"wnd"`
	Reason   string    `json:"reason"`
	Cwnd     int       `json:"cwnd"`
	Ssthresh int       `json:"ssthresh"`
	RTO      float64   `json:"rto"`
	SRTT     float64   `json:"srtt"`
}

// TestJSONLinesFromEngine runs a real handshake and transfer between two
// engines, traces both into one writer and parses every line back.
func TestJSONLinesFromEngine(t *testing.T) {
	var out bytes.Buffer
	j := NewJSON(&out)
	cfg := tcp.DefaultConfig()
	ta := tcp.Tuple{Local: addrA, Remote: addrB}
	tb := tcp.Tuple{Local: addrB, Remote: addrA}
	now := t0
	a := tcp.NewActive(&cfg, ta, 1000, now)
	a.SetTracer(j.Conn(ta))
	var toA, toB []tcp.Segment
	cp := func(s *tcp.Segment) tcp.Segment {
		d := *s
		d.Payload = append([]byte(nil), s.Payload...)
		return d
	}
	a.Output(now, func(s *tcp.Segment) { toB = append(toB, cp(s)) })
	b, err := tcp.NewPassive(&cfg, tb, 5000, &toB[0], now)
	if err != nil {
		t.Fatal(err)
	}
	b.SetTracer(j.Conn(tb))
	toB = nil
	a.Send(make([]byte, 5000))
	buf := make([]byte, 8192)
	for i := range 20 {
		now = now.Add(5 * time.Millisecond)
		if i == 10 {
			a.CloseWrite()
		}
		b.Output(now, func(s *tcp.Segment) { toA = append(toA, cp(s)) })
		for i := range toA {
			a.Input(&toA[i], now)
		}
		toA = toA[:0]
		a.Output(now, func(s *tcp.Segment) { toB = append(toB, cp(s)) })
		for i := range toB {
			b.Input(&toB[i], now)
		}
		toB = toB[:0]
		for b.Readable() > 0 {
			b.Recv(buf)
		}
	}
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	n := 0
	kinds := map[string]int{}
	var synSeen, dataSeen bool
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, sc.Bytes())
		}
		n++
		kinds[l.Kind]++
		if l.Time.Before(t0) || l.Local == "" || l.Remote == "" || l.State == "" || l.RTO <= 0 || l.Cwnd <= 0 {
			t.Errorf("line %d incomplete: %s", n, sc.Bytes())
		}
		if l.Kind == "send" && l.Local == addrA.String() && l.Flags == "SYN" && l.Reason == "syn" && l.Seq != nil && *l.Seq == 1000 {
			synSeen = true
		}
		if l.Kind == "recv" && l.Local == addrB.String() && l.Len > 0 && l.Reason == "" {
			dataSeen = true
		}
	}
	if !synSeen || !dataSeen || kinds["state"] == 0 || kinds["send"] == 0 || kinds["recv"] == 0 {
		t.Errorf("%d lines, kinds %v, SYN %v, data %v\n%s", n, kinds, synSeen, dataSeen, out.String())
	}
}

func TestAppendJSONFlags(t *testing.T) {
	e := tcp.Event{Kind: tcp.EvSend, Time: t0, State: tcp.Established, Flags: wire.TCPFlagACK | wire.TCPFlagFIN | wire.TCPFlagPSH, Reason: tcp.ReasonFastRetransmit}
	got := string(AppendJSON(nil, tcp.Tuple{}, &e))
	want := `{"time":"2026-01-01T00:00:00Z","kind":"send","state":"ESTABLISHED","seq":0,"ack":0,"len":0,"flags":"FIN|PSH|ACK","wnd":0,"reason":"fast-retransmit","cwnd":0,"ssthresh":0,"rto":0,"srtt":0}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
}
