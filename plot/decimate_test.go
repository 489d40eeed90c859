package plot

import (
	"bytes"
	"math"
	"regexp"
	"testing"

	"github.com/ustack/ustack/sim"
)

func TestDecimatePath(t *testing.T) {
	// column 10: first, lowest, highest and last of six points kept in
	// order; column 11: one point; a NaN left out; column 12: a vertical
	// run whose middle points are merged.
	in := []Point{
		{10.1, 5}, {10.2, 7}, {10.3, 2}, {10.4, 9}, {10.5, 4}, {10.6, 6},
		{11.04, 3.06},
		{math.NaN(), 1},
		{12, 1}, {12, 2}, {12, 3}, {12.5, 3},
	}
	want := []Point{{10.1, 5}, {10.3, 2}, {10.4, 9}, {10.6, 6}, {11, 3.1}, {12, 1}, {12, 3}, {12.5, 3}}
	got := decimatePath(in)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestLongTraceSVGSize renders a chart with far more points than pixels
// and checks the SVG stays small: the series are decimated to the pixel
// grid.
func TestLongTraceSVGSize(t *testing.T) {
	const n = 400000
	line := make([]Point, n)
	step := make([]Point, n)
	dots := make([]Point, n/4)
	bars := make([][2]Point, n/2)
	for i := range line {
		x := float64(i) / n * 10
		line[i] = Point{x, 50 + 40*math.Sin(x*7) + float64(i%13)}
		step[i] = Point{x, float64(i%97) + x*10}
	}
	for i := range dots {
		x := float64(4*i) / n * 10
		dots[i] = Point{x, 20 + float64(i%5)/10}
	}
	for i := range bars {
		x := float64(2*i) / n * 10
		bars[i] = [2]Point{{x, x * 10}, {x, x*10 + 0.1}}
	}
	c := &Chart{Title: "long", Series: []Series{
		{Name: "line", Color: Blue, Style: Line, Points: line},
		{Name: "step", Color: Orange, Style: Step, Points: step},
		{Name: "dots", Color: Red, Style: Dots, Points: dots},
		{Name: "marks", Color: Red, Style: Marks, Points: dots},
		{Name: "bars", Color: Green, Style: Bars, Segs: bars},
	}}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, c); err != nil {
		t.Fatal(err)
	}
	// Without decimation this is about 180 MB.
	if svg.Len() > 3<<20 {
		t.Errorf("svg of %d points is %d bytes, want under 3 MB", 2*n+n/2+n/2, svg.Len())
	}
	t.Logf("svg %d bytes", svg.Len())
	// every coordinate at 0.1 pixel
	if m := regexp.MustCompile(` (x|y|width|height)[12]?="-?[0-9]+\.[0-9]{2,}"`).Find(svg.Bytes()); m != nil {
		t.Errorf("coordinate %s finer than 0.1 px", m)
	}
}

// TestDecimateKeepsRetransmissions draws the time-sequence graph of a
// short lossy transfer and checks that every retransmission and every
// drop in a pixel of its own is drawn.
func TestDecimateKeepsRetransmissions(t *testing.T) {
	o := sim.DefaultDemoOptions()
	o.Size = 500000
	f := demoFlow(t, o)
	c := TimeSequence(f)
	x0, x1, y0, y1 := c.ranges()
	pw, ph := float64(PanelWidth-marginL-marginR), float64(PanelHeight-marginT-marginB)
	px := func(x float64) float64 { return marginL + (x-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return marginT + ph - (y-y0)/(y1-y0)*ph }
	rtx, drops := map[markKey]bool{}, map[markKey]bool{}
	for _, s := range f.Data {
		if s.Rtx {
			rtx[markKey{pixel(px(s.T)), pixel(py(s.Start)), pixel(py(s.End))}] = true
		}
	}
	for _, s := range f.Drops {
		drops[markKey{X: pixel(px(s.T)), Y0: pixel(py((s.Start + s.End) / 2))}] = true
	}
	if f.Retrans < 3 || len(rtx) < 3 || len(drops) < 3 {
		t.Fatalf("%d retransmissions in %d pixels, %d drops in %d pixels: want a transfer with several losses",
			f.Retrans, len(rtx), len(f.Drops), len(drops))
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, c); err != nil {
		t.Fatal(err)
	}
	// a retransmission is a red bar 3 wide (its caps are 2 wide); a drop
	// is a red x: two lines 2 wide, 8 px long across
	red := regexp.MustCompile(`<line x1="([-0-9.]+)" y1="([-0-9.]+)" x2="([-0-9.]+)" y2="([-0-9.]+)" stroke="#d61f1f" stroke-width="([0-9.]+)"/>`)
	bars, xs := 0, 0
	for _, m := range red.FindAllStringSubmatch(svg.String(), -1) {
		switch m[5] {
		case "3":
			bars++
		case "2":
			if m[1] != m[3] && m[2] != m[4] {
				xs++
			}
		}
	}
	// the legend has one more retransmission line and one more x
	bars, xs = bars-1, xs-2
	if bars != len(rtx) {
		t.Errorf("%d retransmission bars drawn, want %d (%d retransmissions)", bars, len(rtx), f.Retrans)
	}
	if xs != 2*len(drops) {
		t.Errorf("%d drop x lines drawn, want %d (%d drops)", xs, 2*len(drops), len(f.Drops))
	}
}
