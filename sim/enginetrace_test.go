package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
)

// TestTraceEngineHandshake: the engines' own trace of a simulated
// handshake starts on each side with the constructor's transition, at the
// virtual time the connection was made, as Linux's tcp:tcp_set_state shows
// it: CLOSED -> SYN-SENT on the client, LISTEN -> SYN-RECEIVED on the
// server, before their SYN and SYN-ACK.
func TestTraceEngineHandshake(t *testing.T) {
	e := NewEnv(1, lan, lan)
	var log []string
	e.Sim.TraceEngine(func(h *Host, _ tcp.Tuple, ev *tcp.Event) {
		switch ev.Kind {
		case tcp.EvState:
			log = append(log, fmt.Sprintf("%v %s state %v -> %v", ev.Time.Sub(Epoch), h.Name, ev.PrevState, ev.State))
		case tcp.EvSend, tcp.EvRecv:
			log = append(log, fmt.Sprintf("%v %s %v %s", ev.Time.Sub(Epoch), h.Name, ev.Kind, ev.Reason))
		}
	})
	e.B.Listen(80, Discard())
	e.dial(time.Second, Handler{OnOpen: func(c *Conn) { c.Close() }})
	if err := e.Sim.Run(time.Minute); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1s A state CLOSED -> SYN-SENT",
		"1s A send syn",
		"1.01s B state LISTEN -> SYN-RECEIVED",
		"1.01s B send syn",
		"1.02s A recv ",
		"1.02s A state SYN-SENT -> ESTABLISHED",
	}
	if len(log) < len(want) || strings.Join(log[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("engine trace:\n%s\nwant it to start with:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}
