package tcpcopy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func linkTestPackets() [][]byte {
	return cat(
		synthSession(netip.MustParseAddrPort("10.0.0.1:40001"), netip.MustParseAddrPort("10.0.0.2:80"), [][]byte{httpReq("/a"), httpReq("/c")}, 1460),
		synthSession(netip.MustParseAddrPort("[fd00::1]:40003"), netip.MustParseAddrPort("[fd00::2]:7000"), [][]byte{echoMsg(3000, 1), {0, 0, 0, 0}}, 1000),
	)
}

func TestLinkTypes(t *testing.T) {
	pkts := linkTestPackets()
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.pcap")
	writeCapture(t, ref, LinkRaw, false, pkts)
	want := readSessions(t, ref)
	if len(want) != 2 {
		t.Fatalf("reference: %d sessions", len(want))
	}
	for _, lt := range []LinkType{LinkEthernet, LinkLinuxSLL, LinkSLL2, LinkRaw, LinkNull, LinkLoop} {
		for _, ng := range []bool{false, true} {
			name := lt.String()
			if ng {
				name += ".pcapng"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(dir, name)
				writeCapture(t, path, lt, ng, pkts)
				got := readSessions(t, path)
				if len(got) != len(want) {
					t.Fatalf("%d sessions, want %d", len(got), len(want))
				}
				for i := range got {
					g, w := got[i], want[i]
					if g.Client != w.Client || g.Server != w.Server || !bytes.Equal(g.ClientData, w.ClientData) ||
						!bytes.Equal(g.ServerData, w.ServerData) || len(g.Exchanges) != len(w.Exchanges) || len(g.Gaps) != 0 {
						t.Errorf("session %d differs from the raw-IP reference: %v %v", i, g, w)
					}
				}
			})
		}
	}
}

func TestLinkDecodeFrames(t *testing.T) {
	ip := NewSynthFlow(cli4, srv4, 1, 1).Segment(ClientToServer, 1, 0, 2, nil)
	vlan := append([]byte{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 5, 0x88, 0xa8, 0, 6, 0x08, 0x00}, ip...)
	nullBE := append([]byte{0, 0, 0, 2}, ip...)
	nullLE := append([]byte{2, 0, 0, 0}, ip...)
	for _, tc := range []struct {
		name  string
		link  LinkType
		frame []byte
		want  []byte
		err   error
	}{
		{"ethernet-vlan-qinq", LinkEthernet, vlan, ip, nil},
		{"null-big-endian", LinkNull, nullBE, ip, nil},
		{"null-little-endian", LinkNull, nullLE, ip, nil},
		{"arp", LinkEthernet, []byte{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x06, 1, 2}, nil, nil},
		{"short-ethernet", LinkEthernet, []byte{1, 2, 3}, nil, ErrShortFrame},
		{"short-vlan", LinkEthernet, []byte{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x81, 0x00, 0}, nil, ErrShortFrame},
		{"short-sll", LinkLinuxSLL, make([]byte, 15), nil, ErrShortFrame},
		{"short-sll2", LinkSLL2, make([]byte, 19), nil, ErrShortFrame},
		{"short-null", LinkNull, []byte{2, 0}, nil, ErrShortFrame},
		{"empty-raw", LinkRaw, nil, nil, ErrShortFrame},
		{"ipv4-linktype", LinkIPv4, ip, ip, nil},
		{"unsupported", LinkType(105), ip, nil, ErrUnsupportedLinkType},
	} {
		got, err := NetworkLayer(tc.link, tc.frame)
		if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %x, %v; want %x, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func wantInputError(t *testing.T, err error, file string, packet int, text string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want *InputError", err, err)
	}
	if ie.File != file || ie.Packet != packet || !strings.Contains(err.Error(), text) {
		t.Errorf("error %q (file %q packet %d), want file %q packet %d containing %q", err, ie.File, ie.Packet, file, packet, text)
	}
	if !strings.HasPrefix(err.Error(), file+": ") {
		t.Errorf("error %q does not start with the file name", err)
	}
}

// readAll reads a capture to the end and returns the first error that is
// not io.EOF, and the number of packets read.
func readAll(path string) (int, error) {
	src, err := OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	n := 0
	for {
		_, err := src.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestCorruptAndTruncatedFiles(t *testing.T) {
	dir := t.TempDir()
	pkts := linkTestPackets()
	good := filepath.Join(dir, "good.pcap")
	writeCapture(t, good, LinkEthernet, false, pkts)
	goodNG := filepath.Join(dir, "good.pcapng")
	writeCapture(t, goodNG, LinkEthernet, true, pkts)
	data, _ := os.ReadFile(good)
	dataNG, _ := os.ReadFile(goodNG)
	n := len(pkts)
	if got, err := readAll(good); err != nil || got != n {
		t.Fatalf("good file: %d packets, %v", got, err)
	}
	if got, err := readAll(goodNG); err != nil || got != n {
		t.Fatalf("good pcapng: %d packets, %v", got, err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	p := write("cut.pcap", data[:len(data)-10])
	_, err := readAll(p)
	wantInputError(t, err, p, n, "truncated in the middle of the packet")

	p = write("cut-header-of-record.pcap", data[:len(data)-len(pkts[n-1])-14-16+5])
	_, err = readAll(p)
	wantInputError(t, err, p, n, "truncated")

	p = write("cut.pcapng", dataNG[:len(dataNG)-20])
	_, err = readAll(p)
	wantInputError(t, err, p, n, "truncated")

	p = write("header.pcap", data[:10])
	_, err = readAll(p)
	wantInputError(t, err, p, 0, "truncated header")

	p = write("empty.pcap", nil)
	_, err = readAll(p)
	wantInputError(t, err, p, 0, "not a pcap or pcapng file")

	p = write("garbage.pcap", []byte("this is not a capture file at all, just text\n"))
	_, err = readAll(p)
	wantInputError(t, err, p, 0, "not a pcap or pcapng file")

	// Packet 3's record claims a capture length beyond the snap length.
	bad := bytes.Clone(data)
	off := 24
	for i := 0; i < 2; i++ {
		off += 16 + int(binary.LittleEndian.Uint32(bad[off+8:]))
	}
	binary.LittleEndian.PutUint32(bad[off+8:], 1<<30)
	p = write("corrupt.pcap", bad)
	_, err = readAll(p)
	wantInputError(t, err, p, 3, "corrupt record")

	// Unsupported link type: pcap fails at open, pcapng at the packet.
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65535, layers.LinkTypeIEEE802_11)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: 4, Length: 4}, []byte{1, 2, 3, 4})
	p = write("wifi.pcap", buf.Bytes())
	_, err = readAll(p)
	wantInputError(t, err, p, 0, "unsupported link type 105")

	buf.Reset()
	nw, _ := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	wifi, _ := nw.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeIEEE802_11, SnapLength: 65535})
	frame := (&CaptureWriter{link: LinkEthernet}).Frame(pkts[0])
	nw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(frame), Length: len(frame)}, frame)
	nw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: 4, Length: 4, InterfaceIndex: wifi}, []byte{1, 2, 3, 4})
	nw.Flush()
	p = write("mixed.pcapng", buf.Bytes())
	_, err = readAll(p)
	wantInputError(t, err, p, 2, "unsupported link type 105 (LINKTYPE_105)")
}

// Malformed IP/TCP inside a good file is counted, not fatal.
func TestUndecodablePacketsCounted(t *testing.T) {
	pkts := linkTestPackets()
	bad := bytes.Clone(pkts[3])
	bad[0] = 0x4f                  // IHL 60 > packet
	tcpBad := bytes.Clone(pkts[4]) // data offset beyond the segment
	tcpBad[20+12] = 0xf0
	all := cat(pkts[:3], one(bad), one(tcpBad), pkts[3:])
	path := filepath.Join(t.TempDir(), "bad.pcap")
	writeCapture(t, path, LinkRaw, false, all)
	src, _ := OpenFile(path)
	defer src.Close()
	rep, err := Run(t.Context(), []Source{src}, AssemblerConfig{}, Options{Target: func(*Session) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Capture.Undecodable != 2 || rep.Capture.FirstUndecodable != 4 {
		t.Errorf("undecodable %d first %d, want 2 and 4", rep.Capture.Undecodable, rep.Capture.FirstUndecodable)
	}
	if rep.Capture.Sessions != 2 || rep.Capture.Gaps != 0 {
		t.Errorf("sessions %d gaps %d", rep.Capture.Sessions, rep.Capture.Gaps)
	}
}

func TestSnapLengthCutShort(t *testing.T) {
	pkts := linkTestPackets()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(60, layers.LinkTypeRaw)
	for i, p := range pkts {
		n := min(len(p), 60)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: n, Length: len(p)}, p[:n])
	}
	path := filepath.Join(t.TempDir(), "snap60.pcap")
	os.WriteFile(path, buf.Bytes(), 0o644)
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := Run(t.Context(), []Source{src}, AssemblerConfig{}, Options{Target: func(*Session) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Capture.CutShort == 0 || rep.Capture.Undecodable != rep.Capture.CutShort {
		t.Errorf("cut short %d undecodable %d", rep.Capture.CutShort, rep.Capture.Undecodable)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "cut short by the capture's snap length") {
		t.Errorf("report:\n%s", b.String())
	}
}
