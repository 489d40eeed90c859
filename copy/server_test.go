package tcpcopy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test server speaks two protocols on one port, chosen by the first
// bytes of a connection: a small HTTP/1.1 server (deterministic responses,
// no Date header, keep-alive) and a length-prefixed binary echo (4-byte
// big-endian length, payload; the answer is the same framing with the
// payload reversed; a zero length ends the connection). It records every
// byte each connection sent. With changed set, the HTTP body for /b has one
// byte changed (same length) at changedAt.

const changedPath = "/b"

func httpBody(path string, changed bool) []byte {
	body := []byte(strings.Repeat("body of "+path+" ", 3) + "\n")
	if changed && path == changedPath {
		body[changedAt] = 'X'
	}
	return body
}

// changedAt is the index in the /b body that the changed server alters.
const changedAt = 5

type recServer struct {
	ln      net.Listener
	changed bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	streams [][]byte // bytes received, one entry per finished connection
	conns   map[net.Conn]struct{}
	notify  chan struct{}
}

func startRecServer(tb testing.TB, addr string, changed bool) *recServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &recServer{ln: ln, changed: changed, conns: map[net.Conn]struct{}{}, notify: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.close)
	return s
}

func (s *recServer) addr() string { return s.ln.Addr().String() }

func (s *recServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			rec := &recorder{r: c}
			serveConn(bufio.NewReader(rec), c, s.changed)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.streams = append(s.streams, rec.buf.Bytes())
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}()
	}
}

func (s *recServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// recorded returns the finished connections' byte streams, waiting (with a
// deadline) until at least n connections have finished.
func (s *recServer) recorded(tb testing.TB, n int) [][]byte {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got := len(s.streams)
		out := slices.Clone(s.streams)
		s.mu.Unlock()
		if got >= n {
			return out
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			tb.Fatalf("server saw %d finished connections, want %d", got, n)
		}
	}
}

type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.buf.Write(p[:n])
	}
	return n, err
}

func serveConn(br *bufio.Reader, w io.Writer, changed bool) {
	for {
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		if first[0] >= 'A' && first[0] <= 'Z' {
			if !serveHTTP(br, w, changed) {
				return
			}
			continue
		}
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > 16<<20 {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		slices.Reverse(msg)
		out := binary.BigEndian.AppendUint32(nil, n)
		if _, err := w.Write(append(out, msg...)); err != nil {
			return
		}
	}
}

// serveHTTP answers one request; false ends the connection.
func serveHTTP(br *bufio.Reader, w io.Writer, changed bool) bool {
	line, err := br.ReadString('\n')
	if err != nil {
		return false
	}
	parts := strings.Fields(line)
	if len(parts) != 3 {
		return false
	}
	clen, closeConn := 0, parts[2] == "HTTP/1.0"
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			clen, _ = strconv.Atoi(v)
		case "connection":
			closeConn = strings.EqualFold(v, "close")
		}
	}
	if clen > 0 {
		if _, err := io.CopyN(io.Discard, br, int64(clen)); err != nil {
			return false
		}
	}
	body := httpBody(parts[1], changed)
	status := "200 OK"
	if parts[1] == "/missing" {
		status = "404 Not Found"
	}
	resp := fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
	if _, err := io.WriteString(w, resp); err != nil {
		return false
	}
	return !closeConn
}

// echoClient runs the binary protocol: one message per size, checks each
// answer, then sends the zero-length end marker.
func echoClient(addr string, sizes []int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i, n := range sizes {
		msg := make([]byte, n)
		for j := range msg {
			msg[j] = byte('a' + (i+j)%26)
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(n)), msg...)); err != nil {
			return err
		}
		resp := make([]byte, 4+n)
		if _, err := io.ReadFull(br, resp); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		slices.Reverse(msg)
		if binary.BigEndian.Uint32(resp) != uint32(n) || !bytes.Equal(resp[4:], msg) {
			return fmt.Errorf("message %d: wrong echo", i)
		}
	}
	_, err = c.Write([]byte{0, 0, 0, 0})
	if err != nil {
		return err
	}
	// Wait for the server's close so the capture holds the whole session.
	_, err = br.ReadByte()
	if err != io.EOF {
		return fmt.Errorf("expected EOF after end marker, got %v", err)
	}
	return nil
}
