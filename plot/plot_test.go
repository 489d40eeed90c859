package plot

import (
	"bytes"
	"encoding/xml"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/sim"
)

// simTrace runs a built-in scenario and returns its JSON-lines trace.
func simTrace(t testing.TB, scenario string) []byte {
	t.Helper()
	res, err := sim.RunScenario(scenario, sim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.Sim.Trace().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// demoFlow runs the simulator's demo fetch with o and returns the analysed
// flow that sent the most.
func demoFlow(t testing.TB, o sim.DemoOptions) *Flow {
	t.Helper()
	res, err := sim.Demo(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.Env.Sim.Trace().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadTrace(&b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAnalyzeFastRetransmit(t *testing.T) {
	evs, err := ReadTrace(bytes.NewReader(simTrace(t, "fast-retransmit")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "")
	if err != nil {
		t.Fatal(err)
	}
	// A sends 30000 bytes; its 3rd data segment (relative seq 2897) is
	// dropped and fast-retransmitted once.
	if f.Host != "A" || f.Bytes != 30000 || f.MSS != 1448 {
		t.Errorf("flow %s: %d bytes, mss %d; want A, 30000, 1448", f.Host, f.Bytes, f.MSS)
	}
	if len(f.Drops) != 1 || f.Drops[0].Start != 1+2*1448 || f.Drops[0].End != 1+3*1448 {
		t.Errorf("drops = %+v, want one of [2897, 4345)", f.Drops)
	}
	var rtx []Seg
	for _, s := range f.Data {
		if s.Rtx {
			rtx = append(rtx, s)
		}
	}
	if len(rtx) != 1 || rtx[0].Start != 2897 || f.Retrans != 1 {
		t.Errorf("retransmissions = %+v, want one at 2897", rtx)
	}
	if len(f.SACKs) == 0 || f.SACKs[0].Start != 4345 {
		t.Errorf("SACK blocks = %v, want the first to start at 4345 (after the hole)", f.SACKs)
	}
	if last := f.Acks[len(f.Acks)-1].Y; last != 30002 {
		t.Errorf("last ACK = %v, want 30002 (data and FIN)", last)
	}
	if len(f.RTT) == 0 {
		t.Fatal("no RTT samples")
	}
	for _, p := range f.RTT {
		// 10 ms each way in the scenario.
		if math.Abs(p.Y-0.020) > 0.0005 {
			t.Errorf("RTT sample %v s at %v, want 0.020", p.Y, p.X)
		}
	}
	// Receive window: A's SYN and B's SYN-ACK both carry wscale 7, so
	// B's windows are scaled by 128.
	if w := f.Window[len(f.Window)-1]; w.Y-f.Acks[len(f.Acks)-1].Y < 60000 {
		t.Errorf("receive window %v above the ACK: not scaled?", w.Y-f.Acks[len(f.Acks)-1].Y)
	}
}

func TestRender(t *testing.T) {
	evs, err := ReadTrace(bytes.NewReader(simTrace(t, "fast-retransmit")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "")
	if err != nil {
		t.Fatal(err)
	}
	tsg := TimeSequence(f)
	cw, missing := CwndRTT(f)
	// The simulator's send events carry the engine's cwnd, ssthresh and srtt.
	if len(missing) != 0 {
		t.Errorf("missing = %v, want the sim trace to carry cwnd, ssthresh and srtt", missing)
	}
	if len(f.Cwnd) == 0 || len(f.Thresh) == 0 || len(f.SRTT) == 0 {
		t.Errorf("cwnd %d, ssthresh %d, srtt %d points", len(f.Cwnd), len(f.Thresh), len(f.SRTT))
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, tsg); err != nil {
		t.Fatal(err)
	}
	counts := svgElements(t, svg.Bytes())
	if counts["svg"] != 1 || counts["line"] < 50 || counts["text"] < 10 {
		t.Errorf("svg elements %v", counts)
	}
	if !strings.Contains(svg.String(), `stroke="#d61f1f"`) {
		t.Error("no red (retransmission) strokes in the SVG")
	}
	var pb bytes.Buffer
	if err := WritePNG(&pb, cw...); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != PanelWidth || b.Dy() != 2*PanelHeight {
		t.Errorf("png %v, want %dx%d", b, PanelWidth, 2*PanelHeight)
	}
	// The time-sequence PNG has red retransmission pixels.
	im := Image(tsg)
	red := 0
	for i := 0; i < len(im.Pix); i += 4 {
		if im.Pix[i] == Red.R && im.Pix[i+1] == Red.G && im.Pix[i+2] == Red.B {
			red++
		}
	}
	if red < 20 {
		t.Errorf("%d pure red pixels in the time-sequence PNG, want the retransmission and drop", red)
	}
}

// TestRenderLossy renders a lossy transfer (the demo fetch: 500 kB over a
// 2%-loss, 20 ms link, several recoveries) and checks that the cwnd line
// covers the whole transfer: points from the first send to the last ACK,
// values after every recovery, and orange cwnd pixels over the last
// quarter of the chart, where cwnd equals ssthresh and used to be hidden
// under it.
func TestRenderLossy(t *testing.T) {
	o := sim.DefaultDemoOptions()
	o.Size = 500000
	f := demoFlow(t, o)
	if f.Retrans < 3 {
		t.Fatalf("%d retransmissions, want a transfer with several losses", f.Retrans)
	}
	if len(f.Cwnd) == 0 || len(f.Thresh) == 0 || len(f.SRTT) == 0 {
		t.Fatalf("cwnd %d, ssthresh %d, srtt %d points", len(f.Cwnd), len(f.Thresh), len(f.SRTT))
	}
	first, last := f.Cwnd[0], f.Cwnd[len(f.Cwnd)-1]
	if first.X != f.Start || last.X != f.End {
		t.Errorf("cwnd points from %v s to %v s, want the whole flow, %v s to %v s", first.X, last.X, f.Start, f.End)
	}
	lastRtx := 0.0
	for _, s := range f.Data {
		if s.Rtx {
			lastRtx = s.T
		}
	}
	after := 0
	for _, p := range f.Cwnd {
		if p.X > lastRtx {
			after++
		}
	}
	if after < 5 {
		t.Errorf("%d cwnd points after the last retransmission at %v s, want the line to go on", after, lastRtx)
	}
	charts, missing := CwndRTT(f)
	if len(missing) != 0 {
		t.Errorf("missing %v", missing)
	}
	var pb bytes.Buffer
	if err := WritePNG(&pb, charts...); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pb)
	if err != nil {
		t.Fatal(err)
	}
	bd := img.Bounds()
	if bd.Dx() != PanelWidth || bd.Dy() != 2*PanelHeight {
		t.Fatalf("png %v, want %dx%d", bd, PanelWidth, 2*PanelHeight)
	}
	// Orange (cwnd) pixels in the last quarter of the top panel's width
	// (the legend is at the top left).
	orange := 0
	for y := 0; y < PanelHeight; y++ {
		for x := PanelWidth * 3 / 4; x < PanelWidth; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == Orange.R && uint8(g>>8) == Orange.G && uint8(bl>>8) == Orange.B {
				orange++
			}
		}
	}
	if orange < 50 {
		t.Errorf("%d cwnd-orange pixels in the last quarter of the cwnd chart, want the cwnd line drawn to the end", orange)
	}
}

func svgElements(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
			if se.Name.Local == "svg" && se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("svg namespace %q", se.Name.Space)
			}
		}
	}
	return counts
}

func TestReadTraceErrors(t *testing.T) {
	if _, err := ReadTrace(strings.NewReader("{\"t\":0.1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want line 2", err)
	}
	evs, err := ReadTrace(strings.NewReader("\n{\"t\":0.5,\"host\":\"A\",\"ev\":\"app\"}\n"))
	if err != nil || len(evs) != 1 || evs[0].T != 0.5 {
		t.Errorf("evs %+v err %v", evs, err)
	}
	if _, err := Analyze(evs, ""); err != ErrNoData {
		t.Errorf("Analyze without data: %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	ticks, step := niceTicks(0, 0.083, 10)
	if step != 0.01 || len(ticks) != 9 {
		t.Errorf("ticks %v step %v", ticks, step)
	}
	if s := tickLabel(0.03, 0.01); s != "0.03" {
		t.Errorf("label %q", s)
	}
}

// FuzzReadTrace: arbitrary input never panics, and whatever parses can be
// analysed and rendered.
func FuzzReadTrace(f *testing.F) {
	f.Add(simTrace(f, "fast-retransmit"))
	f.Add([]byte(`{"t":0,"host":"A","conn":"x","ev":"send","flags":"S","seq":4294967295,"len":0,"win":1,"opts":"wscale 14"}
{"t":1,"host":"A","conn":"x","ev":"send","flags":".","seq":0,"len":1000,"opts":"TS val 1 ecr 0"}
{"t":2,"host":"A","conn":"x","ev":"recv","flags":".","ack":1000,"win":65535,"opts":"TS val 9 ecr 1,sack 5:1 7:x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ReadTrace(bytes.NewReader(b))
		if err != nil {
			return
		}
		fl, err := Analyze(evs, "")
		if err != nil {
			return
		}
		WriteSVG(io.Discard, TimeSequence(fl))
		cs, _ := CwndRTT(fl)
		WriteSVG(io.Discard, cs...)
		rc, _ := Rate(fl)
		WriteSVG(io.Discard, rc)
		Image(rc)
	})
}

// TestCwndFields: a trace that carries cwnd, ssthresh and srtt on the
// sender's segments gets them drawn (and nothing reported missing).
func TestCwndFields(t *testing.T) {
	trace := `{"t":0.000000,"host":"A","conn":"a>b","ev":"send","flags":"S","seq":100,"len":0,"win":65535,"opts":"mss 1000,wscale 2"}
{"t":0.010000,"host":"A","conn":"a>b","ev":"recv","flags":"S.","seq":900,"ack":101,"len":0,"win":65535,"opts":"mss 1000,wscale 3"}
{"t":0.010000,"host":"A","conn":"a>b","ev":"send","flags":".","seq":101,"ack":901,"len":1000,"win":100,"cwnd":10,"ssthresh":2147483647,"srtt":0.010}
{"t":0.010000,"host":"A","conn":"a>b","ev":"send","flags":".","seq":1101,"ack":901,"len":1000,"win":100,"cwnd":10}
{"t":0.020000,"host":"A","conn":"a>b","ev":"recv","flags":".","seq":901,"ack":1101,"len":0,"win":100}
{"t":0.030000,"host":"A","conn":"a>b","ev":"send","flags":".","seq":1101,"ack":901,"len":1000,"win":100,"rtx":true,"cwnd":5,"ssthresh":5,"srtt":0.012}
{"t":0.040000,"host":"A","conn":"a>b","ev":"recv","flags":".","seq":901,"ack":2101,"len":0,"win":100}
`
	evs, err := ReadTrace(strings.NewReader(trace))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "A a>b")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cwnd) != 3 || f.Cwnd[2].Y != 5 || len(f.Thresh) != 1 || len(f.SRTT) != 2 {
		t.Errorf("cwnd %v ssthresh %v srtt %v", f.Cwnd, f.Thresh, f.SRTT)
	}
	// No timestamps: Karn's rule. The first ACK gives 10 ms; the second
	// covers a retransmitted segment and gives no sample.
	if len(f.RTT) != 1 || math.Abs(f.RTT[0].Y-0.010) > 1e-9 {
		t.Errorf("RTT samples %v", f.RTT)
	}
	// Window scale 3 from the peer's SYN-ACK: 100 << 3 above the ACK.
	if w := f.Window[len(f.Window)-1]; w.Y != 2001+800 {
		t.Errorf("window line at %v, want 2801 (ACK 2001 relative to the ISN, + 800)", w.Y)
	}
	charts, missing := CwndRTT(f)
	if len(missing) != 0 {
		t.Errorf("missing %v", missing)
	}
	var names []string
	for _, c := range charts {
		for _, s := range c.Series {
			names = append(names, s.Name)
		}
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "cwnd") || !strings.Contains(got, "ssthresh") || !strings.Contains(got, "srtt") {
		t.Errorf("series %s", got)
	}
}

func TestDSACK(t *testing.T) {
	evs, err := ReadTrace(bytes.NewReader(simTrace(t, "reorder-deep")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "")
	if err != nil {
		t.Fatal(err)
	}
	// The held-back segment [2897, 4345) arrives after its spurious fast
	// retransmission: B reports the duplicate with a D-SACK.
	var d []Seg
	for _, s := range f.SACKs {
		if s.DSACK {
			d = append(d, s)
		}
	}
	if len(d) == 0 || d[0].Start != 2897 || d[0].End != 4345 {
		t.Errorf("D-SACK blocks %+v, want [2897, 4345)", d)
	}
}

// TestRenderBBR renders the rate chart of a BBR transfer over a lossy
// path (100 Mbit/s, 10 ms each way, 1% loss each way, 250-packet queue):
// pacing rate, bandwidth estimate and delivery rate span the transfer, the
// states appear as bands with their labels, min RTT is on the RTT chart,
// and the SVG and PNG are valid and of the expected size.
func TestRenderBBR(t *testing.T) {
	f := demoFlow(t, sim.DemoOptions{Seed: 1, Delay: 10 * time.Millisecond, Loss: 0.01, Size: 4 << 20,
		RateBps: 100e6, Queue: 250, Sysctls: []string{"net.ipv4.tcp_congestion_control=bbr"}})
	if f.Host != "B" || f.Retrans == 0 {
		t.Fatalf("flow %s with %d retransmissions, want B's lossy transfer", f.Host, f.Retrans)
	}
	span := f.End - f.Start
	for name, ps := range map[string][]Point{"pacing": f.Pacing, "bw": f.BW, "drate": f.DRate, "minrtt": f.MinRTT} {
		if len(ps) < 100 {
			t.Errorf("%s: %d points", name, len(ps))
			continue
		}
		if first, last := ps[0].X, ps[len(ps)-1].X; first > f.Start+0.1*span || last < f.End-0.05*span {
			t.Errorf("%s from %v s to %v s, want the transfer %v s to %v s", name, first, last, f.Start, f.End)
		}
	}
	if mr := f.MinRTT[len(f.MinRTT)-1].Y; math.Abs(mr-0.020) > 0.0005 {
		t.Errorf("min RTT %v s, want 0.020", mr)
	}
	if bw := f.BW[len(f.BW)-1].Y * 8 / 1e6; bw < 85 || bw > 100 {
		t.Errorf("bandwidth estimate %.1f Mbit/s, want about 96 (100 Mbit/s less headers)", bw)
	}
	states := map[string]bool{}
	for i, sp := range f.States {
		states[sp.State] = true
		if sp.End < sp.Start || (i > 0 && sp.Start != f.States[i-1].End) {
			t.Errorf("state span %d %+v does not follow %+v", i, sp, f.States[max(i-1, 0)])
		}
	}
	if !states["STARTUP"] || !states["DRAIN"] || len(f.States) < 3 || f.States[0].Start != f.Start || f.States[len(f.States)-1].End != f.End {
		t.Errorf("states %+v, want STARTUP, DRAIN, ProbeBW covering %v to %v", f.States, f.Start, f.End)
	}

	c, missing := Rate(f)
	if len(missing) != 0 {
		t.Errorf("rate chart missing %v", missing)
	}
	if len(c.Bands) != len(f.States) {
		t.Errorf("%d bands for %d states", len(c.Bands), len(f.States))
	}
	var names []string
	for _, s := range c.Series {
		names = append(names, s.Name)
	}
	for _, want := range []string{"pacing rate", "bandwidth estimate (max_bw)", "delivery rate", "acked (measured from the trace)"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("rate chart series %v lack %q", names, want)
		}
	}
	cw, _ := CwndRTT(f)
	if got := cw[1].Series; len(got) < 2 || got[1].Name != "min rtt (congestion control)" {
		t.Errorf("RTT chart has no min rtt series: %v", got)
	}

	var svg bytes.Buffer
	if err := WriteSVG(&svg, c); err != nil {
		t.Fatal(err)
	}
	counts := svgElements(t, svg.Bytes())
	if counts["svg"] != 1 || counts["rect"] < 2*len(f.States) || counts["line"] < 1000 {
		t.Errorf("svg elements %v", counts)
	}
	for _, st := range []string{">STARTUP<", ">DRAIN<", ">pacing rate<"} {
		if !strings.Contains(svg.String(), st) {
			t.Errorf("svg lacks the text %s", st)
		}
	}
	var pb bytes.Buffer
	if err := WritePNG(&pb, c); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if bd := img.Bounds(); bd.Dx() != PanelWidth || bd.Dy() != PanelHeight {
		t.Fatalf("png %v, want %dx%d", bd, PanelWidth, PanelHeight)
	}
	// The STARTUP strip and tint, and orange pacing pixels right of the
	// legend.
	want := map[string]color.RGBA{"startup strip": stateColors["STARTUP"][0], "startup tint": stateColors["STARTUP"][1], "pacing": Orange}
	for name, col := range want {
		n := 0
		for y := 0; y < PanelHeight; y++ {
			for x := 0; x < PanelWidth; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == col.R && uint8(g>>8) == col.G && uint8(bl>>8) == col.B {
					n++
				}
			}
		}
		if n < 50 {
			t.Errorf("%d %s pixels in the rate PNG", n, name)
		}
	}
}

// A trace without the rate model (CUBIC) still gets a rate chart: the
// acked rate measured from the trace, and the missing fields named.
func TestRateWithoutModel(t *testing.T) {
	evs, err := ReadTrace(bytes.NewReader(simTrace(t, "fast-retransmit")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Analyze(evs, "")
	if err != nil {
		t.Fatal(err)
	}
	c, missing := Rate(f)
	if got := strings.Join(missing, ","); got != "drate,bw,pacing,cc_state" {
		t.Errorf("missing %q", got)
	}
	if len(c.Series) != 1 || c.Series[0].Name != "acked (measured from the trace)" || len(c.Bands) != 0 {
		t.Errorf("series %+v bands %d", c.Series, len(c.Bands))
	}
	var total float64
	pts := c.Series[0].Points
	for i := 1; i < len(pts); i++ {
		if pts[i].Y < 0 {
			t.Errorf("negative rate %v", pts[i])
		}
		total += pts[i].Y
	}
	if total <= 0 {
		t.Error("no acked rate")
	}
}
