package tcpcopy

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

var (
	cli4 = netip.MustParseAddrPort("10.0.0.1:40000")
	srv4 = netip.MustParseAddrPort("10.0.0.2:80")
	cli6 = netip.MustParseAddrPort("[fd00::1]:40001")
	srv6 = netip.MustParseAddrPort("[fd00::2]:7000")
	t0   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// assemble feeds IP packets 1 ms apart and returns the emitted sessions.
func assemble(t testing.TB, cfg AssemblerConfig, pkts [][]byte) ([]*Session, *Assembler) {
	t.Helper()
	var out []*Session
	a := NewAssembler(cfg, func(s *Session) { out = append(out, s) })
	for i, p := range pkts {
		a.IP(i+1, t0.Add(time.Duration(i)*time.Millisecond), p)
	}
	a.Flush()
	return out, a
}

func cat(parts ...[][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(p []byte) [][]byte { return [][]byte{p} }

func checkExchanges(t *testing.T, s *Session, want [][2]string) {
	t.Helper()
	if len(s.Exchanges) != len(want) {
		t.Fatalf("session %v: %d exchanges, want %d: %+v", s, len(s.Exchanges), len(want), s.Exchanges)
	}
	for i, e := range s.Exchanges {
		req := string(s.ClientData[e.ReqOff : e.ReqOff+e.ReqLen])
		resp := string(s.ServerData[e.RespOff : e.RespOff+e.RespLen])
		if req != want[i][0] || resp != want[i][1] {
			t.Errorf("exchange %d = (%q, %q), want (%q, %q)", i, req, resp, want[i][0], want[i][1])
		}
	}
}

func TestAssembleSimple(t *testing.T) {
	for _, addrs := range [][2]netip.AddrPort{{cli4, srv4}, {cli6, srv6}} {
		f := NewSynthFlow(addrs[0], addrs[1], 1000, 5000)
		pkts := cat(f.Handshake(),
			f.Data(ClientToServer, []byte("GET / HTTP/1.1\r\n\r\n"), 5),
			f.Data(ServerToClient, []byte("HTTP/1.1 200 OK\r\n\r\nhello"), 10),
			f.Data(ClientToServer, []byte("second"), 100),
			f.Data(ServerToClient, []byte("reply2"), 100),
			f.Close())
		ss, a := assemble(t, AssemblerConfig{}, pkts)
		if len(ss) != 1 {
			t.Fatalf("%d sessions, want 1", len(ss))
		}
		s := ss[0]
		if s.Client != addrs[0] || s.Server != addrs[1] || !s.Handshake || s.Midstream {
			t.Errorf("session %v handshake=%v midstream=%v", s, s.Handshake, s.Midstream)
		}
		if len(s.Gaps) != 0 || s.Retransmitted != 0 || s.OutOfOrder != 0 {
			t.Errorf("gaps %v retrans %d ooo %d", s.Gaps, s.Retransmitted, s.OutOfOrder)
		}
		if !s.ClientFIN || !s.ServerFIN {
			t.Errorf("FINs %v %v", s.ClientFIN, s.ServerFIN)
		}
		checkExchanges(t, s, [][2]string{{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nhello"}, {"second", "reply2"}})
		if s.Packets != len(pkts)-1 { // the last ACK comes after both FINs
			t.Errorf("session packets %d, want %d", s.Packets, len(pkts))
		}
		if a.Open() != 0 {
			t.Errorf("%d connections left open", a.Open())
		}
	}
}

func TestAssembleRetransmitReorderOverlap(t *testing.T) {
	f := NewSynthFlow(cli4, srv4, 0xfffffff0, 77) // client seq wraps around 2^32
	hs := f.Handshake()
	req := f.Data(ClientToServer, []byte("0123456789abcdefghij"), 4) // 5 segments
	resp := f.Data(ServerToClient, []byte("RESPONSE"), 3)            // 3 segments
	pkts := cat(hs,
		one(req[0]), one(req[2]), one(req[1]), // reordered
		one(req[1]),              // duplicate
		one(req[4]), one(req[3]), // reordered at the end
		one(resp[0]), one(resp[0]), one(resp[2]), one(resp[1]),
		f.Close())
	ss, _ := assemble(t, AssemblerConfig{}, pkts)
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	s := ss[0]
	checkExchanges(t, s, [][2]string{{"0123456789abcdefghij", "RESPONSE"}})
	if len(s.Gaps) != 0 {
		t.Errorf("gaps %+v", s.Gaps)
	}
	if s.Retransmitted != 2 || s.OutOfOrder != 3 {
		t.Errorf("retransmitted %d out-of-order %d, want 2 and 3", s.Retransmitted, s.OutOfOrder)
	}
}

func TestAssembleOverlapPartial(t *testing.T) {
	f := NewSynthFlow(cli4, srv4, 100, 900)
	hs := f.Handshake()
	data := []byte("abcdefghijklmnopqrst")
	segA := f.Segment(ClientToServer, 101, 901, 0x18, data[0:8])   // a..h
	segB := f.Segment(ClientToServer, 105, 901, 0x18, data[4:14])  // e..n overlaps A
	segC := f.Segment(ClientToServer, 113, 901, 0x18, data[12:20]) // m..t overlaps B
	f.CSeq = 121
	resp := f.Data(ServerToClient, []byte("ok"), 10)
	ss, _ := assemble(t, AssemblerConfig{}, cat(hs, one(segA), one(segC), one(segB), resp, f.Close()))
	checkExchanges(t, ss[0], [][2]string{{string(data), "ok"}})
	if len(ss[0].Gaps) != 0 {
		t.Errorf("gaps %+v", ss[0].Gaps)
	}
}

func TestAssembleMissingSegment(t *testing.T) {
	f := NewSynthFlow(cli4, srv4, 1, 1)
	hs := f.Handshake()
	req := f.Data(ClientToServer, []byte("AAAABBBBCCCC"), 4)
	resp := f.Data(ServerToClient, []byte("resp1"), 100) // acks all 12 request bytes
	req2 := f.Data(ClientToServer, []byte("next"), 100)
	resp2 := f.Data(ServerToClient, []byte("resp2"), 100)
	pkts := cat(hs, one(req[0]), one(req[2]) /* req[1] lost by the capture */, resp, req2, resp2, f.Close())
	ss, a := assemble(t, AssemblerConfig{}, pkts)
	s := ss[0]
	if len(s.Gaps) != 1 {
		t.Fatalf("gaps %+v, want one", s.Gaps)
	}
	g := s.Gaps[0]
	if g.Dir != ClientToServer || g.Offset != 4 || g.Len != 4 {
		t.Errorf("gap %+v, want client->server offset 4 len 4", g)
	}
	if !s.ClientGap() || s.ServerGapOffset() != -1 {
		t.Errorf("ClientGap %v ServerGapOffset %d", s.ClientGap(), s.ServerGapOffset())
	}
	// The held segment is delivered before the response: the exchange
	// structure is kept, the hole is not glued silently (it is in Gaps).
	checkExchanges(t, s, [][2]string{{"AAAACCCC", "resp1"}, {"next", "resp2"}})
	if a.Stats.Gaps != 1 || a.Stats.GapBytes != 4 {
		t.Errorf("stats gaps %d bytes %d", a.Stats.Gaps, a.Stats.GapBytes)
	}
}

func TestAssembleMissingTail(t *testing.T) {
	// The last response segment is missing; the client's FIN acks it.
	f := NewSynthFlow(cli4, srv4, 1, 1)
	hs := f.Handshake()
	req := f.Data(ClientToServer, []byte("req"), 100)
	resp := f.Data(ServerToClient, []byte("0123456789"), 5)
	ss, _ := assemble(t, AssemblerConfig{}, cat(hs, req, one(resp[0]), f.Close()))
	s := ss[0]
	if len(s.Gaps) != 1 || s.Gaps[0].Dir != ServerToClient || s.Gaps[0].Offset != 5 || s.Gaps[0].Len != 5 {
		t.Fatalf("gaps %+v", s.Gaps)
	}
	if s.ServerGapOffset() != 5 {
		t.Errorf("ServerGapOffset %d", s.ServerGapOffset())
	}
}

func TestAssembleMidstreamAndReuse(t *testing.T) {
	// No handshake: the well-known port decides the server.
	f := NewSynthFlow(netip.MustParseAddrPort("10.1.1.1:55555"), netip.MustParseAddrPort("10.1.1.2:443"), 10, 20)
	pkts := cat(f.Data(ServerToClient, []byte("late"), 100), f.Data(ClientToServer, []byte("hi"), 100), f.Close())
	// Then the same 4-tuple is reused by a new connection with a new ISN.
	f2 := NewSynthFlow(f.Client, f.Server, 9999, 8888)
	pkts = cat(pkts, f2.Handshake(), f2.Data(ClientToServer, []byte("new"), 100), f2.Close())
	ss, a := assemble(t, AssemblerConfig{}, pkts)
	if len(ss) != 2 || a.Stats.Midstream != 1 {
		t.Fatalf("%d sessions (%d midstream), want 2 (1)", len(ss), a.Stats.Midstream)
	}
	if !ss[0].Midstream || ss[0].Client != f.Client || ss[0].Server != f.Server {
		t.Errorf("first session %v midstream %v", ss[0], ss[0].Midstream)
	}
	checkExchanges(t, ss[0], [][2]string{{"", "late"}, {"hi", ""}})
	if ss[1].Midstream || !bytes.Equal(ss[1].ClientData, []byte("new")) {
		t.Errorf("second session midstream %v data %q", ss[1].Midstream, ss[1].ClientData)
	}
}

func TestAssembleFilterAndRST(t *testing.T) {
	f1 := NewSynthFlow(cli4, srv4, 1, 1)
	f2 := NewSynthFlow(netip.MustParseAddrPort("10.0.0.1:40001"), netip.MustParseAddrPort("10.0.0.2:81"), 1, 1)
	pkts := cat(f1.Handshake(), f2.Handshake(), f1.Data(ClientToServer, []byte("x"), 10), f2.Data(ClientToServer, []byte("y"), 10),
		one(f1.Segment(ServerToClient, f1.SSeq, f1.CSeq, 0x04|0x10, nil)), f2.Close())
	ss, a := assemble(t, AssemblerConfig{Filter: func(c, s netip.AddrPort) bool { return s.Port() == 80 }}, pkts)
	if len(ss) != 1 || ss[0].Server != srv4 || !ss[0].ServerRST {
		t.Fatalf("sessions %v", ss)
	}
	if a.Stats.Filtered != 1 || a.Stats.Sessions != 1 {
		t.Errorf("filtered %d sessions %d", a.Stats.Filtered, a.Stats.Sessions)
	}
}

// TestCaptureFileImpairments writes captures with retransmissions,
// reordering, an overlap and a lost segment to pcap and pcapng files and
// reads them back through OpenFile.
func TestCaptureFileImpairments(t *testing.T) {
	req := []byte("POST /upload HTTP/1.1\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789")
	resp := respondTo(httpReq("/upload"), false)
	build := func(lose bool) [][]byte {
		f := NewSynthFlow(cli4, srv4, 0xffffff00, 42)
		hs := f.Handshake()
		segs := f.Data(ClientToServer, req, 16) // 6 segments
		overlap := f.Segment(ClientToServer, 0xffffff01+8, f.SSeq, 0x18, req[8:40])
		rs := f.Data(ServerToClient, resp, 50)
		order := [][]byte{segs[0], segs[2], segs[1], segs[1], overlap, segs[4], segs[3], segs[5]}
		if lose {
			order = [][]byte{segs[0], segs[1], segs[3], segs[4], segs[5]} // segs[2] never captured
		}
		return cat(hs, order, one(rs[1]), one(rs[0]), rs[1:], f.Close())
	}
	dir := t.TempDir()
	for _, ng := range []bool{false, true} {
		for _, lose := range []bool{false, true} {
			path := filepath.Join(dir, fmt.Sprintf("imp-%v-%v.pcap", ng, lose))
			writeCapture(t, path, LinkLinuxSLL, ng, build(lose))
			ss := readSessions(t, path)
			if len(ss) != 1 {
				t.Fatalf("%s: %d sessions", path, len(ss))
			}
			s := ss[0]
			if !bytes.Equal(s.ServerData, resp) {
				t.Errorf("%s: response %q", path, s.ServerData)
			}
			if !lose {
				if !bytes.Equal(s.ClientData, req) || len(s.Gaps) != 0 || s.Retransmitted < 2 || s.OutOfOrder < 2 {
					t.Errorf("%s: client %q gaps %v retrans %d ooo %d", path, s.ClientData, s.Gaps, s.Retransmitted, s.OutOfOrder)
				}
				continue
			}
			want := append(append([]byte(nil), req[:32]...), req[48:]...)
			if !bytes.Equal(s.ClientData, want) || len(s.Gaps) != 1 || s.Gaps[0] != (Gap{Dir: ClientToServer, Offset: 32, Len: 16, Packet: s.Gaps[0].Packet}) {
				t.Errorf("%s: client %q gaps %+v", path, s.ClientData, s.Gaps)
			}
			if len(s.Exchanges) != 1 {
				t.Errorf("%s: exchanges %+v", path, s.Exchanges)
			}
		}
	}
}
