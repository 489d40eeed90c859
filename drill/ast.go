package drill

import (
	"fmt"
	"time"
)

// Error is a script error (parse or run) tied to a line of the script.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// TimeKind says how an event's time is written.
type TimeKind int

// Time kinds.
const (
	TimeAbsolute TimeKind = iota // 0.100
	TimeRelative                 // +0.100 (to the previous event)
	TimeAny                      // *
)

// TimeSpec is an event time: a point, a range (start~end) for packets, and
// an end time for blocking system calls (start...end).
type TimeSpec struct {
	Kind     TimeKind
	T        time.Duration
	HasRange bool // start~end
	RangeRel bool // end written with '+'
	RangeEnd time.Duration
	Blocking bool // start...end
	EndRel   bool // end written with '+' (relative to the start)
	End      time.Duration
}

// Script is a parsed packetdrill script.
type Script struct {
	Options []ScriptOption // --name=value lines at the top
	Events  []*Event
}

// ScriptOption is a --name=value line.
type ScriptOption struct {
	Line        int
	Name, Value string
}

// EventKind is the kind of an event line.
type EventKind int

// Event kinds.
const (
	EvPacket EventKind = iota
	EvSyscall
	EvShell
	EvPython
)

// Event is one timed line of a script.
type Event struct {
	Line    int
	Time    TimeSpec
	Kind    EventKind
	Packet  *Packet
	Syscall *Syscall
	Text    string // shell command or python code
}

// Packet is a TCP packet line.
type Packet struct {
	Inbound  bool // '<': injected; '>': expected from ustack
	Flags    uint8
	FlagText string
	Seq      uint32 // relative
	End      uint32
	Len      int
	HasAck   bool
	Ack      uint32
	HasWin   bool
	Win      uint16
	HasUrg   bool
	Urg      uint16
	ECN      string   // "", "noecn", "ect0", "ect1", "ce" or "ect01" (either)
	AnyOpts  bool     // <...>
	Opts     []PktOpt // nil = no options
}

// OptKind is a TCP option written in a packet line.
type OptKind int

// Option kinds.
const (
	OptNOP OptKind = iota
	OptEOL
	OptMSS
	OptWScale
	OptSACKOK
	OptSACK
	OptTS
	OptFO
	OptFOExp
)

// PktOpt is one option of a packet line.
type PktOpt struct {
	Kind   OptKind
	Val    uint32 // mss, wscale, TS val
	Ecr    uint32
	Blocks [][2]uint32 // sack blocks (relative)
	Cookie []byte      // FO / FOEXP (nil/empty = request)
}

// Syscall is a system call line: name(args) = result [errno].
type Syscall struct {
	Name    string
	Args    []Expr
	Result  Expr // usually Int; may be Ellipsis
	Errno   string
	ErrText string
}

// ExprKind is the kind of an argument expression.
type ExprKind int

// Expression kinds.
const (
	XInt      ExprKind = iota
	XIdent             // a named constant
	XEllipsis          // ...
	XString
	XList   // [a, b]
	XStruct // {name=value, ...}
	XOr     // a|b|c
	XCall   // htons(8080)
)

// Expr is an argument expression of a system call.
type Expr struct {
	Kind   ExprKind
	Int    int64
	Name   string // ident, call name, or struct field name for struct elements
	Str    string
	Elems  []Expr
	Fields []string // XStruct field names (parallel to Elems; "" when none)
}

func (e Expr) String() string {
	switch e.Kind {
	case XInt:
		return fmt.Sprint(e.Int)
	case XIdent:
		return e.Name
	case XEllipsis:
		return "..."
	case XString:
		return fmt.Sprintf("%q", e.Str)
	case XList:
		s := "["
		for i, x := range e.Elems {
			if i > 0 {
				s += ", "
			}
			s += x.String()
		}
		return s + "]"
	case XStruct:
		s := "{"
		for i, x := range e.Elems {
			if i > 0 {
				s += ", "
			}
			if e.Fields[i] != "" {
				s += e.Fields[i] + "="
			}
			s += x.String()
		}
		return s + "}"
	case XOr:
		s := ""
		for i, x := range e.Elems {
			if i > 0 {
				s += "|"
			}
			s += x.String()
		}
		return s
	case XCall:
		s := e.Name + "("
		for i, x := range e.Elems {
			if i > 0 {
				s += ", "
			}
			s += x.String()
		}
		return s + ")"
	}
	return "?"
}
