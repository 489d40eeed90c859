package ustack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/trace"
)

// lockedBuf is a bytes.Buffer safe for the stack's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestStackTracer traces every connection of both stacks as JSON lines
// through an echo exchange and checks both ends' handshake and data.
func TestStackTracer(t *testing.T) {
	p := newPair(t, 1500)
	var buf lockedBuf
	j := trace.NewJSON(&buf)
	p.A.SetTracer(j.Event)
	p.B.SetTracer(j.Event)
	c, s := p.dialAccept(t, "tcp", ":7", "10.0.0.2:7")
	go io.Copy(s, s)
	msg := []byte("hello, tracer")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Local, Remote, Kind, State, Prev, Reason, Flags string
		Len                                             int
	}
	// The server's receipt of the echoed data is traced before its reply
	// goes out; wait for the client's receipt of the echo too.
	var lines []line
	waitFor(t, "traced echo", func() bool {
		lines = lines[:0]
		sc := bufio.NewScanner(bytes.NewReader(buf.bytes()))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%v: %s", err, sc.Bytes())
			}
			lines = append(lines, l)
		}
		var openA, openB, synA, estA, estB, dataB, echoA bool
		for _, l := range lines {
			a := l.Local == c.LocalAddr().String()
			b := l.Local == "10.0.0.2:7"
			// The constructors' transitions, as tcp:tcp_set_state shows them.
			openA = openA || a && l.Kind == "state" && l.Prev == tcp.Closed.String() && l.State == tcp.SynSent.String()
			openB = openB || b && l.Kind == "state" && l.Prev == tcp.Listen.String() && l.State == tcp.SynReceived.String()
			synA = synA || a && l.Kind == "send" && l.Reason == "syn" && l.Flags == "SYN"
			estA = estA || a && l.Kind == "state" && l.State == tcp.Established.String()
			estB = estB || b && l.Kind == "state" && l.State == tcp.Established.String()
			dataB = dataB || b && l.Kind == "recv" && l.Len == len(msg)
			echoA = echoA || a && l.Kind == "recv" && l.Len == len(msg)
		}
		return openA && openB && synA && estA && estB && dataB && echoA
	})
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
}
