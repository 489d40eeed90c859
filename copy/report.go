package tcpcopy

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strings"
	"time"
)

// histogram is a log-linear latency histogram (about 3% resolution) of
// fixed size, so the report does not grow with the number of sessions.
type histogram struct {
	counts [64 + 58*32]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
}

func histIndex(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	return 64 + (e-1)*32 + int(v>>e) - 32
}

func histValue(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := (i-64)/32 + 1
	mant := uint64((i-64)%32 + 32)
	return mant<<e + (uint64(1)<<e)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.counts[histIndex(uint64(d))]++
}

// quantile returns the q-quantile (0..1), clamped to the observed range.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(histValue(i))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Latency summarises time-to-first-byte samples.
type Latency struct {
	N   uint64        `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (h *histogram) summary() Latency {
	return Latency{N: h.n, P50: h.quantile(0.50), P90: h.quantile(0.90), P99: h.quantile(0.99), Max: h.max}
}

func (l Latency) String() string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v  (%d samples)", round(l.P50), round(l.P90), round(l.P99), round(l.Max), l.N)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Report is the summary of a replay run.
type Report struct {
	Sources  []string     `json:"sources,omitempty"`
	Capture  CaptureStats `json:"capture"`
	Sessions int          `json:"sessions"`    // captured sessions submitted for replay
	Replayed int          `json:"connections"` // connections replayed (sessions x copies, minus skipped)

	Skipped map[string]int `json:"skipped"`
	Status  map[Status]int `json:"status"`
	Errors  map[string]int `json:"errors"` // by kind: refused, reset, timeout, other

	SentBytes             int64 `json:"sent_bytes"`
	ReceivedBytes         int64 `json:"received_bytes"`
	CapturedResponseBytes int64 `json:"captured_response_bytes"`
	HTTPStatusMismatches  int   `json:"http_status_mismatches"`

	TTFBCaptured Latency `json:"ttfb_captured"`
	TTFBReplayed Latency `json:"ttfb_replayed"`

	Elapsed        time.Duration `json:"elapsed_ns"`
	SessionsPerSec float64       `json:"connections_per_sec"`
	MBPerSec       float64       `json:"mb_per_sec"` // sent+received, 10^6 bytes

	// Problems lists the connections that were not identical (and skipped
	// sessions), in session order, at most Options.MaxProblems.
	Problems []*Result `json:"problems"`
	Dropped  int       `json:"problems_not_listed"`

	hCaptured, hReplayed histogram
}

func newReport() *Report {
	return &Report{Skipped: map[string]int{}, Status: map[Status]int{}, Errors: map[string]int{}}
}

func (r *Report) add(res *Result, maxProblems int) {
	r.Replayed++
	r.Status[res.Status]++
	if res.ErrorKind != "" {
		r.Errors[res.ErrorKind]++
	}
	r.SentBytes += res.SentBytes
	r.ReceivedBytes += res.ReplayedBytes
	r.CapturedResponseBytes += res.CapturedBytes
	if len(res.HTTPStatus) > 0 {
		r.HTTPStatusMismatches++
	}
	for _, d := range res.capturedTTFB {
		r.hCaptured.add(d)
	}
	for _, d := range res.replayedTTFB {
		r.hReplayed.add(d)
	}
	if res.Status != StatusIdentical || res.ErrorKind != "" || len(res.HTTPStatus) > 0 {
		if len(r.Problems) < maxProblems {
			r.Problems = append(r.Problems, res)
		} else {
			r.Dropped++
		}
	}
}

func (r *Report) finish() {
	r.TTFBCaptured = r.hCaptured.summary()
	r.TTFBReplayed = r.hReplayed.summary()
	if s := r.Elapsed.Seconds(); s > 0 {
		r.SessionsPerSec = float64(r.Replayed) / s
		r.MBPerSec = float64(r.SentBytes+r.ReceivedBytes) / 1e6 / s
	}
	sort.SliceStable(r.Problems, func(i, j int) bool {
		if r.Problems[i].Session != r.Problems[j].Session {
			return r.Problems[i].Session < r.Problems[j].Session
		}
		return r.Problems[i].Copy < r.Problems[j].Copy
	})
}

// Identical reports whether every replayed connection matched and nothing
// was skipped.
func (r *Report) Identical() bool {
	return r.Replayed > 0 && r.Status[StatusIdentical] == r.Replayed && len(r.Errors) == 0 && len(r.Skipped) == 0
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a human-readable summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(r.Sources) > 0 {
		fmt.Fprintf(&b, "capture: %s\n", strings.Join(r.Sources, ", "))
	}
	c := r.Capture
	fmt.Fprintf(&b, "  %d packets, %d sessions (%d filtered out), %d retransmitted and %d out-of-order segments, %d gaps (%d bytes)\n",
		c.Packets, c.Sessions, c.Filtered, c.Retransmits, c.OutOfOrder, c.Gaps, c.GapBytes)
	if c.Midstream > 0 {
		fmt.Fprintf(&b, "  %d sessions started before the capture (no handshake: client guessed by port, beginning may be missing)\n", c.Midstream)
	}
	if c.CutShort > 0 {
		fmt.Fprintf(&b, "  %d packets were cut short by the capture's snap length: their data is missing (capture with tcpdump -s 0)\n", c.CutShort)
	}
	if c.Undecodable+c.Fragments > 0 {
		fmt.Fprintf(&b, "  %d undecodable packets (first: packet %d), %d IP fragments skipped\n", c.Undecodable, c.FirstUndecodable, c.Fragments)
	}
	fmt.Fprintf(&b, "replay: %d sessions, %d connections in %v (%.1f conn/s, %.2f MB/s)\n",
		r.Sessions, r.Replayed, round(r.Elapsed), r.SessionsPerSec, r.MBPerSec)
	for _, k := range sortedKeys(r.Skipped) {
		fmt.Fprintf(&b, "  skipped %d: %s\n", r.Skipped[k], k)
	}
	fmt.Fprintf(&b, "  identical %d, differs %d, shorter %d, longer %d, capture-gap %d, connect-failed %d\n",
		r.Status[StatusIdentical], r.Status[StatusDiffers], r.Status[StatusShorter], r.Status[StatusLonger], r.Status[StatusCaptureGap], r.Status[StatusNoConnect])
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range sortedKeys(r.Errors) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(&b, "  errors: %s\n", strings.Join(parts, ", "))
	}
	if r.HTTPStatusMismatches > 0 {
		fmt.Fprintf(&b, "  HTTP status line mismatches in %d connections\n", r.HTTPStatusMismatches)
	}
	fmt.Fprintf(&b, "  bytes: sent %d, received %d, captured responses %d\n", r.SentBytes, r.ReceivedBytes, r.CapturedResponseBytes)
	fmt.Fprintf(&b, "  time to first byte, captured: %v\n", r.TTFBCaptured)
	fmt.Fprintf(&b, "  time to first byte, replayed: %v\n", r.TTFBReplayed)
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "not identical:\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  %s\n", p.describe())
		}
		if r.Dropped > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", r.Dropped)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *Result) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "session %d", p.Session)
	if p.Copy > 0 {
		fmt.Fprintf(&b, " copy %d", p.Copy)
	}
	fmt.Fprintf(&b, " %s -> %s", p.Client, p.Server)
	if p.Target != "" {
		fmt.Fprintf(&b, " (replayed to %s)", p.Target)
	}
	switch p.Status {
	case StatusDiffers:
		fmt.Fprintf(&b, ": response differs at offset %d", p.DiffOffset)
	case StatusShorter:
		fmt.Fprintf(&b, ": response shorter, %d of %d bytes", p.ReplayedBytes, p.CapturedBytes)
	case StatusLonger:
		fmt.Fprintf(&b, ": response longer, %d instead of %d bytes", p.ReplayedBytes, p.CapturedBytes)
	case StatusCaptureGap:
		fmt.Fprintf(&b, ": captured response has a gap; equal up to it")
	case StatusIdentical:
		fmt.Fprintf(&b, ": response identical")
	default:
		fmt.Fprintf(&b, ": %s", p.Status)
	}
	if p.Error != "" && p.ErrorKind != "" {
		fmt.Fprintf(&b, " [%s: %s]", p.ErrorKind, p.Error)
	} else if p.Error != "" {
		fmt.Fprintf(&b, " (%s)", p.Error)
	}
	for _, h := range p.HTTPStatus {
		fmt.Fprintf(&b, "; HTTP %s", h)
	}
	for _, g := range p.Gaps {
		fmt.Fprintf(&b, "; gap of %d bytes in %s stream at offset %d (packet %d)", g.Len, g.Dir, g.Offset, g.Packet)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc
}
