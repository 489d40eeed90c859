package wire

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writePcap writes packets as a pcap file with LINKTYPE_RAW (101).
func writePcap(path string, pkts [][]byte) error {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 101)
	b.Write(hdr)
	for i, p := range pkts {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(p)))
		b.Write(rec)
		b.Write(p)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

type tsharkCase struct {
	pkt    []byte
	fields map[string]string // tshark field -> expected value
}

func tsharkCases(t *testing.T) []tsharkCase {
	var cs []tsharkCase
	tcp4 := func(src, dst string, h TCPHeader, payload []byte, f map[string]string) {
		buf := make([]byte, 2000)
		s, d := mustAddr(src), mustAddr(dst)
		hl := 20
		if s.Is6() {
			hl = 40
		}
		n, err := BuildTCP(buf[hl:], &h, payload, PseudoHeaderSum(s, d, ProtoTCP, h.Len()+len(payload)))
		if err != nil {
			t.Fatal(err)
		}
		if s.Is6() {
			_, err = BuildIPv6(buf, &IPv6Header{NextHeader: ProtoTCP, Src: s, Dst: d, PayloadLen: n, HopLimit: 61, FlowLabel: 0xbeef})
		} else {
			_, err = BuildIPv4(buf, &IPv4Header{Protocol: ProtoTCP, Src: s, Dst: d, PayloadLen: n, DF: true, ID: 4242, TTL: 61})
		}
		if err != nil {
			t.Fatal(err)
		}
		f["tcp.checksum.status"] = "1" // verified and good
		if !s.Is6() {
			f["ip.checksum.status"] = "1"
		}
		cs = append(cs, tsharkCase{buf[:hl+n], f})
	}
	syn := TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSVal: 123456, TSEcr: 0, HasWScale: true, WScale: 7}
	tcp4("10.1.0.1", "10.1.0.2", TCPHeader{SrcPort: 40000, DstPort: 80, Seq: 1000, Flags: TCPFlagSYN, Window: 64240, Options: &syn}, nil,
		map[string]string{"ip.src": "10.1.0.1", "ip.ttl": "61", "ip.id": "0x1092", "ip.flags.df": "1", "tcp.srcport": "40000", "tcp.dstport": "80",
			"tcp.seq_raw": "1000", "tcp.flags": "0x0002", "tcp.window_size_value": "64240", "tcp.options.mss_val": "1460",
			"tcp.options.sack_perm": "0402", "tcp.options.timestamp.tsval": "123456", "tcp.options.timestamp.tsecr": "0", "tcp.options.wscale.shift": "7"})
	sack := TCPOptions{HasTS: true, TSVal: 5, TSEcr: 6, NumSACK: 3, SACK: [4]SACKBlock{{2000, 3000}, {4000, 5000}, {6000, 7000}}}
	tcp4("10.1.0.2", "10.1.0.1", TCPHeader{SrcPort: 80, DstPort: 40000, Seq: 5000, Ack: 1001, Flags: TCPFlagACK, Window: 500, Options: &sack}, nil,
		map[string]string{"tcp.ack_raw": "1001", "tcp.flags": "0x0010", "tcp.options.sack_le": "2000,4000,6000", "tcp.options.sack_re": "3000,5000,7000",
			"tcp.options.timestamp.tsval": "5", "tcp.options.timestamp.tsecr": "6"})
	tfo := TCPOptions{HasMSS: true, MSS: 1400, HasFastOpen: true, CookieLen: 8, Cookie: [16]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	tcp4("10.1.0.1", "10.1.0.2", TCPHeader{SrcPort: 40001, DstPort: 80, Seq: 7, Flags: TCPFlagSYN, Window: 1000, Options: &tfo}, []byte("GET / HTTP/1.0\r\n\r\n"),
		map[string]string{"tcp.options.tfo.cookie": "0102030405060708", "tcp.len": "18"})
	tfoReq := TCPOptions{HasFastOpen: true}
	tcp4("10.1.0.1", "10.1.0.2", TCPHeader{SrcPort: 40002, DstPort: 80, Seq: 8, Flags: TCPFlagSYN, Window: 1000, Options: &tfoReq}, nil,
		map[string]string{"tcp.options.tfo.request": "1"})
	tfoExp := TCPOptions{HasFastOpen: true, FastOpenExp: true, CookieLen: 4, Cookie: [16]byte{0xaa, 0xbb, 0xcc, 0xdd}}
	tcp4("10.1.0.2", "10.1.0.1", TCPHeader{SrcPort: 80, DstPort: 40003, Seq: 9, Ack: 9, Flags: TCPFlagSYN | TCPFlagACK, Window: 1000, Options: &tfoExp}, nil,
		map[string]string{"tcp.options.experimental.exid": "0xf989", "tcp.options.tfo.cookie": "aabbccdd"})
	tcp4("2001:db8::1", "2001:db8::2", TCPHeader{SrcPort: 443, DstPort: 50000, Seq: 1, Ack: 2, Flags: TCPFlagACK | TCPFlagPSH | TCPFlagFIN, Window: 9, Options: &sack},
		bytes.Repeat([]byte("x"), 1000),
		map[string]string{"ipv6.src": "2001:db8::1", "ipv6.hlim": "61", "ipv6.flow": "0x00beef", "tcp.len": "1000", "tcp.flags": "0x0019"})

	// IPv6 with hop-by-hop, destination options and an atomic fragment
	// header in front of a wire-built TCP segment.
	{
		s, d := mustAddr("2001:db8::1"), mustAddr("2001:db8::2")
		seg := make([]byte, 100)
		th := TCPHeader{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagACK, Window: 5, Options: &sack}
		n, _ := BuildTCP(seg, &th, []byte("ext"), PseudoHeaderSum(s, d, ProtoTCP, th.Len()+3))
		frag := ext(ProtoIPv6Frag, ProtoTCP, 8)
		binary.BigEndian.PutUint32(frag[4:], 0x01020304)
		p := cat(ext(ProtoHopByHop, ProtoIPv6Opts, 8), ext(ProtoIPv6Opts, ProtoIPv6Frag, 16), frag, seg[:n])
		buf := make([]byte, 40+len(p))
		BuildIPv6(buf, &IPv6Header{NextHeader: ProtoHopByHop, Src: s, Dst: d, PayloadLen: len(p)})
		copy(buf[40:], p)
		cs = append(cs, tsharkCase{buf, map[string]string{"ipv6.fraghdr.ident": "0x01020304", "ipv6.hopopts.nxt": "60", "ipv6.dstopts.nxt": "44", "tcp.len": "3", "tcp.srcport": "1", "tcp.checksum.status": "1", "tcp.options.sack_le": "2000,4000,6000"}})
	}

	ip4 := func(proto uint8, l4 []byte, f map[string]string) {
		buf := make([]byte, 20+len(l4))
		BuildIPv4(buf, &IPv4Header{Protocol: proto, Src: mustAddr("10.1.0.1"), Dst: mustAddr("10.1.0.2"), PayloadLen: len(l4)})
		copy(buf[20:], l4)
		f["icmp.checksum.status"] = "1"
		cs = append(cs, tsharkCase{buf, f})
	}
	ip6 := func(l4 []byte, f map[string]string) {
		buf := make([]byte, 40+len(l4))
		BuildIPv6(buf, &IPv6Header{NextHeader: ProtoICMPv6, Src: mustAddr("2001:db8::1"), Dst: mustAddr("2001:db8::2"), PayloadLen: len(l4)})
		copy(buf[40:], l4)
		f["icmpv6.checksum.status"] = "1"
		cs = append(cs, tsharkCase{buf, f})
	}
	m := make([]byte, 1500)
	n, _ := BuildICMPv4Echo(m, ICMPv4EchoRequest, 0x77, 3, []byte("abcdefgh"))
	ip4(ProtoICMP, m[:n], map[string]string{"icmp.type": "8", "icmp.ident": "119", "icmp.seq": "3"})
	n, _ = BuildICMPv4Echo(m, ICMPv4EchoReply, 0x77, 3, []byte("abcdefgh"))
	ip4(ProtoICMP, m[:n], map[string]string{"icmp.type": "0", "icmp.ident": "119", "icmp.seq": "3"})
	n, _ = BuildICMPv4FragNeeded(m, 1400, cs[0].pkt)
	ip4(ProtoICMP, m[:n], map[string]string{"icmp.type": "3", "icmp.code": "4", "icmp.mtu": "1400", "tcp.srcport": "40000"})
	n, _ = BuildICMPv6Echo(m, mustAddr("2001:db8::1"), mustAddr("2001:db8::2"), ICMPv6EchoRequest, 0x99, 4, []byte("ping6"))
	ip6(m[:n], map[string]string{"icmpv6.type": "128", "icmpv6.echo.identifier": "0x0099", "icmpv6.echo.sequence_number": "4"})
	n, _ = BuildICMPv6PacketTooBig(m, mustAddr("2001:db8::1"), mustAddr("2001:db8::2"), 1280, cs[5].pkt)
	ip6(m[:n], map[string]string{"icmpv6.type": "2", "icmpv6.mtu": "1280", "tcp.srcport": "443"})
	n, _ = BuildICMPv6Unreachable(m, mustAddr("2001:db8::1"), mustAddr("2001:db8::2"), ICMPv6PortUnreachable, cs[5].pkt[:48])
	ip6(m[:n], map[string]string{"icmpv6.type": "1", "icmpv6.code": "4"})
	return cs
}

// Packets built by wire are decoded by tshark with every checksum
// verified, no malformed or expert warnings, and the expected field values.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark not installed (required when CI=true)")
		}
		t.Skip("SKIPPING: tshark not found in PATH; install the tshark package to run this test")
	}
	cs := tsharkCases(t)
	pkts := make([][]byte, len(cs))
	for i := range cs {
		pkts[i] = cs[i].pkt
	}
	file := filepath.Join(t.TempDir(), "built.pcap")
	if err := writePcap(file, pkts); err != nil {
		t.Fatal(err)
	}
	// Union of the fields the cases check, plus checksum and expert info.
	fieldSet := map[string]bool{}
	for _, c := range cs {
		for f := range c.fields {
			fieldSet[f] = true
		}
	}
	fields := []string{"frame.number", "ip.checksum.status", "tcp.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status", "_ws.expert", "_ws.malformed", "_ws.col.Info"}
	for _, f := range fields {
		delete(fieldSet, f) // tshark prints a field given twice only once
	}
	for f := range fieldSet {
		fields = append(fields, f)
	}
	args := []string{"-n", "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-o", "tcp.relative_sequence_numbers:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(cs) {
		t.Fatalf("tshark printed %d lines for %d packets:\n%s", len(lines), len(cs), out)
	}
	for i, line := range lines {
		vals := strings.Split(line, "\t")
		get := func(f string) string {
			for j, name := range fields {
				if name == f && j < len(vals) {
					return vals[j]
				}
			}
			return ""
		}
		t.Logf("packet %d: %s", i+1, get("_ws.col.Info"))
		for _, f := range []string{"ip.checksum.status", "tcp.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status"} {
			for _, v := range strings.Split(get(f), ",") {
				if v != "" && v != "1" { // 1 = good
					t.Errorf("packet %d: %s = %q (want 1, good)", i+1, f, v)
				}
			}
		}
		if e := get("_ws.expert"); e != "" && !allowedExpert(e) {
			t.Errorf("packet %d: expert info %q", i+1, e)
		}
		if m := get("_ws.malformed"); m != "" {
			t.Errorf("packet %d: malformed %q", i+1, m)
		}
		for f, want := range cs[i].fields {
			if got := get(f); got != want {
				t.Errorf("packet %d: %s = %q, want %q", i+1, f, got, want)
			}
		}
	}
	// Expert summary as a second opinion: no errors or warnings at all.
	cmd = exec.Command(tshark, "-n", "-q", "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-z", "expert,warn")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("tshark -z expert: %v", err)
	}
	if s := string(out); strings.Contains(s, "Errors (") || strings.Contains(s, "Warnings (") {
		t.Errorf("tshark expert summary reports problems:\n%s", s)
	}
}

// allowedExpert accepts expert items of severity Chat and Note only:
// tshark comments on connection state (SYN, FIN, TFO cookie) at those
// levels; anything at Warning or Error (bad checksum, malformed option,
// ...) fails the test.
func allowedExpert(e string) bool {
	for _, part := range strings.Split(e, "Expert Info (")[1:] {
		if !strings.HasPrefix(part, "Chat/") && !strings.HasPrefix(part, "Note/") {
			return false
		}
	}
	return true
}
