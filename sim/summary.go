package sim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Timeline filters for WriteText.
var (
	// Everything accepts every event.
	Everything func(*Event) bool = nil
	// Highlights accepts application actions, state transitions, errors,
	// retransmissions, drops and duplicate ACKs: the story of a run without
	// every in-order segment.
	Highlights = func(e *Event) bool {
		switch e.Kind {
		case KindApp, KindState, KindError, KindDrop, KindHold, KindNote:
			return true
		case KindTimer:
			return e.Note != "timer" && e.Note != "timer: delayed ACK"
		case KindSend:
			return e.Rtx || e.Dup || strings.Contains(e.Flags, "S") || strings.Contains(e.Flags, "F") || strings.Contains(e.Flags, "R")
		}
		return false
	}
)

// WriteSummary writes one line per connection: final state, error,
// bytes, segments and retransmissions, and the link statistics.
func (s *Sim) WriteSummary(w io.Writer) {
	var b strings.Builder
	last := time.Duration(0)
	if n := len(s.trace.Events); n > 0 {
		last = s.trace.Events[n-1].T
	}
	fmt.Fprintf(&b, "last event at %s s virtual time, seed %d\n", fmtSeconds(last), s.seed)
	for _, h := range s.hosts {
		for _, c := range h.all {
			st := c.State().String()
			end := ""
			if c.gone {
				end = fmt.Sprintf(" (closed at %s s)", fmtSeconds(c.Closed))
			}
			fmt.Fprintf(&b, "%s %s: %s%s, sent %d B, read %d B, %d segments out, %d retransmitted, %d dup acks",
				h.Name, c.label(), st, end, c.BytesWritten, c.BytesRead, c.SegsOut, c.Retransmits, c.DupAcks)
			if c.Err != nil {
				fmt.Fprintf(&b, ", error: %s", errString(c.Err))
			}
			b.WriteByte('\n')
		}
	}
	for _, l := range s.links {
		for _, d := range []*direction{l.AB, l.BA} {
			st := d.Stats
			fmt.Fprintf(&b, "link %s->%s: %d packets, %d delivered, %d dropped by rules, %d lost, %d queue drops, %d duplicated\n",
				d.from.Name, d.to.Name, st.Sent, st.Delivered, st.RuleDropped, st.Lost, st.QueueDropped, st.Duplicated)
		}
	}
	io.WriteString(w, b.String())
}

// Goodput returns bytes per second for n bytes over d (0 if d is 0).
func Goodput(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
