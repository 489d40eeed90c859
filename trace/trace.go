// Package trace writes the TCP engine's trace events (tcp.Event) as JSON
// lines, one object per event:
//
//	{"time":"2026-01-01T00:00:00.02Z","local":"10.0.0.1:40000","remote":"10.0.0.2:80",
//	 "kind":"send","state":"ESTABLISHED","seq":1001,"ack":5001,"len":1448,"flags":"ACK|PSH",
//	 "wnd":512,"reason":"new-data","cwnd":10,"ssthresh":2147483647,"rto":0.22,"srtt":0.02}
//
// kind is one of state, send, recv, rto, cwnd, window, fastopen; "prev"
// (state), "seq", "ack", "len", "flags", "wnd" and "reason" appear when
// they mean something for the kind. cwnd and ssthresh are in packets, rto
// and srtt in seconds.
package trace

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// JSON writes events as JSON lines to an io.Writer. It is safe for
// concurrent use: each event is one Write of one complete line.
type JSON struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewJSON returns a JSON-lines writer on w.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// Event writes one event of the connection t.
func (j *JSON) Event(t tcp.Tuple, e *tcp.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	j.buf = AppendJSON(j.buf[:0], t, e)
	j.buf = append(j.buf, '\n')
	_, j.err = j.w.Write(j.buf)
}

// Err returns the first write error (later events are dropped after it).
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Conn returns a tcp.Tracer for one connection, for tcp.Conn.SetTracer.
func (j *JSON) Conn(t tcp.Tuple) tcp.Tracer {
	return func(e *tcp.Event) { j.Event(t, e) }
}

var flagNames = [...]struct {
	f uint8
	s string
}{
	{wire.TCPFlagSYN, "SYN"}, {wire.TCPFlagFIN, "FIN"}, {wire.TCPFlagRST, "RST"}, {wire.TCPFlagPSH, "PSH"},
	{wire.TCPFlagACK, "ACK"}, {wire.TCPFlagURG, "URG"}, {wire.TCPFlagECE, "ECE"}, {wire.TCPFlagCWR, "CWR"},
}

// AppendJSON appends the JSON object for e (no newline) to b.
func AppendJSON(b []byte, t tcp.Tuple, e *tcp.Event) []byte {
	b = append(b, `{"time":`...)
	b = strconv.AppendQuote(b, e.Time.UTC().Format(time.RFC3339Nano))
	if t.Local.IsValid() {
		b = append(b, `,"local":`...)
		b = strconv.AppendQuote(b, t.Local.String())
		b = append(b, `,"remote":`...)
		b = strconv.AppendQuote(b, t.Remote.String())
	}
	b = append(b, `,"kind":`...)
	b = strconv.AppendQuote(b, e.Kind.String())
	b = append(b, `,"state":`...)
	b = strconv.AppendQuote(b, e.State.String())
	switch e.Kind {
	case tcp.EvState:
		b = append(b, `,"prev":`...)
		b = strconv.AppendQuote(b, e.PrevState.String())
	case tcp.EvSend, tcp.EvRecv:
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, uint64(e.Seq), 10)
		b = append(b, `,"ack":`...)
		b = strconv.AppendUint(b, uint64(e.Ack), 10)
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, int64(e.Len), 10)
		b = append(b, `,"flags":"`...)
		first := true
		for _, f := range flagNames {
			if e.Flags&f.f != 0 {
				if !first {
					b = append(b, '|')
				}
				b = append(b, f.s...)
				first = false
			}
		}
		b = append(b, '"')
		b = append(b, `,"wnd":`...)
		b = strconv.AppendUint(b, uint64(e.Wnd), 10)
	case tcp.EvWindow:
		b = append(b, `,"wnd":`...)
		b = strconv.AppendUint(b, uint64(e.Wnd), 10)
	}
	if e.Reason != tcp.ReasonNone {
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, e.Reason.String())
	}
	b = append(b, `,"cwnd":`...)
	b = strconv.AppendInt(b, int64(e.Cwnd), 10)
	b = append(b, `,"ssthresh":`...)
	b = strconv.AppendInt(b, int64(e.Ssthresh), 10)
	b = append(b, `,"rto":`...)
	b = strconv.AppendFloat(b, e.RTO.Seconds(), 'g', -1, 64)
	b = append(b, `,"srtt":`...)
	b = strconv.AppendFloat(b, e.SRTT.Seconds(), 'g', -1, 64)
	return append(b, '}')
}
