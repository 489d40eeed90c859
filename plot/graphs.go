package plot

import (
	"fmt"
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
	if len(rtts) > 0 {
		bottom.Series = append(bottom.Series, Series{Name: "rtt sample (measured from the trace)", Color: Red, Style: Dots, Points: rtts})
		hi := 0.0
		for _, p := range rtts {
			hi = math.Max(hi, p.Y)
		}
		for _, p := range srtt {
			hi = math.Max(hi, p.Y)
		}
		bottom.YMin, bottom.YMax = 0, hi*1.15
	}
	return []*Chart{top, bottom}, missing
}
