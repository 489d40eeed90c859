package tcpcopy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// respondTo returns what the test server answers to req.
func respondTo(req []byte, changed bool) []byte {
	var out bytes.Buffer
	serveConn(bufio.NewReader(bytes.NewReader(req)), &out, changed)
	return out.Bytes()
}

func httpReq(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: test\r\nUser-Agent: synth\r\n\r\n")
}

func echoMsg(n int, seed byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	for i := 0; i < n; i++ {
		b = append(b, 'a'+(seed+byte(i))%26)
	}
	return b
}

// synthSession builds the packets of a connection whose requests are
// answered by the test server.
func synthSession(client, server netip.AddrPort, reqs [][]byte, mss int) [][]byte {
	f := NewSynthFlow(client, server, uint32(client.Port())*7919, uint32(server.Port())*104729)
	pkts := f.Handshake()
	for _, r := range reqs {
		pkts = append(pkts, f.Data(ClientToServer, r, mss)...)
		if resp := respondTo(r, false); len(resp) > 0 {
			pkts = append(pkts, f.Data(ServerToClient, resp, mss)...)
		}
		pkts = append(pkts, f.Ack(ClientToServer))
	}
	return append(pkts, f.Close()...)
}

func writeCapture(tb testing.TB, path string, link LinkType, ng bool, pkts [][]byte) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w, err := NewCaptureWriter(f, link, ng)
	if err != nil {
		tb.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.Write(t0.Add(time.Duration(i)*100*time.Microsecond), p); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// readSessions assembles a capture file.
func readSessions(tb testing.TB, path string) []*Session {
	tb.Helper()
	src, err := OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	var out []*Session
	a := NewAssembler(AssemblerConfig{}, func(s *Session) { out = append(out, s) })
	for {
		p, err := src.Next()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			tb.Fatal(err)
		}
		a.Packet(p)
	}
	a.Flush()
	slices.SortFunc(out, func(x, y *Session) int { return x.ID - y.ID })
	return out
}

func replayFile(tb testing.TB, path string, opts Options) *Report {
	tb.Helper()
	src, err := OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	rep, err := Run(context.Background(), []Source{src}, AssemblerConfig{}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

func mapAll(addr string) func(*Session) (string, bool) {
	return func(*Session) (string, bool) { return addr, true }
}

// sameStreams checks that the server saw exactly the captured client
// streams, one connection per session (as multisets: the replayed
// connections' order is not fixed).
func sameStreams(t *testing.T, got [][]byte, sessions []*Session, copies int) {
	t.Helper()
	var want []string
	for _, s := range sessions {
		for c := 0; c < copies; c++ {
			want = append(want, string(s.ClientData))
		}
	}
	var have []string
	for _, g := range got {
		have = append(have, string(g))
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(want, have) {
		t.Errorf("server saw %d connections, captured %d sessions x %d copies; streams differ", len(have), len(sessions), copies)
		for i := range min(len(want), len(have)) {
			if want[i] != have[i] {
				t.Errorf("first difference: captured %q\nreplayed %q", trunc(want[i]), trunc(have[i]))
				break
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func synthCapture(t *testing.T) string {
	big := echoMsg(5000, 3)
	pkts := cat(
		synthSession(netip.MustParseAddrPort("10.0.0.1:40001"), netip.MustParseAddrPort("10.0.0.2:80"), [][]byte{httpReq("/a"), httpReq(changedPath), httpReq("/c")}, 1460),
		synthSession(netip.MustParseAddrPort("10.0.0.1:40002"), netip.MustParseAddrPort("10.0.0.2:7000"), [][]byte{echoMsg(10, 1), big, echoMsg(1, 2), {0, 0, 0, 0}}, 1000),
		synthSession(netip.MustParseAddrPort("[fd00::1]:40003"), netip.MustParseAddrPort("[fd00::2]:80"), [][]byte{httpReq("/missing")}, 1460),
		synthSession(netip.MustParseAddrPort("10.0.0.3:40004"), netip.MustParseAddrPort("10.0.0.2:80"), [][]byte{httpReq("/d")}, 1460),
	)
	path := filepath.Join(t.TempDir(), "synth.pcap")
	writeCapture(t, path, LinkEthernet, false, pkts)
	return path
}

func TestReplaySynthetic(t *testing.T) {
	path := synthCapture(t)
	sessions := readSessions(t, path)
	if len(sessions) != 4 {
		t.Fatalf("%d sessions, want 4", len(sessions))
	}
	srv := startRecServer(t, "127.0.0.1:0", false)
	for _, copies := range []int{1, 3} {
		srv.mu.Lock()
		srv.streams = nil
		srv.mu.Unlock()
		var pm PortMap
		if err := pm.Set("80-" + srv.addr() + ",7000-" + srv.addr()); err != nil {
			t.Fatal(err)
		}
		rep := replayFile(t, path, Options{Target: pm.Target, Speed: 0, Copies: copies, Concurrency: 2})
		if rep.Replayed != 4*copies || rep.Status[StatusIdentical] != 4*copies || !rep.Identical() {
			var b strings.Builder
			rep.WriteText(&b)
			t.Fatalf("copies %d: report:\n%s", copies, b.String())
		}
		sameStreams(t, srv.recorded(t, 4*copies), sessions, copies)
		if rep.TTFBReplayed.N == 0 || rep.TTFBCaptured.N != rep.TTFBReplayed.N {
			t.Errorf("TTFB samples captured %d replayed %d", rep.TTFBCaptured.N, rep.TTFBReplayed.N)
		}
	}
}

func TestReplayDifferentServer(t *testing.T) {
	path := synthCapture(t)
	sessions := readSessions(t, path)
	srv := startRecServer(t, "127.0.0.1:0", true)
	rep := replayFile(t, path, Options{Target: mapAll(srv.addr())})
	// Only session 1 asks for /b: its second response differs at the
	// changed body byte.
	s := sessions[0]
	body := httpBody(changedPath, false)
	resp2 := s.ServerData[s.Exchanges[1].RespOff : s.Exchanges[1].RespOff+s.Exchanges[1].RespLen]
	wantOff := int64(s.Exchanges[1].RespOff + bytes.Index(resp2, body) + changedAt)
	if rep.Status[StatusDiffers] != 1 || rep.Status[StatusIdentical] != 3 || len(rep.Problems) != 1 {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("report:\n%s", b.String())
	}
	p := rep.Problems[0]
	if p.Session != 1 || p.DiffOffset != wantOff {
		t.Errorf("problem %+v, want session 1 differing at %d", p, wantOff)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), fmt.Sprintf("session 1 10.0.0.1:40001 -> 10.0.0.2:80 (replayed to %s): response differs at offset %d", srv.addr(), wantOff)) {
		t.Errorf("text report lacks the difference:\n%s", b.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Status   map[string]int `json:"status"`
		Problems []struct {
			Session    int   `json:"session"`
			DiffOffset int64 `json:"diff_offset"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Status["differs"] != 1 || back.Problems[0].DiffOffset != wantOff {
		t.Errorf("JSON report: %s", js.String())
	}
}

func TestReplayHTTPStatusMismatch(t *testing.T) {
	// Captured: 200 for /x. The target answers 404 for it.
	f := NewSynthFlow(cli4, srv4, 1, 1)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n\r\n" + string(httpBody("/missing", false)))
	pkts := cat(f.Handshake(), f.Data(ClientToServer, httpReq("/missing"), 1460), f.Data(ServerToClient, resp, 1460), f.Close())
	path := filepath.Join(t.TempDir(), "status.pcap")
	writeCapture(t, path, LinkRaw, false, pkts)
	srv := startRecServer(t, "127.0.0.1:0", false)
	rep := replayFile(t, path, Options{Target: mapAll(srv.addr())})
	if rep.HTTPStatusMismatches != 1 || len(rep.Problems) != 1 || rep.Problems[0].DiffOffset != 9 {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("report:\n%s", b.String())
	}
	if h := rep.Problems[0].HTTPStatus; len(h) != 1 || !strings.Contains(h[0], `captured "HTTP/1.1 200 OK", replayed "HTTP/1.1 404 Not Found"`) {
		t.Errorf("HTTP status mismatch %q", h)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestReplayRefusedAndReset(t *testing.T) {
	path := synthCapture(t)
	// Refused: nothing listens there. The run goes on and counts them.
	rep := replayFile(t, path, Options{Target: mapAll(freePort(t)), Copies: 2})
	if rep.Replayed != 8 || rep.Status[StatusNoConnect] != 8 || rep.Errors["refused"] != 8 {
		t.Errorf("refused: replayed %d status %v errors %v", rep.Replayed, rep.Status, rep.Errors)
	}
	// Reset: the server reads the first bytes and aborts with RST.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Read(make([]byte, 1))
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}()
		}
	}()
	rep = replayFile(t, path, Options{Target: mapAll(ln.Addr().String()), Wait: 5 * time.Second})
	if rep.Replayed != 4 || rep.Errors["reset"] != 4 || rep.Status[StatusShorter] != 4 {
		var b strings.Builder
		rep.WriteText(&b)
		t.Errorf("reset: report:\n%s", b.String())
	}
}

func TestReplaySkipsClientGap(t *testing.T) {
	f := NewSynthFlow(cli4, srv4, 1, 1)
	hs := f.Handshake()
	req := f.Data(ClientToServer, []byte("GET /a HTTP/1.1\r\n\r\n"), 5)
	resp := f.Data(ServerToClient, respondTo(httpReq("/a"), false), 1460)
	f2 := NewSynthFlow(netip.MustParseAddrPort("10.0.0.1:40009"), srv4, 1, 1)
	pkts := cat(hs, one(req[0]), req[2:], resp, f.Close(),
		f2.Handshake(), f2.Data(ClientToServer, httpReq("/a"), 1460), f2.Data(ServerToClient, respondTo(httpReq("/a"), false), 1460), f2.Close())
	path := filepath.Join(t.TempDir(), "gap.pcap")
	writeCapture(t, path, LinkRaw, false, pkts)
	srv := startRecServer(t, "127.0.0.1:0", false)
	rep := replayFile(t, path, Options{Target: mapAll(srv.addr())})
	if rep.Replayed != 1 || rep.Skipped["client stream has a gap"] != 1 || rep.Capture.Gaps != 1 {
		t.Fatalf("replayed %d skipped %v gaps %d", rep.Replayed, rep.Skipped, rep.Capture.Gaps)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "session 1 10.0.0.1:40000 -> 10.0.0.2:80: skipped (client stream has a gap); gap of 5 bytes in client->server stream at offset 5") {
		t.Errorf("report:\n%s", b.String())
	}
}

func TestReplayTiming(t *testing.T) {
	// Two requests 300 ms apart in the capture; at --speed 2 the replay
	// keeps them at least 150 ms apart, at --speed 0 it does not wait.
	f := NewSynthFlow(cli4, srv4, 1, 1)
	pk := [][]byte{}
	pk = append(pk, f.Handshake()...)
	pk = append(pk, f.Data(ClientToServer, httpReq("/a"), 1460)...)
	pk = append(pk, f.Data(ServerToClient, respondTo(httpReq("/a"), false), 1460)...)
	n1 := len(pk)
	pk = append(pk, f.Data(ClientToServer, httpReq("/c"), 1460)...)
	pk = append(pk, f.Data(ServerToClient, respondTo(httpReq("/c"), false), 1460)...)
	pk = append(pk, f.Close()...)
	path := filepath.Join(t.TempDir(), "timing.pcap")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewCaptureWriter(fh, LinkRaw, false)
	for i, p := range pk {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		if i >= n1 {
			ts = ts.Add(300 * time.Millisecond)
		}
		w.Write(ts, p)
	}
	fh.Close()
	srv := startRecServer(t, "127.0.0.1:0", false)
	for _, tc := range []struct {
		speed float64
		min   time.Duration
	}{{2, 150 * time.Millisecond}, {0, 0}} {
		rep := replayFile(t, path, Options{Target: mapAll(srv.addr()), Speed: tc.speed})
		if !rep.Identical() {
			t.Fatalf("speed %v: not identical", tc.speed)
		}
		if rep.Elapsed < tc.min {
			t.Errorf("speed %v: replay took %v, want at least %v", tc.speed, rep.Elapsed, tc.min)
		}
	}
}

func TestReplaySessionTimeout(t *testing.T) {
	// A target that accepts and never reads nor answers: the replay gives
	// up after the session timeout and counts a timeout; the run goes on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	f := NewSynthFlow(cli4, srv4, 1, 1)
	big := bytes.Repeat([]byte("x"), 8<<20) // more than the socket buffers hold
	pkts := cat(f.Handshake(), f.Data(ClientToServer, big, 65000), f.Data(ServerToClient, []byte("ok"), 10), f.Close())
	path := filepath.Join(t.TempDir(), "big.pcap")
	writeCapture(t, path, LinkRaw, false, pkts)
	rep := replayFile(t, path, Options{Target: mapAll(ln.Addr().String()), SessionTimeout: 300 * time.Millisecond, Wait: 100 * time.Millisecond})
	if rep.Replayed != 1 || rep.Errors["timeout"] != 1 || rep.Status[StatusShorter] != 1 {
		var b strings.Builder
		rep.WriteText(&b)
		t.Errorf("report:\n%s", b.String())
	}
}

func TestReplayClientAbortSendsRST(t *testing.T) {
	f := NewSynthFlow(cli4, srv4, 1, 1)
	pkts := cat(f.Handshake(), f.Data(ClientToServer, []byte("hello"), 100), one(f.Segment(ClientToServer, f.CSeq, f.SSeq, 0x04|0x10, nil)))
	path := filepath.Join(t.TempDir(), "rst.pcap")
	writeCapture(t, path, LinkRaw, false, pkts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.ReadAll(c)
		got <- err
	}()
	rep := replayFile(t, path, Options{Target: mapAll(ln.Addr().String())})
	if rep.Status[StatusIdentical] != 1 {
		t.Errorf("status %v", rep.Status)
	}
	select {
	case err := <-got:
		if ErrorKind(err) != "reset" {
			t.Errorf("server read ended with %v, want a reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server read did not end")
	}
}

func TestReplayIgnoreHTTPHeaders(t *testing.T) {
	resp := func(date, server, body string) string {
		return "HTTP/1.1 200 OK\r\nDate: " + date + "\r\nServer: " + server + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
	}
	captured := resp("Mon, 05 Jan 2026 10:00:00 GMT", "a", "hello\nDate: in the body\n") + resp("Mon, 05 Jan 2026 10:00:01 GMT", "a", "second")
	live := resp("Tue, 24 Nov 2026 11:59:59 GMT", "server-2", "hello\nDate: in the body\n") + resp("Tue, 24 Nov 2026 12:00:00 GMT", "server-2", "second")
	f := NewSynthFlow(cli4, srv4, 1, 1)
	r1, r2 := httpReq("/1"), httpReq("/2")
	c1 := []byte(captured[:strings.Index(captured[1:], "HTTP/1.1")+1])
	c2 := []byte(captured[len(c1):])
	pkts := cat(f.Handshake(), f.Data(ClientToServer, r1, 1460), f.Data(ServerToClient, c1, 1460), f.Data(ClientToServer, r2, 1460), f.Data(ServerToClient, c2, 1460), f.Close())
	path := filepath.Join(t.TempDir(), "dates.pcap")
	writeCapture(t, path, LinkRaw, false, pkts)
	l1 := live[:strings.Index(live[1:], "HTTP/1.1")+1]
	l2 := live[len(l1):]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for _, answer := range []string{l1, l2} {
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					c.Write([]byte(answer))
				}
				io.Copy(io.Discard, br)
			}()
		}
	}()
	rep := replayFile(t, path, Options{Target: mapAll(ln.Addr().String())})
	if rep.Status[StatusDiffers] != 1 || rep.Problems[0].DiffOffset != int64(strings.Index(captured, "Mon")) {
		t.Errorf("exact comparison: status %v problems %+v", rep.Status, rep.Problems)
	}
	rep = replayFile(t, path, Options{Target: mapAll(ln.Addr().String()), IgnoreHeaders: []string{"date", "Server"}})
	if !rep.Identical() {
		var b strings.Builder
		rep.WriteText(&b)
		t.Errorf("ignoring Date and Server:\n%s", b.String())
	}
	// A body difference is still found, at its offset in the streams
	// without the ignored headers.
	if got := stripHeaders([]byte(captured), []string{"Date", "Server"}); !bytes.Contains(got, []byte("Date: in the body")) || bytes.Contains(got, []byte("GMT")) {
		t.Errorf("stripHeaders: %q", got)
	}
}

func TestReplaySessionStartsScaled(t *testing.T) {
	// Two sessions starting 400 ms apart in the capture: at speed 2 the
	// second connection is not made before 200 ms into the replay.
	var pkts [][]byte
	var times []time.Duration
	for i, start := range []time.Duration{0, 400 * time.Millisecond} {
		f := NewSynthFlow(netip.AddrPortFrom(cli4.Addr(), uint16(41000+i)), srv4, 1, 1)
		for j, p := range cat(f.Handshake(), f.Data(ClientToServer, httpReq("/a"), 1460), f.Data(ServerToClient, respondTo(httpReq("/a"), false), 1460), f.Close()) {
			pkts = append(pkts, p)
			times = append(times, start+time.Duration(j)*time.Millisecond)
		}
	}
	path := filepath.Join(t.TempDir(), "two.pcap")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewCaptureWriter(fh, LinkRaw, false)
	for i, p := range pkts {
		w.Write(t0.Add(times[i]), p)
	}
	fh.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan time.Time, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- time.Now()
			go func() { serveConn(bufio.NewReader(c), c, false); c.Close() }()
		}
	}()
	start := time.Now()
	rep := replayFile(t, path, Options{Target: mapAll(ln.Addr().String()), Speed: 2})
	if !rep.Identical() {
		t.Fatalf("not identical: %v", rep.Status)
	}
	<-accepted
	if second := <-accepted; second.Sub(start) < 200*time.Millisecond {
		t.Errorf("second session connected %v after the start, want at least 200 ms", second.Sub(start))
	}
}
