package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ipv4UDP builds a valid IPv4/UDP packet 10.0.0.1:1000 -> 10.0.0.2:port.
func ipv4UDP(port uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = 17
	copy(p[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(p[10:], csum(p[:20], 0))
	binary.BigEndian.PutUint16(p[20:], 1000)
	binary.BigEndian.PutUint16(p[22:], port)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	// UDP checksum over the pseudo header.
	var ph [12]byte
	copy(ph[:], p[12:20])
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(8+len(payload)))
	c := csum(p[20:], sum16(ph[:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], c)
	return p
}

func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func csum(b []byte, initial uint32) uint16 {
	s := sum16(b, initial)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestPcapReadBack(t *testing.T) { testCaptureReadBack(t, false) }

func TestPcapNGReadBack(t *testing.T) { testCaptureReadBack(t, true) }

func testCaptureReadBack(t *testing.T, ng bool) {
	path := filepath.Join(t.TempDir(), "cap.pcap")
	open := Pcap
	if ng {
		open = PcapNG
		path += "ng"
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := Pipe(1500)
	pa, err := open(a, f)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	// Packets written by the tapped end and read by it, from concurrent
	// goroutines.
	var wg sync.WaitGroup
	const n = 50
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for range n {
			if _, err := pa.ReadPacket(buf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range n {
		out := ipv4UDP(uint16(2000+i), []byte("hello from a"))
		in := ipv4UDP(uint16(3000+i), bytes.Repeat([]byte{byte(i)}, i))
		want = append(want, out, in)
		if err := pa.WritePacket(out); err != nil {
			t.Fatal(err)
		}
		if err := b.WritePacket(in); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// Batch paths.
	if _, err := pa.(BatchWriter).WritePackets([][]byte{ipv4UDP(9, nil), ipv4UDP(10, nil)}); err != nil {
		t.Fatal(err)
	}
	pa.Close()
	if err := pa.(*PcapEndpoint).Err(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	if ng {
		nr, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		if nr.LinkType() != layers.LinkTypeRaw {
			t.Fatalf("link type %v, want raw (101)", nr.LinkType())
		}
		r = nr
	} else {
		pr, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		if pr.LinkType() != layers.LinkTypeRaw {
			t.Fatalf("link type %v, want raw (101)", pr.LinkType())
		}
		if pr.Resolution() != gopacket.TimestampResolutionNanosecond {
			t.Fatalf("timestamp resolution %v, want nanoseconds", pr.Resolution())
		}
		r = pr
	}
	got := map[string]int{}
	count := 0
	var last time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		count++
		got[string(data)]++
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			t.Errorf("lengths %d/%d for %d bytes", ci.CaptureLength, ci.Length, len(data))
		}
		if time.Since(ci.Timestamp) > time.Minute || time.Since(ci.Timestamp) < 0 || ci.Timestamp.Before(last.Add(-time.Second)) {
			t.Errorf("odd timestamp %v", ci.Timestamp)
		}
		last = ci.Timestamp
	}
	if count != 2*n+2 {
		t.Fatalf("read %d records, want %d", count, 2*n+2)
	}
	for _, w := range want {
		if got[string(w)] != 1 {
			t.Fatalf("packet % x missing from capture", w[:28])
		}
	}

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark not installed (CI=true)")
		}
		t.Skip("SKIPPING tshark cross-check: tshark not installed")
	}
	cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "ip.dst", "-e", "udp.dstport", "-e", "udp.checksum.status", "-e", "frame.packet_flags_direction", "-o", "udp.check_checksum:TRUE")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s%s", err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2*n+2 {
		t.Fatalf("tshark saw %d packets, want %d:\n%s", len(lines), 2*n+2, out)
	}
	ports := map[string]bool{}
	for _, l := range lines {
		fs := strings.Split(l, "\t")
		if len(fs) < 2 || fs[0] != "10.0.0.2" {
			t.Fatalf("tshark line %q", l)
		}
		if len(fs) >= 3 && fs[2] != "" && fs[2] != "1" { // 1 = good, 0 = bad
			t.Fatalf("tshark says UDP checksum status %q: %q", fs[2], l)
		}
		ports[fs[1]] = true
		if ng {
			// Written by the tapped end: ports 2000+ and 9, 10 (outbound);
			// read by it: ports 3000+ (inbound).
			wantDir := "0x00000002"
			if strings.HasPrefix(fs[1], "30") {
				wantDir = "0x00000001"
			}
			if len(fs) < 4 || fs[3] != wantDir {
				t.Fatalf("tshark direction for port %s: %q, want %s", fs[1], l, wantDir)
			}
		}
	}
	if !ports["2000"] || !ports["3049"] {
		t.Fatalf("tshark output lacks expected ports:\n%s", out)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestPcapWriteErrors(t *testing.T) {
	a, b := Pipe(1500)
	defer a.Close()
	if _, err := Pcap(a, &failWriter{}); err == nil {
		t.Fatal("header write error not returned")
	}
	if _, err := PcapNG(a, &failWriter{}); err == nil {
		t.Fatal("pcapng header write error not returned")
	}
	p, err := Pcap(a, &failWriter{n: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WritePacket([]byte{0x45}); err != nil {
		t.Fatalf("traffic must flow despite capture errors: %v", err)
	}
	if n, err := b.ReadPacket(make([]byte, 10)); n != 1 || err != nil {
		t.Fatal("packet not passed through")
	}
	if p.(*PcapEndpoint).Err() == nil {
		t.Fatal("capture error not reported")
	}
}
