package plot

import (
	"fmt"
	"image/color"
	"math"
)

// TimeSequence is the tcptrace-style time-sequence graph of a flow:
// sequence numbers (relative to the sender's ISN) against time at the
// sender. Data segments are vertical bars (retransmissions in red), drops
// are red x marks, the ACK line is green, SACK blocks are purple bars
// (D-SACK blocks orange) and
// the receive window (ACK + advertised window) is the olive line.
func TimeSequence(f *Flow) *Chart {
	c := &Chart{
		Title:     fmt.Sprintf("time-sequence graph  %s %s", f.Host, f.Conn),
		XLabel:    "time (s)",
		YLabel:    "sequence number (bytes, relative)",
		Unbounded: map[string]bool{"receive window": true},
	}
	pad := (f.End - f.Start) * 0.02
	c.XMin, c.XMax = f.Start-pad, f.End+pad
	if c.XMax <= c.XMin {
		c.XMin, c.XMax = f.Start-0.001, f.End+0.001
	}
	var data, rtx, sack [][2]Point
	for _, s := range f.Data {
		b := [2]Point{{s.T, s.Start}, {s.T, s.End}}
		if s.Rtx {
			rtx = append(rtx, b)
		} else {
			data = append(data, b)
		}
	}
	var dsack [][2]Point
	for _, s := range f.SACKs {
		if s.DSACK {
			dsack = append(dsack, [2]Point{{s.T, s.Start}, {s.T, s.End}})
		} else {
			sack = append(sack, [2]Point{{s.T, s.Start}, {s.T, s.End}})
		}
	}
	// The receive window is often far above the data (a 128 kB window
	// over a 30 kB transfer): it does not widen the Y range, it is clipped,
	// and the legend says so when none of it is inside the graph.
	winName := "receive window"
	dataTop := 0.0
	for _, s := range f.Data {
		dataTop = math.Max(dataTop, s.End)
	}
	for _, p := range f.Acks {
		dataTop = math.Max(dataTop, p.Y)
	}
	visible := false
	for _, p := range f.Window {
		if p.Y <= dataTop*1.04 {
			visible = true
		}
	}
	if len(f.Window) > 0 && !visible {
		winName = "receive window (above the graph)"
	}
	c.Unbounded = map[string]bool{winName: true}
	var drops []Point
	for _, s := range f.Drops {
		drops = append(drops, Point{s.T, (s.Start + s.End) / 2})
	}
	c.Series = append(c.Series,
		Series{Name: winName, Color: Olive, Style: Step, Width: 1.5, Points: f.Window},
		Series{Name: "ack", Color: Green, Style: Step, Width: 1.5, Points: f.Acks},
		Series{Name: "data", Color: Blue, Style: Bars, Width: 2, Segs: data},
		Series{Name: "sack", Color: Purple, Style: Bars, Width: 2, Segs: sack},
		Series{Name: "d-sack (duplicate)", Color: Orange, Style: Bars, Width: 2, Segs: dsack},
		Series{Name: "retransmission", Color: Red, Style: Bars, Width: 3, Cap: 6, Segs: rtx},
		Series{Name: "drop", Color: Red, Style: Marks, Width: 2, Points: drops},
	)
	var keep []Series
	for _, s := range c.Series {
		if len(s.Points) > 0 || len(s.Segs) > 0 {
			keep = append(keep, s)
		}
	}
	c.Series = keep
	return c
}

// CwndRTT returns two panels: packets in flight (and cwnd/ssthresh when the
// trace has them) over time, and RTT samples (and the smoothed RTT when the
// trace has it) in milliseconds. Missing lists what the trace lacks for
// the full chart.
func CwndRTT(f *Flow) (charts []*Chart, missing []string) {
	mss := float64(max(f.MSS, 1))
	pad := (f.End - f.Start) * 0.02
	x0, x1 := f.Start-pad, f.End+pad
	if x1 <= x0 {
		x0, x1 = f.Start-0.001, f.End+0.001
	}
	top := &Chart{Title: fmt.Sprintf("packets in flight  %s %s  (mss %d)", f.Host, f.Conn, f.MSS),
		XLabel: "time (s)", YLabel: "packets", XMin: x0, XMax: x1}
	var flight []Point
	for _, p := range f.Flight {
		flight = append(flight, Point{p.X, p.Y / mss})
	}
	top.Series = append(top.Series, Series{Name: "in flight (snd.nxt - snd.una)", Color: Blue, Style: Step, Width: 1.5, Points: flight})
	// ssthresh is drawn wide under cwnd: after a reduction the two are
	// often equal, and cwnd must stay visible on top of it.
	if len(f.Thresh) > 0 {
		top.Series = append(top.Series, Series{Name: "ssthresh", Color: Purple, Style: Step, Width: 5, Points: f.Thresh})
	} else {
		missing = append(missing, "ssthresh")
	}
	if len(f.Cwnd) > 0 {
		top.Title = fmt.Sprintf("cwnd and packets in flight  %s %s", f.Host, f.Conn)
		top.Series = append(top.Series, Series{Name: "cwnd", Color: Orange, Style: Step, Width: 2, Points: f.Cwnd})
	} else {
		missing = append(missing, "cwnd")
	}
	var rtts, srtt []Point
	for _, p := range f.RTT {
		rtts = append(rtts, Point{p.X, p.Y * 1000})
	}
	for _, p := range f.SRTT {
		srtt = append(srtt, Point{p.X, p.Y * 1000})
	}
	bottom := &Chart{Title: fmt.Sprintf("RTT  %s %s", f.Host, f.Conn),
		XLabel: "time (s)", YLabel: "RTT (ms)", XMin: x0, XMax: x1}
	if len(srtt) > 0 {
		bottom.Series = append(bottom.Series, Series{Name: "srtt", Color: Green, Style: Step, Width: 1.5, Points: srtt})
	} else {
		missing = append(missing, "srtt")
	}
	var minRTT []Point
	for _, p := range f.MinRTT {
		minRTT = append(minRTT, Point{p.X, p.Y * 1000})
	}
	if len(minRTT) > 0 {
		bottom.Series = append(bottom.Series, Series{Name: "min rtt (congestion control)", Color: Purple, Style: Step, Width: 2, Points: minRTT})
	}
	if len(rtts) > 0 {
		bottom.Series = append(bottom.Series, Series{Name: "rtt sample (measured from the trace)", Color: Red, Style: Dots, Points: rtts})
		hi := 0.0
		for _, p := range rtts {
			hi = math.Max(hi, p.Y)
		}
		for _, p := range srtt {
			hi = math.Max(hi, p.Y)
		}
		for _, p := range minRTT {
			hi = math.Max(hi, p.Y)
		}
		bottom.YMin, bottom.YMax = 0, hi*1.15
	}
	return []*Chart{top, bottom}, missing
}

// Colours of the BBR states: the strip along the top of the rate chart,
// and the paler tint behind the series.
var stateColors = map[string][2]color.RGBA{
	"STARTUP":         {{0xf6, 0xb2, 0x6b, 0xff}, {0xfd, 0xf0, 0xe2, 0xff}},
	"DRAIN":           {{0xf2, 0xd8, 0x4b, 0xff}, {0xfc, 0xf7, 0xdc, 0xff}},
	"PROBE_BW_DOWN":   {{0x8f, 0xb8, 0xe8, 0xff}, {0xe8, 0xf0, 0xfa, 0xff}},
	"PROBE_BW_CRUISE": {{0xa8, 0xd8, 0xa0, 0xff}, {0xee, 0xf8, 0xec, 0xff}},
	"PROBE_BW_REFILL": {{0x7c, 0xd0, 0xc8, 0xff}, {0xe4, 0xf6, 0xf4, 0xff}},
	"PROBE_BW_UP":     {{0xf0, 0x9a, 0xb4, 0xff}, {0xfc, 0xe8, 0xee, 0xff}},
	"PROBE_RTT":       {{0xb8, 0xa4, 0xe0, 0xff}, {0xf0, 0xec, 0xf8, 0xff}},
}

// Rate returns the rate chart of a flow, in Mbit/s over time: the rate
// acknowledged data arrives at, measured from the ACKs in the trace (in
// 100 bins over the flow, at least 1 ms each), and, when the trace has the
// sender's rate model (BBR), the pacing rate, the bandwidth estimate, the
// engine's delivery rate and the controller's states as coloured bands.
// Missing lists the rate-model fields the trace lacks.
func Rate(f *Flow) (c *Chart, missing []string) {
	pad := (f.End - f.Start) * 0.02
	c = &Chart{Title: fmt.Sprintf("rates  %s %s", f.Host, f.Conn),
		XLabel: "time (s)", YLabel: "rate (Mbit/s)", XMin: f.Start - pad, XMax: f.End + pad}
	if c.XMax <= c.XMin {
		c.XMin, c.XMax = f.Start-0.001, f.End+0.001
	}
	mbps := func(ps []Point) []Point {
		out := make([]Point, len(ps))
		for i, p := range ps {
			out[i] = Point{p.X, p.Y * 8 / 1e6}
		}
		return out
	}
	for _, sp := range f.States {
		col, ok := stateColors[sp.State]
		if !ok {
			col = [2]color.RGBA{{0xc8, 0xc8, 0xc8, 0xff}, {0xf2, 0xf2, 0xf2, 0xff}}
		}
		c.Bands = append(c.Bands, Band{X0: sp.Start, X1: sp.End, Label: sp.State, Color: col[0], Tint: col[1]})
	}
	if len(f.States) > 0 {
		c.Title = fmt.Sprintf("rates and congestion-control state  %s %s", f.Host, f.Conn)
	}
	if acked := ackRate(f); len(acked) > 0 {
		c.Series = append(c.Series, Series{Name: "acked (measured from the trace)", Color: Green, Style: Step, Width: 1.5, Points: mbps(acked)})
	}
	add := func(name string, ps []Point, col color.RGBA, st Style, w float64) {
		if len(ps) == 0 {
			missing = append(missing, name)
			return
		}
		c.Series = append(c.Series, Series{Name: name, Color: col, Style: st, Width: w, Points: mbps(ps)})
	}
	add("delivery rate", f.DRate, Blue, Line, 1)
	add("bandwidth estimate (max_bw)", f.BW, Purple, Step, 2.5)
	// bw_lo is drawn in pieces: it is unset (infinite) between them. It is
	// wide, under the pacing rate, which often equals it.
	name := "short-term bound (bw_lo)"
	var piece []Point
	flush := func() {
		if len(piece) > 0 {
			// Line, not Step: a Step series runs on to the right edge.
			c.Series = append(c.Series, Series{Name: name, Color: Red, Style: Line, Width: 4, Points: mbps(piece)})
			name, piece = "_"+name, nil
		}
	}
	for _, p := range f.BwLo {
		if math.IsNaN(p.Y) {
			// hold the bound up to the reset, then break the line
			if len(piece) > 0 {
				piece = append(piece, Point{p.X, piece[len(piece)-1].Y})
			}
			flush()
			continue
		}
		piece = append(piece, p)
	}
	flush()
	add("pacing rate", f.Pacing, Orange, Step, 1.5)
	for i, m := range missing {
		missing[i] = map[string]string{"delivery rate": "drate", "bandwidth estimate (max_bw)": "bw", "pacing rate": "pacing"}[m]
	}
	if len(f.States) == 0 {
		missing = append(missing, "cc_state")
	}
	return c, missing
}

// ackRate is the rate the cumulative ACK advances at, in bytes/s: the
// flow's time cut into 100 equal bins (at least 1 ms each), one point at
// the end of each bin giving the advance over the last 5 bins (fewer at
// the start), which smooths the jumps of the cumulative ACK when a hole
// is filled.
func ackRate(f *Flow) []Point {
	if len(f.Acks) < 2 {
		return nil
	}
	const window = 5
	t0, t1 := f.Acks[0].X, f.Acks[len(f.Acks)-1].X
	bin := math.Max((t1-t0)/100, 0.001)
	var out []Point
	hist := []float64{f.Acks[0].Y} // highest ACK at each bin end
	i := 0
	for k := 1; t0+float64(k-1)*bin < t1; k++ {
		end := t0 + float64(k)*bin
		hi := hist[len(hist)-1]
		for i < len(f.Acks) && f.Acks[i].X <= end {
			hi = math.Max(hi, f.Acks[i].Y)
			i++
		}
		hist = append(hist, hi)
		back := min(window, len(hist)-1)
		out = append(out, Point{end, (hi - hist[len(hist)-1-back]) / (float64(back) * bin)})
	}
	return out
}
