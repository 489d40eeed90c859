package plot

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// Style is how a series is drawn.
type Style int

const (
	Line  Style = iota // polyline through the points
	Step               // horizontal then vertical steps (an ACK line)
	Bars               // vertical bars Segs, with end caps (tcptrace data segments)
	Marks              // an x at each point
	Dots               // a small square at each point

	bandKey Style = -1 // legend entry of a Band
)

// Series is one thing drawn on a chart.
type Series struct {
	Name   string
	Color  color.RGBA
	Style  Style
	Width  float64    // line width in pixels (0 = 1)
	Cap    float64    // Bars: half width of the end caps in pixels (0 = 3)
	Points []Point    // Line, Step, Marks, Dots
	Segs   [][2]Point // Bars: from, to
}

// Chart is one panel: axes, ticks, labels and series.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// Fixed ranges; when XMax <= XMin (or YMax <= YMin) the range is
	// computed from the series.
	XMin, XMax, YMin, YMax float64
	// Series whose names are in Unbounded do not widen the automatic Y
	// range (they are clipped instead), e.g. a receive window far above
	// the data.
	Unbounded map[string]bool
	// Bands tint time intervals over the plot's full height and label
	// them in a strip along its top (a congestion controller's states).
	Bands []Band
}

// Band is a time interval drawn behind the series: Tint over the plot's
// height, Color in the strip along the top with Label in it when it fits.
// The legend lists each label once, with its colour.
type Band struct {
	X0, X1      float64
	Label       string
	Color, Tint color.RGBA
}

// bandStrip is the height of the labelled strip along the top of a chart
// with bands.
const bandStrip = 16

// Colours used by the graphs.
var (
	Black  = color.RGBA{0x20, 0x20, 0x20, 0xff}
	Blue   = color.RGBA{0x1f, 0x4e, 0xb4, 0xff}
	Red    = color.RGBA{0xd6, 0x1f, 0x1f, 0xff}
	Green  = color.RGBA{0x1a, 0x9a, 0x3a, 0xff}
	Olive  = color.RGBA{0xb0, 0x8a, 0x00, 0xff}
	Purple = color.RGBA{0x8e, 0x3c, 0xc8, 0xff}
	Orange = color.RGBA{0xf0, 0x80, 0x10, 0xff}
	Grey   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	White  = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// Size of one panel in pixels.
const (
	PanelWidth  = 1000
	PanelHeight = 560
	marginL     = 90
	marginR     = 30
	marginT     = 44
	marginB     = 56
)

// canvas is what both renderers implement.
type canvas interface {
	rect(x, y, w, h float64, fill color.RGBA)
	line(x1, y1, x2, y2 float64, c color.RGBA, width float64)
	// text centred vertically at y; anchor -1 start, 0 middle, 1 end;
	// big for titles; vertical rotates 90 degrees counter-clockwise.
	text(x, y float64, s string, c color.RGBA, anchor int, big, vertical bool)
}

func (c *Chart) ranges() (x0, x1, y0, y1 float64) {
	x0, x1, y0, y1 = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		add := func(p Point) {
			x0, x1 = math.Min(x0, p.X), math.Max(x1, p.X)
			if !c.Unbounded[s.Name] {
				y0, y1 = math.Min(y0, p.Y), math.Max(y1, p.Y)
			}
		}
		for _, p := range s.Points {
			add(p)
		}
		for _, sg := range s.Segs {
			add(sg[0])
			add(sg[1])
		}
	}
	if math.IsInf(x0, 0) {
		x0, x1 = 0, 1
	}
	if math.IsInf(y0, 0) {
		y0, y1 = 0, 1
	}
	if c.XMax > c.XMin {
		x0, x1 = c.XMin, c.XMax
	}
	if c.YMax > c.YMin {
		y0, y1 = c.YMin, c.YMax
	} else {
		y0 = math.Min(y0, 0)
		y1 += (y1 - y0) * 0.04
	}
	if x1 <= x0 {
		x1 = x0 + 1
	}
	if y1 <= y0 {
		y1 = y0 + 1
	}
	return
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) (ticks []float64, step float64) {
	span := hi - lo
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, v)
	}
	return ticks, step
}

func tickLabel(v, step float64) string {
	if math.Abs(v) < step*1e-9 {
		return "0"
	}
	if step >= 1 && math.Abs(v) >= 1e6 && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	dec := 0
	if step < 1 {
		dec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// clip clips a segment to the rectangle (Liang-Barsky).
func clip(x1, y1, x2, y2, xmin, ymin, xmax, ymax float64) (float64, float64, float64, float64, bool) {
	t0, t1 := 0.0, 1.0
	dx, dy := x2-x1, y2-y1
	for _, pq := range [4][2]float64{{-dx, x1 - xmin}, {dx, xmax - x1}, {-dy, y1 - ymin}, {dy, ymax - y1}} {
		p, q := pq[0], pq[1]
		if p == 0 {
			if q < 0 {
				return 0, 0, 0, 0, false
			}
			continue
		}
		r := q / p
		if p < 0 {
			if r > t1 {
				return 0, 0, 0, 0, false
			}
			t0 = math.Max(t0, r)
		} else {
			if r < t0 {
				return 0, 0, 0, 0, false
			}
			t1 = math.Min(t1, r)
		}
	}
	return x1 + t0*dx, y1 + t0*dy, x1 + t1*dx, y1 + t1*dy, true
}

// draw lays the chart out in the panel whose top is at oy.
func (c *Chart) draw(cv canvas, oy float64) {
	x0, x1, y0, y1 := c.ranges()
	pl, pt := float64(marginL), oy+marginT
	pw, ph := float64(PanelWidth-marginL-marginR), float64(PanelHeight-marginT-marginB)
	px := func(x float64) float64 { return pl + (x-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return pt + ph - (y-y0)/(y1-y0)*ph }

	cv.rect(0, oy, PanelWidth, PanelHeight, White)
	bandX := func(b Band) (float64, float64, bool) {
		X0, X1 := math.Max(px(b.X0), pl), math.Min(px(b.X1), pl+pw)
		return X0, X1, X1 > X0
	}
	for _, b := range c.Bands {
		if X0, X1, ok := bandX(b); ok {
			cv.rect(X0, pt, math.Max(X1-X0, 1), ph, b.Tint)
		}
	}
	// grid and ticks
	xt, xs := niceTicks(x0, x1, 10)
	for _, v := range xt {
		X := px(v)
		cv.line(X, pt, X, pt+ph, Grey, 1)
		cv.line(X, pt+ph, X, pt+ph+5, Black, 1)
		cv.text(X, pt+ph+14, tickLabel(v, xs), Black, 0, false, false)
	}
	yt, ys := niceTicks(y0, y1, 8)
	for _, v := range yt {
		Y := py(v)
		cv.line(pl, Y, pl+pw, Y, Grey, 1)
		cv.line(pl-5, Y, pl, Y, Black, 1)
		cv.text(pl-8, Y, tickLabel(v, ys), Black, 1, false, false)
	}
	cv.line(pl, pt, pl, pt+ph, Black, 1)
	cv.line(pl, pt+ph, pl+pw, pt+ph, Black, 1)
	cv.line(pl, pt, pl+pw, pt, Black, 1)
	cv.line(pl+pw, pt, pl+pw, pt+ph, Black, 1)
	cv.text(PanelWidth/2, oy+20, c.Title, Black, 0, true, false)
	cv.text(pl+pw/2, pt+ph+38, c.XLabel, Black, 0, false, false)
	cv.text(22, pt+ph/2, c.YLabel, Black, 0, false, true)

	segPx := func(X1, Y1, X2, Y2 float64, col color.RGBA, w float64) {
		X1, Y1, X2, Y2, ok := clip(X1, Y1, X2, Y2, pl, pt, pl+pw, pt+ph)
		if ok {
			cv.line(X1, Y1, X2, Y2, col, w)
		}
	}
	inside := func(X, Y float64) bool { return X >= pl-0.5 && X <= pl+pw+0.5 && Y >= pt-0.5 && Y <= pt+ph+0.5 }
	for _, s := range c.Series {
		w := s.Width
		if w == 0 {
			w = 1
		}
		switch s.Style {
		case Line, Step:
			// the polyline in pixels (a step is horizontal then
			// vertical, and runs on to the right edge), decimated
			path := make([]Point, 0, 2*len(s.Points)+1)
			for i, p := range s.Points {
				if s.Style == Step && i > 0 {
					path = append(path, Point{px(p.X), py(s.Points[i-1].Y)})
				}
				path = append(path, Point{px(p.X), py(p.Y)})
			}
			if n := len(s.Points); s.Style == Step && n > 0 {
				path = append(path, Point{px(x1), py(s.Points[n-1].Y)})
			}
			path = decimatePath(path)
			for i := 1; i < len(path); i++ {
				segPx(path[i-1].X, path[i-1].Y, path[i].X, path[i].Y, s.Color, w)
			}
		case Bars:
			seen := markSet{}
			for _, sg := range s.Segs {
				X0, Y0, X1, Y1 := px(sg[0].X), py(sg[0].Y), px(sg[1].X), py(sg[1].Y)
				if !finite(X0) || !finite(Y0) || !finite(X1) || !finite(Y1) ||
					!seen.first(markKey{pixel(X0), pixel(Y0), pixel(Y1)}) {
					continue
				}
				X0, Y0, X1, Y1 = round10(X0), round10(Y0), round10(X1), round10(Y1)
				segPx(X0, Y0, X1, Y1, s.Color, w)
				cp, cw := s.Cap, 1.0
				if cp == 0 {
					cp = 3
				} else {
					cw = 2
				}
				for _, e := range [2]Point{{X0, Y0}, {X1, Y1}} {
					if inside(e.X, e.Y) {
						cv.line(e.X-cp, e.Y, e.X+cp, e.Y, s.Color, cw)
					}
				}
			}
		case Marks, Dots:
			seen := markSet{}
			for _, p := range s.Points {
				X, Y := px(p.X), py(p.Y)
				if !finite(X) || !finite(Y) || !inside(X, Y) || !seen.first(markKey{X: pixel(X), Y0: pixel(Y)}) {
					continue
				}
				X, Y = round10(X), round10(Y)
				if s.Style == Marks {
					cv.line(X-4, Y-4, X+4, Y+4, s.Color, w)
					cv.line(X-4, Y+4, X+4, Y-4, s.Color, w)
				} else {
					cv.rect(X-2, Y-2, 5, 5, s.Color)
				}
			}
		}
	}
	// the band strip along the top, over the series
	for _, b := range c.Bands {
		X0, X1, ok := bandX(b)
		if !ok {
			continue
		}
		cv.rect(X0, pt, math.Max(X1-X0, 1), bandStrip, b.Color)
		if float64(len(b.Label)*glyphAdvance+6) < X1-X0 {
			cv.text((X0+X1)/2, pt+bandStrip/2, b.Label, Black, 0, false, false)
		}
	}
	// legend, top left inside the plot area (below the band strip); each
	// band label once, as a filled box
	lx, ly := pl+12, pt+14
	if len(c.Bands) > 0 {
		ly += bandStrip + 4
	}
	var named []Series
	for _, s := range c.Series {
		if s.Name != "" && !strings.HasPrefix(s.Name, "_") {
			named = append(named, s)
		}
	}
	seen := map[string]bool{}
	for _, b := range c.Bands {
		if b.Label != "" && !seen[b.Label] {
			seen[b.Label] = true
			named = append(named, Series{Name: b.Label, Color: b.Color, Style: bandKey})
		}
	}
	if len(named) > 0 {
		lw := 0
		for _, s := range named {
			lw = max(lw, len(s.Name))
		}
		cv.rect(lx-6, ly-10, float64(lw*glyphAdvance*1)+48, float64(len(named))*16+4, color.RGBA{0xff, 0xff, 0xff, 0xe6})
		for i, s := range named {
			Y := ly + float64(i)*16
			switch s.Style {
			case Marks:
				cv.line(lx+6, Y-4, lx+14, Y+4, s.Color, 2)
				cv.line(lx+6, Y+4, lx+14, Y-4, s.Color, 2)
			case Dots:
				cv.rect(lx+8, Y-2, 5, 5, s.Color)
			case bandKey:
				cv.rect(lx, Y-5, 22, 11, s.Color)
			default:
				cv.line(lx, Y, lx+22, Y, s.Color, 3)
			}
			cv.text(lx+30, Y, s.Name, Black, -1, false, false)
		}
	}
}

// WriteSVG writes the charts, stacked vertically, as one SVG document.
func WriteSVG(w io.Writer, charts ...*Chart) error {
	bw := bufio.NewWriter(w)
	h := PanelHeight * len(charts)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
`, PanelWidth, h, PanelWidth, h)
	cv := &svgCanvas{w: bw}
	for i, c := range charts {
		fmt.Fprintf(bw, "<g class=\"panel\" id=\"panel%d\">\n<title>%s</title>\n", i, xmlEscape(c.Title))
		c.draw(cv, float64(i*PanelHeight))
		bw.WriteString("</g>\n")
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

type svgCanvas struct{ w *bufio.Writer }

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func (s *svgCanvas) rect(x, y, w, h float64, fill color.RGBA) {
	op := ""
	if fill.A != 0xff {
		op = fmt.Sprintf(` fill-opacity="%.2f"`, float64(fill.A)/255)
	}
	fmt.Fprintf(s.w, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"%s/>`+"\n", f1(x), f1(y), f1(w), f1(h), hex(fill), op)
}

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64) {
	fmt.Fprintf(s.w, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%g"/>`+"\n", f1(x1), f1(y1), f1(x2), f1(y2), hex(c), width)
}

func (s *svgCanvas) text(x, y float64, str string, c color.RGBA, anchor int, big, vertical bool) {
	a := [3]string{"start", "middle", "end"}[anchor+1]
	size := 12
	weight := ""
	if big {
		size, weight = 16, ` font-weight="bold"`
	}
	rot := ""
	if vertical {
		rot = fmt.Sprintf(` transform="rotate(-90 %s %s)"`, f1(x), f1(y))
	}
	fmt.Fprintf(s.w, `<text x="%s" y="%s" font-size="%d"%s fill="%s" text-anchor="%s" dominant-baseline="middle"%s>%s</text>`+"\n",
		f1(x), f1(y), size, weight, hex(c), a, rot, xmlEscape(str))
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Image renders the charts, stacked vertically, into an RGBA image of
// PanelWidth x PanelHeight*len(charts) pixels.
func Image(charts ...*Chart) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, PanelWidth, PanelHeight*len(charts)))
	cv := &rasterCanvas{img: img}
	for i, c := range charts {
		c.draw(cv, float64(i*PanelHeight))
	}
	return img
}

// WritePNG writes the charts as one PNG image.
func WritePNG(w io.Writer, charts ...*Chart) error {
	return png.Encode(w, Image(charts...))
}

type rasterCanvas struct{ img *image.RGBA }

// blend paints one pixel with alpha a (0..1) of colour c.
func (r *rasterCanvas) blend(x, y int, c color.RGBA, a float64) {
	if !(image.Point{x, y}.In(r.img.Rect)) || a <= 0 {
		return
	}
	a *= float64(c.A) / 255
	if a > 1 {
		a = 1
	}
	i := r.img.PixOffset(x, y)
	p := r.img.Pix[i : i+4 : i+4]
	p[0] = uint8(float64(p[0])*(1-a) + float64(c.R)*a + 0.5)
	p[1] = uint8(float64(p[1])*(1-a) + float64(c.G)*a + 0.5)
	p[2] = uint8(float64(p[2])*(1-a) + float64(c.B)*a + 0.5)
	p[3] = 0xff
}

func (r *rasterCanvas) rect(x, y, w, h float64, fill color.RGBA) {
	for yy := int(math.Round(y)); yy < int(math.Round(y+h)); yy++ {
		for xx := int(math.Round(x)); xx < int(math.Round(x+w)); xx++ {
			r.blend(xx, yy, fill, 1)
		}
	}
}

// line draws an anti-aliased line of the given width: each pixel near the
// segment is covered by how close its centre is to the segment.
func (r *rasterCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64) {
	// Pixel centres are at +0.5; crisp 1-pixel axis-aligned lines look
	// best when the coordinates sit on pixel centres.
	half := width / 2
	minX := int(math.Floor(math.Min(x1, x2) - half - 1))
	maxX := int(math.Ceil(math.Max(x1, x2) + half + 1))
	minY := int(math.Floor(math.Min(y1, y2) - half - 1))
	maxY := int(math.Ceil(math.Max(y1, y2) + half + 1))
	b := r.img.Rect
	minX, minY = max(minX, b.Min.X), max(minY, b.Min.Y)
	maxX, maxY = min(maxX, b.Max.X-1), min(maxY, b.Max.Y-1)
	dx, dy := x2-x1, y2-y1
	l2 := dx*dx + dy*dy
	for py := minY; py <= maxY; py++ {
		for px := minX; px <= maxX; px++ {
			cx, cy := float64(px)+0.5, float64(py)+0.5
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((cx-x1)*dx+(cy-y1)*dy)/l2))
			}
			ex, ey := x1+t*dx-cx, y1+t*dy-cy
			d := math.Sqrt(ex*ex + ey*ey)
			cov := half + 0.5 - d
			if cov > 0 {
				r.blend(px, py, c, math.Min(cov, 1))
			}
		}
	}
}

func (r *rasterCanvas) text(x, y float64, s string, c color.RGBA, anchor int, big, vertical bool) {
	scale := 1
	if big {
		scale = 2
	}
	rs := []rune(s)
	w := float64(len(rs)*glyphAdvance*scale - scale)
	h := float64(glyphH * scale)
	var ox float64
	switch anchor {
	case 0:
		ox = -w / 2
	case 1:
		ox = -w
	}
	for i, ch := range rs {
		g := glyph(ch)
		for gy := 0; gy < glyphH; gy++ {
			for gx := 0; gx < glyphW; gx++ {
				if g[gy][gx] != '#' {
					continue
				}
				for sy := 0; sy < scale; sy++ {
					for sx := 0; sx < scale; sx++ {
						// position along the text and across it
						u := ox + float64(i*glyphAdvance*scale+gx*scale+sx)
						v := -h/2 + float64(gy*scale+sy)
						if vertical {
							r.blend(int(math.Round(x+v)), int(math.Round(y-u)), c, 1)
						} else {
							r.blend(int(math.Round(x+u)), int(math.Round(y+v)), c, 1)
						}
					}
				}
			}
		}
	}
}
