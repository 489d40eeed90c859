package sim

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"
)

// Echo is a server that writes back what it reads and shuts down its side
// when the peer does.
func Echo() Handler {
	return Handler{
		Name: "echo",
		OnData: func(c *Conn, p []byte) {
			c.Write(p)
		},
		OnEOF: func(c *Conn) { c.CloseWrite() },
	}
}

// Discard is a server that reads and drops everything and shuts down its
// side when the peer does.
func Discard() Handler {
	return Handler{
		Name:  "discard",
		OnEOF: func(c *Conn) { c.CloseWrite() },
	}
}

// HTTPResponse returns the fixed response HTTPServer sends: a status line,
// headers and bodyLen bytes of body.
func HTTPResponse(bodyLen int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", bodyLen)
	const line = "ustack simulated response body, deterministic filler text.....\n"
	for bodyLen > 0 {
		n := min(bodyLen, len(line))
		b.WriteString(line[:n])
		bodyLen -= n
	}
	return b.Bytes()
}

// HTTPServer is an HTTP-like server: once it has read a request head (up to
// an empty line) it writes the fixed response HTTPResponse(bodyLen) and
// closes the connection, like HTTP/1.0.
func HTTPServer(bodyLen int) Handler {
	resp := HTTPResponse(bodyLen)
	reqs := map[*Conn]*bytes.Buffer{}
	answered := map[*Conn]bool{}
	return Handler{
		Name: "http",
		OnData: func(c *Conn, p []byte) {
			buf := reqs[c]
			if buf == nil {
				buf = &bytes.Buffer{}
				reqs[c] = buf
			}
			if answered[c] {
				return
			}
			buf.Write(p)
			if bytes.Contains(buf.Bytes(), []byte("\r\n\r\n")) {
				answered[c] = true
				line, _, _ := bytes.Cut(buf.Bytes(), []byte("\r\n"))
				c.trace(Event{Kind: KindApp, Note: fmt.Sprintf("http request %q", line)})
				c.Write(resp)
				c.Close()
			}
		},
		OnEOF: func(c *Conn) {
			if !answered[c] {
				c.Close()
			}
		},
		OnClose: func(c *Conn) {
			delete(reqs, c)
			delete(answered, c)
		},
	}
}

// Fetch is a client that connects, sends a request, reads the response
// until the server closes, then closes.
type Fetch struct {
	Conn      *Conn
	Request   string
	Response  bytes.Buffer
	Start     time.Duration // when it connected
	Done      time.Duration // when it read EOF (0 if never)
	Completed bool
}

// StartFetch schedules a Fetch from host to remote at virtual time at.
func (s *Sim) StartFetch(from *Host, at time.Duration, remote netip.AddrPort, request string) *Fetch {
	f := &Fetch{Request: request}
	s.At(at, func() {
		f.Start = s.Elapsed()
		f.Conn = from.Dial(remote, Handler{
			Name:   "fetch",
			OnOpen: func(c *Conn) { c.Write([]byte(f.Request)) },
			OnData: func(c *Conn, p []byte) { f.Response.Write(p) },
			OnEOF: func(c *Conn) {
				f.Done = s.Elapsed()
				f.Completed = true
				c.Close()
			},
		})
	})
	return f
}
