// Package plot draws tcptrace-like graphs of a TCP connection from the
// JSON-lines trace of the ustack simulator (sim.Trace.WriteJSON, or
// `ustack sim SCENARIO --json`): a time-sequence graph (data segments,
// retransmissions, drops, the ACK line, SACK blocks and the receive window
// over time), a chart of cwnd, ssthresh and packets in flight over RTT
// samples, the smoothed RTT and (BBR) the controller's min RTT, and a rate
// chart: the rate acknowledged data arrives at (measured from the trace)
// and, when the trace carries the sender's rate model (the simulator
// records it for BBR), the pacing rate, the bandwidth estimate, the
// engine's delivery rate and the BBR state as coloured bands. Charts are
// written as SVG (hand-written) and PNG (rasterized here, standard library
// only).
package plot

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Event is one line of a simulator trace. Only the fields the plots use are
// decoded; unknown fields are ignored. Cwnd, Ssthresh and SRTT are
// optional: the simulator puts them on every send and recv event (the
// host's engine state as the segment leaves, or after it handled an
// arriving one); when a trace carries them the cwnd chart draws them.
type Event struct {
	T        float64  // seconds
	Host     string   `json:"host"`
	Conn     string   `json:"conn"`
	Kind     string   `json:"ev"`
	Flags    string   `json:"flags"`
	Seq      *uint32  `json:"seq"`
	Ack      *uint32  `json:"ack"`
	Len      *int     `json:"len"`
	Win      *uint16  `json:"win"`
	Opts     string   `json:"opts"`
	Rtx      bool     `json:"rtx"`
	Dup      bool     `json:"dupack"`
	Note     string   `json:"note"`
	Cwnd     *int     `json:"cwnd"`     // packets (optional)
	Ssthresh *int     `json:"ssthresh"` // packets (optional)
	SRTT     *float64 `json:"srtt"`     // seconds (optional)

	// The sender's rate model, which the simulator records when the
	// congestion controller is BBR (all optional): pacing rate, bandwidth
	// estimate, BBR's short-term bound (bw_lo) and delivery rate in bytes/s, the controller's min RTT in
	// seconds and its state ("STARTUP", "DRAIN", "PROBE_BW_UP", ...).
	Pacing   *int64   `json:"pacing"`
	BW       *int64   `json:"bw"`
	BwLo     *int64   `json:"bw_lo"`
	Delivery *int64   `json:"drate"`
	MinRTT   *float64 `json:"minrtt"`
	CCState  string   `json:"cc_state"`
}

// ReadTrace reads a JSON-lines trace. Blank lines are skipped; a line that
// is not a JSON object is an error naming the line.
func ReadTrace(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []Event
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var raw struct {
			Event
			T json.Number `json:"t"`
		}
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			return nil, fmt.Errorf("plot: trace line %d: %w", n, err)
		}
		e := raw.Event
		if raw.T != "" {
			t, err := strconv.ParseFloat(string(raw.T), 64)
			if err != nil {
				return nil, fmt.Errorf("plot: trace line %d: bad time %q", n, raw.T)
			}
			e.T = t
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("plot: reading trace: %w", err)
	}
	return out, nil
}

// Flow is one direction of data of one connection, seen at the sender,
// with sequence numbers relative to the sender's initial sequence number.
type Flow struct {
	Host, Conn string // the sender's host name and its local>remote tuple
	Start, End float64

	Data    []Seg   // data segments sent (Rtx marks retransmissions)
	Drops   []Seg   // data segments the network dropped
	Acks    []Point // cumulative ACK arriving at the sender (x time, y rel ack)
	Window  []Point // ACK + advertised window (scaled), at the sender
	SACKs   []Seg   // SACK blocks arriving at the sender
	Flight  []Point // bytes in flight (snd_nxt - snd_una) after each event
	RTT     []Point // RTT samples in seconds (TS echo, or Karn's rule without TS)
	Cwnd    []Point // packets, at the sender's sends and ACK arrivals, if the trace has a cwnd field
	Thresh  []Point // packets, likewise, if the trace has a ssthresh field
	SRTT    []Point // seconds, likewise, if the trace has a srtt field
	Pacing  []Point // bytes/s, likewise, if the trace has a pacing field (BBR)
	BW      []Point // bytes/s, the controller's bandwidth estimate (bw field)
	BwLo    []Point // bytes/s, BBR's short-term bound while set (bw_lo field); a NaN Y marks where it was reset
	DRate   []Point // bytes/s, the engine's delivery rate (drate field)
	MinRTT  []Point // seconds, the controller's min RTT (minrtt field)
	States  []Span  // the controller's states over time (cc_state field)
	MSS     int     // largest data segment seen
	Bytes   int64   // new data bytes sent
	Retrans int     // retransmitted data segments
}

// Seg is a sequence range at one time.
type Seg struct {
	T          float64
	Start, End float64
	Rtx        bool // data: a retransmission
	DSACK      bool // SACK block: a duplicate report (RFC 2883), below the ACK or inside the next block
}

// Span is a time interval in one congestion-control state.
type Span struct {
	Start, End float64
	State      string
}

// Point is one point of a series.
type Point struct{ X, Y float64 }

// ErrNoData means the trace has no connection that sent data.
var ErrNoData = errors.New("plot: the trace has no TCP data segments")

// Flows lists, biggest first, every (host, connection) that sent data.
func Flows(evs []Event) []string {
	bytes := map[string]int64{}
	for i := range evs {
		e := &evs[i]
		if e.Kind == "send" && e.Len != nil && *e.Len > 0 && e.Conn != "" {
			bytes[e.Host+" "+e.Conn] += int64(*e.Len)
		}
	}
	keys := make([]string, 0, len(bytes))
	for k := range bytes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if bytes[keys[i]] != bytes[keys[j]] {
			return bytes[keys[i]] > bytes[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Analyze extracts the flow of the sender whose "host conn" key contains
// match (see Flows); an empty match picks the flow that sent the most data.
func Analyze(evs []Event, match string) (*Flow, error) {
	keys := Flows(evs)
	if len(keys) == 0 {
		return nil, ErrNoData
	}
	key := ""
	for _, k := range keys {
		if strings.Contains(k, match) {
			key = k
			break
		}
	}
	if key == "" {
		return nil, fmt.Errorf("plot: no data flow matches %q (flows: %s)", match, strings.Join(keys, "; "))
	}
	host, conn, _ := strings.Cut(key, " ")
	f := &Flow{Host: host, Conn: conn}

	// Base: the sender's SYN, else its first segment.
	var iss uint32
	haveISS := false
	shift := uint(0)
	ourWS, peerWS := -1, -1
	for i := range evs {
		e := &evs[i]
		if e.Host != host || e.Conn != conn || e.Seq == nil {
			continue
		}
		if e.Kind == "send" && strings.Contains(e.Flags, "S") {
			iss, haveISS = *e.Seq, true
			ourWS = wscale(e.Opts)
		}
		if e.Kind == "recv" && strings.Contains(e.Flags, "S") {
			peerWS = wscale(e.Opts)
		}
	}
	if !haveISS {
		for i := range evs {
			e := &evs[i]
			if e.Host == host && e.Conn == conn && e.Kind == "send" && e.Seq != nil {
				iss, haveISS = *e.Seq-1, true
				break
			}
		}
	}
	if ourWS >= 0 && peerWS >= 0 {
		shift = uint(peerWS)
	}
	rel := func(s uint32) float64 { return float64(s - iss) }

	type sent struct {
		t   float64
		rtx bool
	}
	tsSent := map[uint32]float64{} // TSval -> first send time
	segSent := map[uint32]sent{}   // end seq (relative) -> send
	var sndNxt, sndUna float64 = 1, 1
	first := true
	for i := range evs {
		e := &evs[i]
		if e.Host != host || e.Conn != conn {
			continue
		}
		if e.Kind != "send" && e.Kind != "recv" && e.Kind != "drop" {
			continue
		}
		if first {
			f.Start, first = e.T, false
		}
		f.End = e.T
		n := 0
		if e.Len != nil {
			n = *e.Len
		}
		if e.Kind != "drop" {
			// The sender's congestion state as it sends and as ACKs arrive.
			if e.Cwnd != nil {
				f.Cwnd = append(f.Cwnd, Point{e.T, float64(*e.Cwnd)})
			}
			if e.Ssthresh != nil && *e.Ssthresh > 0 && *e.Ssthresh < 1<<30 {
				f.Thresh = append(f.Thresh, Point{e.T, float64(*e.Ssthresh)})
			}
			if e.SRTT != nil {
				f.SRTT = append(f.SRTT, Point{e.T, *e.SRTT})
			}
			if e.Pacing != nil {
				f.Pacing = append(f.Pacing, Point{e.T, float64(*e.Pacing)})
			}
			if e.BW != nil {
				f.BW = append(f.BW, Point{e.T, float64(*e.BW)})
			}
			if e.BwLo != nil {
				f.BwLo = append(f.BwLo, Point{e.T, float64(*e.BwLo)})
			} else if e.BW != nil && len(f.BwLo) > 0 && !math.IsNaN(f.BwLo[len(f.BwLo)-1].Y) {
				f.BwLo = append(f.BwLo, Point{e.T, math.NaN()}) // the bound was reset: a gap
			}
			if e.Delivery != nil {
				f.DRate = append(f.DRate, Point{e.T, float64(*e.Delivery)})
			}
			if e.MinRTT != nil {
				f.MinRTT = append(f.MinRTT, Point{e.T, *e.MinRTT})
			}
			if e.CCState != "" {
				if n := len(f.States); n > 0 && f.States[n-1].State == e.CCState {
					f.States[n-1].End = e.T
				} else {
					if n > 0 {
						f.States[n-1].End = e.T
					}
					f.States = append(f.States, Span{Start: e.T, End: e.T, State: e.CCState})
				}
			}
		}
		switch e.Kind {
		case "send":
			if e.Seq == nil {
				continue
			}
			if n == 0 {
				continue
			}
			s := rel(*e.Seq)
			end := s + float64(n)
			f.Data = append(f.Data, Seg{T: e.T, Start: s, End: end, Rtx: e.Rtx})
			f.MSS = max(f.MSS, n)
			if e.Rtx {
				f.Retrans++
			} else {
				f.Bytes += int64(n)
			}
			if tv, ok := tsVal(e.Opts); ok {
				if _, seen := tsSent[tv]; !seen {
					tsSent[tv] = e.T
				}
			}
			key := uint32(end)
			if old, ok := segSent[key]; ok || e.Rtx {
				segSent[key] = sent{t: old.t, rtx: true}
			} else {
				segSent[key] = sent{t: e.T}
			}
			if end > sndNxt {
				sndNxt = end
			}
			f.Flight = append(f.Flight, Point{e.T, sndNxt - sndUna})
		case "drop":
			if e.Seq != nil && n > 0 {
				s := rel(*e.Seq)
				f.Drops = append(f.Drops, Seg{T: e.T, Start: s, End: s + float64(n)})
			}
		case "recv":
			if e.Ack == nil || !strings.Contains(e.Flags, ".") {
				continue
			}
			a := rel(*e.Ack)
			if a > sndNxt+1<<30 || a < 0 { // ACK of another sequence space (before our SYN)
				continue
			}
			f.Acks = append(f.Acks, Point{e.T, a})
			if e.Win != nil {
				w := float64(*e.Win)
				if !strings.Contains(e.Flags, "S") {
					w *= float64(uint(1) << shift)
				}
				f.Window = append(f.Window, Point{e.T, a + w})
			}
			blocks := sackBlocks(e.Opts)
			for i, b := range blocks {
				sg := Seg{T: e.T, Start: rel(b[0]), End: rel(b[1])}
				if i == 0 {
					sg.DSACK = sg.End <= a
					if len(blocks) > 1 {
						nx := Seg{Start: rel(blocks[1][0]), End: rel(blocks[1][1])}
						sg.DSACK = sg.DSACK || (sg.Start >= nx.Start && sg.End <= nx.End)
					}
				}
				f.SACKs = append(f.SACKs, sg)
			}
			if a > sndUna {
				// RTT sample: timestamp echo if present, else Karn.
				if ecr, ok := tsEcr(e.Opts); ok {
					if t0, ok := tsSent[ecr]; ok {
						f.RTT = append(f.RTT, Point{e.T, e.T - t0})
					}
				} else {
					best, clean := -1.0, true
					for end, s := range segSent {
						fe := float64(end)
						if fe > sndUna && fe <= a {
							if s.rtx {
								clean = false
							}
							if s.t > best {
								best = s.t
							}
						}
					}
					if clean && best >= 0 {
						f.RTT = append(f.RTT, Point{e.T, e.T - best})
					}
				}
				sndUna = a
			}
			f.Flight = append(f.Flight, Point{e.T, max(sndNxt-sndUna, 0)})
		}
	}
	if n := len(f.States); n > 0 {
		f.States[n-1].End = f.End
	}
	return f, nil
}

func optField(opts, name string) (string, bool) {
	for _, p := range strings.Split(opts, ",") {
		p = strings.TrimSpace(p)
		if v, ok := strings.CutPrefix(p, name+" "); ok {
			return v, true
		}
	}
	return "", false
}

func wscale(opts string) int {
	v, ok := optField(opts, "wscale")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 14 {
		return -1
	}
	return n
}

// tsVal and tsEcr parse "TS val X ecr Y".
func tsVal(opts string) (uint32, bool) { return tsPart(opts, 1) }
func tsEcr(opts string) (uint32, bool) { return tsPart(opts, 3) }

func tsPart(opts string, i int) (uint32, bool) {
	v, ok := optField(opts, "TS")
	if !ok {
		return 0, false
	}
	f := strings.Fields("TS " + v)
	if len(f) != 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[i], 10, 32)
	if err != nil || (i == 3 && n == 0) {
		return 0, false
	}
	return uint32(n), true
}

// sackBlocks parses "sack L:R L:R ...".
func sackBlocks(opts string) [][2]uint32 {
	v, ok := optField(opts, "sack")
	if !ok {
		return nil
	}
	var out [][2]uint32
	for _, b := range strings.Fields(v) {
		l, r, ok := strings.Cut(b, ":")
		if !ok {
			continue
		}
		L, err1 := strconv.ParseUint(l, 10, 32)
		R, err2 := strconv.ParseUint(r, 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, [2]uint32{uint32(L), uint32(R)})
		}
	}
	return out
}
