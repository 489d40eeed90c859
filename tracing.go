package ustack

import (
	"github.com/ustack/ustack/tcp"
)

// TraceFunc receives the trace events of every TCP connection of a Stack
// (see tcp.Event; trace.NewJSON(w).Event writes them as JSON lines).
type TraceFunc func(t tcp.Tuple, e *tcp.Event)

// SetTracer makes every TCP connection created after the call report its
// engine events to fn (nil: no tracing, the default, which costs the
// engine one nil check per event site). fn runs on the stack's goroutines
// with the connection's lock held, possibly for several connections at
// once: it must be safe for concurrent use, quick, and must not call back
// into the Stack or its connections. The *tcp.Event is valid only during
// the call.
func (s *Stack) SetTracer(fn TraceFunc) {
	if fn == nil {
		s.tcp.tracer.Store(nil)
		return
	}
	s.tcp.tracer.Store(&fn)
}

// traceConn installs the stack's tracer, if any, on a new connection.
func (t *tcpState) traceConn(tu tcp.Tuple, tc *tcp.Conn) {
	if p := t.tracer.Load(); p != nil {
		fn := *p
		tc.SetTracer(func(e *tcp.Event) { fn(tu, e) })
	}
}
