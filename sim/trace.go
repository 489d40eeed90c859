package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ustack/ustack/wire"
)

// Event kinds recorded in a Trace.
const (
	KindApp   = "app"   // an application action (connect, send, close, ...)
	KindState = "state" // a TCP state transition
	KindSend  = "send"  // a segment leaves a host
	KindRecv  = "recv"  // a segment reaches a host
	KindDrop  = "drop"  // the network dropped a segment (rule, loss, queue)
	KindHold  = "hold"  // a rule held a segment back (reordering it)
	KindTimer = "timer" // a connection's timer fired
	KindError = "error" // a connection reported an error
	KindNote  = "note"  // anything else worth a line (RST for no listener, ...)
)

// Event is one line of a trace.
type Event struct {
	T     time.Duration `json:"-"`
	TS    json.Number   `json:"t"` // seconds since start, 6 decimals
	Host  string        `json:"host"`
	Conn  string        `json:"conn,omitempty"` // local>remote address:port
	Kind  string        `json:"ev"`
	From  string        `json:"from,omitempty"` // state transitions
	To    string        `json:"to,omitempty"`
	Flags string        `json:"flags,omitempty"`
	Seq   *uint32       `json:"seq,omitempty"`
	Ack   *uint32       `json:"ack,omitempty"`
	Len   *int          `json:"len,omitempty"`
	Win   *uint16       `json:"win,omitempty"`
	Opts  string        `json:"opts,omitempty"`
	Rtx   bool          `json:"rtx,omitempty"`    // a retransmission (sequence space sent before)
	Dup   bool          `json:"dupack,omitempty"` // a duplicate ACK
	Err   string        `json:"err,omitempty"`
	Note  string        `json:"note,omitempty"`

	// the host's congestion state (cwnd and ssthresh in packets, srtt in
	// seconds): on send events as the segment leaves (from the engine's
	// tracer), on recv and timer events after the engine handled them;
	// ssthresh is left out until set, srtt until measured
	Cwnd     *int     `json:"cwnd,omitempty"`
	Ssthresh *int     `json:"ssthresh,omitempty"`
	SRTT     *float64 `json:"srtt,omitempty"`

	// the sender's rate model when its controller has a state machine
	// (BBR), on the same events as cwnd: pacing rate, the controller's
	// bandwidth estimate, its short-term bound and the engine's delivery rate (bytes/s), the
	// controller's min RTT (seconds) and its state ("STARTUP", "DRAIN",
	// "PROBE_BW_DOWN", ..., "PROBE_RTT"); left out for CUBIC and Reno
	Pacing   *int64   `json:"pacing,omitempty"`
	BW       *int64   `json:"bw,omitempty"`
	BwLo     *int64   `json:"bw_lo,omitempty"` // BBR.bw_shortterm once set
	Delivery *int64   `json:"drate,omitempty"`
	MinRTT   *float64 `json:"minrtt,omitempty"`
	CCState  string   `json:"cc_state,omitempty"`

	// relative sequence numbers for the text timeline
	relSeq, relAck uint32
	relOpts        string // options with SACK blocks relative, for the timeline
	port           uint16
	hasAck         bool
}

// Trace is the ordered list of events of a simulation.
type Trace struct {
	Events []Event
}

func (t *Trace) add(e Event) {
	e.TS = json.Number(fmtSeconds(e.T))
	t.Events = append(t.Events, e)
}

func fmtSeconds(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// WriteJSON writes the trace as JSON lines, one event per line.
func (t *Trace) WriteJSON(w io.Writer) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range t.Events {
		if err := enc.Encode(&t.Events[i]); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteText writes the trace as a human-readable timeline. When filter is
// non-nil only events it accepts are written.
func (t *Trace) WriteText(w io.Writer, filter func(*Event) bool) error {
	var b strings.Builder
	width := t.whoWidth()
	for i := range t.Events {
		e := &t.Events[i]
		if filter != nil && !filter(e) {
			continue
		}
		b.WriteString(e.format(width))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHighlights writes the events Highlights accepts, collapsing each
// run of duplicate ACKs from one connection into its first line and a count.
func (t *Trace) WriteHighlights(w io.Writer) error {
	var b strings.Builder
	width := t.whoWidth()
	run, runConn := 0, ""
	flush := func() {
		if run > 1 {
			fmt.Fprintf(&b, "%12s  %-*s %-6s ... %d more duplicate ACKs\n", "", width, "", "", run-1)
		}
		run = 0
	}
	for i := range t.Events {
		e := &t.Events[i]
		if !Highlights(e) {
			continue
		}
		if e.Kind == KindSend && e.Dup && !e.Rtx {
			if run > 0 && runConn == e.Host+e.Conn {
				run++
				continue
			}
			flush()
			run, runConn = 1, e.Host+e.Conn
		} else {
			flush()
		}
		b.WriteString(e.format(width))
		b.WriteByte('\n')
	}
	flush()
	_, err := io.WriteString(w, b.String())
	return err
}

// Count returns the number of events accepted by match.
func (t *Trace) Count(match func(*Event) bool) int {
	n := 0
	for i := range t.Events {
		if match(&t.Events[i]) {
			n++
		}
	}
	return n
}

// Find returns the first event accepted by match, or nil.
func (t *Trace) Find(match func(*Event) bool) *Event {
	for i := range t.Events {
		if match(&t.Events[i]) {
			return &t.Events[i]
		}
	}
	return nil
}

// String formats the event as one timeline line. Sequence numbers are
// relative to each side's initial sequence number, like tcpdump.
func (e *Event) String() string { return e.format(8) }

func (e *Event) who() string {
	if e.port != 0 {
		return fmt.Sprintf("%s:%d", e.Host, e.port)
	}
	return e.Host
}

// whoWidth is the width of the host column that fits every event.
func (t *Trace) whoWidth() int {
	w := 8
	for i := range t.Events {
		w = max(w, len(t.Events[i].who()))
	}
	return w
}

func (e *Event) format(width int) string {
	head := fmt.Sprintf("%12s  %-*s %-6s ", e.TS, width, e.who(), e.Kind)
	switch e.Kind {
	case KindState:
		return head + e.From + " -> " + e.To
	case KindSend, KindRecv, KindDrop, KindHold:
		s := head + e.segString()
		var tags []string
		if e.Rtx {
			tags = append(tags, "RETRANSMISSION")
		}
		if e.Dup {
			tags = append(tags, "dup ack")
		}
		if e.Note != "" {
			tags = append(tags, e.Note)
		}
		if len(tags) > 0 {
			s += "  [" + strings.Join(tags, ", ") + "]"
		}
		return s
	case KindError:
		return head + e.Err
	default:
		s := head + e.Note
		if e.Err != "" {
			s += ": " + e.Err
		}
		return strings.TrimRight(s, " ")
	}
}

func (e *Event) segString() string {
	var b strings.Builder
	arrow := ">"
	if e.Kind == KindRecv {
		arrow = "<"
	}
	fmt.Fprintf(&b, "%s %-3s seq %d", arrow, e.Flags, e.relSeq)
	if e.hasAck {
		fmt.Fprintf(&b, " ack %d", e.relAck)
	}
	if e.Len != nil {
		fmt.Fprintf(&b, " len %d", *e.Len)
	}
	if e.Win != nil {
		fmt.Fprintf(&b, " win %d", *e.Win)
	}
	if o := e.relOpts; o != "" {
		fmt.Fprintf(&b, " <%s>", o)
	} else if e.Opts != "" {
		fmt.Fprintf(&b, " <%s>", e.Opts)
	}
	return b.String()
}

// FlagString renders TCP flags tcpdump style: S, F, R, P, . (ACK), U, E, W.
func FlagString(f uint8) string {
	var b []byte
	if f&wire.TCPFlagSYN != 0 {
		b = append(b, 'S')
	}
	if f&wire.TCPFlagFIN != 0 {
		b = append(b, 'F')
	}
	if f&wire.TCPFlagRST != 0 {
		b = append(b, 'R')
	}
	if f&wire.TCPFlagPSH != 0 {
		b = append(b, 'P')
	}
	if f&wire.TCPFlagURG != 0 {
		b = append(b, 'U')
	}
	if f&wire.TCPFlagECE != 0 {
		b = append(b, 'E')
	}
	if f&wire.TCPFlagCWR != 0 {
		b = append(b, 'W')
	}
	if f&wire.TCPFlagACK != 0 {
		b = append(b, '.')
	}
	return string(b)
}

// OptString renders TCP options compactly.
func OptString(o *wire.TCPOptions) string { return optString(o, 0) }

// optString renders options with SACK blocks relative to base.
func optString(o *wire.TCPOptions, base uint32) string {
	var p []string
	if o.HasMSS {
		p = append(p, fmt.Sprintf("mss %d", o.MSS))
	}
	if o.SACKPermitted {
		p = append(p, "sackOK")
	}
	if o.HasTS {
		p = append(p, fmt.Sprintf("TS val %d ecr %d", o.TSVal, o.TSEcr))
	}
	if o.HasWScale {
		p = append(p, fmt.Sprintf("wscale %d", o.WScale))
	}
	if o.NumSACK > 0 {
		var s []string
		for i := 0; i < o.NumSACK && i < len(o.SACK); i++ {
			s = append(s, fmt.Sprintf("%d:%d", o.SACK[i].Left-base, o.SACK[i].Right-base))
		}
		p = append(p, "sack "+strings.Join(s, " "))
	}
	if o.HasFastOpen {
		name := "FO"
		if o.FastOpenExp {
			name = "FOEXP"
		}
		if o.CookieLen > 0 {
			name += fmt.Sprintf(" %x", o.Cookie[:o.CookieLen])
		}
		p = append(p, name)
	}
	return strings.Join(p, ",")
}
