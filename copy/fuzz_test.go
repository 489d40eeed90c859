package tcpcopy

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// checkSession verifies the invariants every emitted session must hold.
func checkSession(t *testing.T, s *Session) {
	t.Helper()
	reqOff, respOff := 0, 0
	for i, e := range s.Exchanges {
		if e.ReqOff != reqOff || e.RespOff != respOff || e.ReqLen < 0 || e.RespLen < 0 {
			t.Fatalf("session %v exchange %d not contiguous: %+v (want offsets %d, %d)", s, i, e, reqOff, respOff)
		}
		if i > 0 && e.ReqLen == 0 {
			t.Fatalf("session %v exchange %d has no request", s, i)
		}
		if i < len(s.Exchanges)-1 && e.RespLen == 0 {
			t.Fatalf("session %v exchange %d has no response but is not last", s, i)
		}
		reqOff += e.ReqLen
		respOff += e.RespLen
	}
	if reqOff != len(s.ClientData) || respOff != len(s.ServerData) {
		t.Fatalf("session %v: exchanges cover %d/%d bytes, data is %d/%d", s, reqOff, respOff, len(s.ClientData), len(s.ServerData))
	}
	for _, g := range s.Gaps {
		lim := len(s.ClientData)
		if g.Dir == ServerToClient {
			lim = len(s.ServerData)
		}
		if g.Len <= 0 || g.Offset < 0 || g.Offset > lim {
			t.Fatalf("session %v: bad gap %+v", s, g)
		}
	}
}

// FuzzCapture feeds arbitrary bytes as a capture file through the reader
// and the assembler: no panics, clear errors, consistent sessions.
func FuzzCapture(f *testing.F) {
	for _, lt := range []LinkType{LinkEthernet, LinkSLL2, LinkNull} {
		for _, ng := range []bool{false, true} {
			var buf bytes.Buffer
			w, err := NewCaptureWriter(&buf, lt, ng)
			if err != nil {
				f.Fatal(err)
			}
			for i, p := range linkTestPackets()[:12] {
				w.Write(t0.Add(time.Duration(i)*time.Millisecond), p)
			}
			w.Flush()
			f.Add(buf.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewReaderSource("fuzz.pcap", bytes.NewReader(data))
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("open error %T %v is not an *InputError", err, err)
			}
			return
		}
		a := NewAssembler(AssemblerConfig{MaxOutOfOrder: 4096, MaxSessionBytes: 1 << 16}, func(s *Session) { checkSession(t, s) })
		for i := 0; i < 10000; i++ {
			p, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if _, ok := err.(*InputError); !ok {
					t.Fatalf("read error %T %v is not an *InputError", err, err)
				}
				break
			}
			a.Packet(p)
		}
		a.Flush()
		if a.Open() != 0 {
			t.Fatalf("%d connections open after Flush", a.Open())
		}
	})
}

// FuzzReassembly cuts a client message into segments and delivers them in
// an order, with duplicates and drops, all chosen by the fuzzer; the server
// then acknowledges everything. Without drops the stream must come out
// exactly; with drops, the bytes around the declared gaps must be exactly
// the message minus the dropped bytes, never glued or shifted.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte("hello, world: a message long enough to be cut"), uint8(5), []byte{3, 1, 2, 0, 0, 4, 9, 8, 7})
	f.Add([]byte("0123456789abcdef"), uint8(1), []byte{15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	f.Add([]byte("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), uint8(4), []byte{0x80, 1, 0x82, 3, 3, 4, 5, 6})
	f.Add([]byte("x"), uint8(0), []byte{})
	f.Fuzz(fuzzReassemblyBody)
}

func fuzzReassemblyBody(t *testing.T, msg []byte, mss uint8, order []byte) {
	{
		if len(msg) == 0 || len(msg) > 4096 || len(order) > 256 {
			return
		}
		size := int(mss)%64 + 1
		fl := NewSynthFlow(cli4, srv4, 0xfffffe00+uint32(len(order)), 5)
		pkts := fl.Handshake()
		segs := fl.Data(ClientToServer, msg, size)
		var dropped = make([]bool, len(segs))
		used := make([]bool, len(segs))
		// Each order byte names a segment (low 7 bits); the high bit drops it.
		for _, o := range order {
			i := int(o&0x7f) % len(segs)
			if o&0x80 != 0 {
				if !used[i] {
					dropped[i] = true
				}
				continue
			}
			if dropped[i] {
				continue
			}
			pkts = append(pkts, segs[i])
			used[i] = true
		}
		for i, s := range segs {
			if !used[i] && !dropped[i] {
				pkts = append(pkts, s)
			}
		}
		pkts = append(pkts, fl.Data(ServerToClient, []byte("ok"), 10)...)
		pkts = append(pkts, fl.Close()...)
		ss, _ := assemble(t, AssemblerConfig{}, pkts)
		if len(ss) != 1 {
			t.Fatalf("%d sessions", len(ss))
		}
		s := ss[0]
		checkSession(t, s)
		// Rebuild the message by filling each gap with the original bytes.
		var rebuilt []byte
		pos := 0
		for _, g := range s.Gaps {
			if g.Dir != ClientToServer {
				t.Fatalf("gap in the server stream: %+v", g)
			}
			rebuilt = append(rebuilt, s.ClientData[pos:g.Offset]...)
			start := len(rebuilt)
			if start+int(g.Len) > len(msg) {
				t.Fatalf("gap %+v runs past the message (%d bytes)", g, len(msg))
			}
			rebuilt = append(rebuilt, msg[start:start+int(g.Len)]...)
			pos = g.Offset
		}
		rebuilt = append(rebuilt, s.ClientData[pos:]...)
		if !bytes.Equal(rebuilt, msg) {
			t.Fatalf("stream with gaps %+v refilled = %q, want %q", s.Gaps, rebuilt, msg)
		}
		anyDrop := false
		for _, d := range dropped {
			anyDrop = anyDrop || d
		}
		if !anyDrop && len(s.Gaps) != 0 {
			t.Fatalf("gaps %+v without drops", s.Gaps)
		}
		if anyDrop && len(s.Gaps) == 0 {
			t.Fatalf("segments dropped but no gap declared")
		}
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz seed files when
// USTACK_COPY_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("USTACK_COPY_WRITE_SEEDS") != "1" {
		t.Skip("set USTACK_COPY_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCapture")
	os.MkdirAll(dir, 0o755)
	write := func(name string, b []byte) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gapPkts := func() [][]byte {
		fl := NewSynthFlow(netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"), 1, 1)
		p := fl.Handshake()
		req := fl.Data(ClientToServer, httpReq("/gap"), 8)
		p = append(p, req[0], req[2], req[1], req[1], req[4])
		p = append(p, fl.Data(ServerToClient, respondTo(httpReq("/gap"), false), 30)...)
		return append(p, fl.Close()...)
	}()
	for _, c := range []struct {
		name string
		link LinkType
		ng   bool
		pkts [][]byte
	}{
		{"ethernet-pcap", LinkEthernet, false, linkTestPackets()},
		{"sll2-pcapng", LinkSLL2, true, linkTestPackets()},
		{"null-reorder-gap", LinkNull, false, gapPkts},
		{"sll-pcapng-gap", LinkLinuxSLL, true, gapPkts},
	} {
		var buf bytes.Buffer
		w, _ := NewCaptureWriter(&buf, c.link, c.ng)
		for i, p := range c.pkts {
			w.Write(t0.Add(time.Duration(i)*time.Microsecond), p)
		}
		w.Flush()
		write(c.name, buf.Bytes())
		if c.name == "ethernet-pcap" {
			write("truncated", buf.Bytes()[:buf.Len()-7])
		}
	}
}
