package plot

import "math"

// Long traces have far more points than a panel has pixels: a 100 MB
// transfer has about a hundred thousand points per series over a plot
// about 900 pixels wide. Drawing all of them gives SVG files of tens of
// megabytes that look the same as a few thousand well chosen points, so
// the series are decimated at pixel resolution before drawing:
//
//   - a line (Line, Step) keeps, in each run of consecutive points in one
//     pixel column, the first, the lowest, the highest and the last
//     point, in their order, so the drawn line covers the same pixels;
//   - point marks (Bars, Marks, Dots) keep one mark per pixel position
//     and series, so every mark that lands in a pixel of its own (a
//     retransmission, a drop) is still drawn.
//
// Coordinates are then rounded to 0.1 pixel, repeated points dropped and
// points in the middle of a horizontal or vertical run merged.

// finite reports whether a pixel coordinate can be drawn.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// pixel is the pixel column or row a coordinate falls in, bounded so
// that far-off points (clipped later) still make a valid key.
func pixel(v float64) int {
	return int(math.Floor(math.Max(-1e9, math.Min(1e9, v))))
}

// round10 rounds to 0.1 pixel, the resolution of the SVG output.
func round10(v float64) float64 { return math.Round(v*10) / 10 }

// decimatePath decimates a polyline given in pixel coordinates: in every
// run of consecutive points in one pixel column it keeps the first, the
// lowest, the highest and the last point. Points that are not finite are
// left out.
func decimatePath(pts []Point) []Point {
	out := make([]Point, 0, min(len(pts), 4*PanelWidth))
	for i := 0; i < len(pts); {
		if !finite(pts[i].X) || !finite(pts[i].Y) {
			i++
			continue
		}
		col := pixel(pts[i].X)
		first, lo, hi, last := i, i, i, i
		j := i + 1
		for ; j < len(pts); j++ {
			p := pts[j]
			if !finite(p.X) || !finite(p.Y) {
				continue
			}
			if pixel(p.X) != col {
				break
			}
			if p.Y < pts[lo].Y {
				lo = j
			}
			if p.Y > pts[hi].Y {
				hi = j
			}
			last = j
		}
		keep := [4]int{first, lo, hi, last}
		// in trace order: sort the four indices
		for a := 1; a < 4; a++ {
			for b := a; b > 0 && keep[b] < keep[b-1]; b-- {
				keep[b], keep[b-1] = keep[b-1], keep[b]
			}
		}
		for a, k := range keep {
			if a > 0 && k == keep[a-1] {
				continue
			}
			out = appendSimplified(out, Point{round10(pts[k].X), round10(pts[k].Y)})
		}
		i = j
	}
	return out
}

// appendSimplified appends p to a polyline, dropping it when it repeats
// the last point and dropping the last point when it lies between its
// neighbours on a horizontal or vertical run.
func appendSimplified(out []Point, p Point) []Point {
	n := len(out)
	if n > 0 && out[n-1] == p {
		return out
	}
	if n >= 2 {
		a, b := out[n-2], out[n-1]
		between := func(u, v, w float64) bool { return (u <= v && v <= w) || (u >= v && v >= w) }
		if (a.X == b.X && b.X == p.X && between(a.Y, b.Y, p.Y)) ||
			(a.Y == b.Y && b.Y == p.Y && between(a.X, b.X, p.X)) {
			out[n-1] = p
			return out
		}
	}
	return append(out, p)
}

// markKey identifies a mark's pixel position: a bar by its two ends, a
// point mark by its one (Y1 unused).
type markKey struct{ X, Y0, Y1 int }

// markSet remembers which pixel positions of one series have a mark.
type markSet map[markKey]struct{}

// first reports whether k is new, and remembers it.
func (m markSet) first(k markKey) bool {
	if _, ok := m[k]; ok {
		return false
	}
	m[k] = struct{}{}
	return true
}
