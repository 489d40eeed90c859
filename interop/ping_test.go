package interop

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack"
)

// TestPingKernel: the kernel pings ustack over IPv4 and IPv6 through a TUN
// device in a fresh namespace; the capture must be clean for tshark.
func TestPingKernel(t *testing.T) {
	n := NewNetns(t, NetnsConfig{})
	requireTool(t, "ping")
	ep, capPath, f := n.Capture(t, "ping.pcap")
	s := n.NewStack(t, ep, ustack.Config{})

	out := n.Exec(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", n.Stack4.Addr().String())
	if !strings.Contains(out, "3 received") {
		t.Errorf("IPv4 ping:\n%s", out)
	}
	out = n.Exec(t, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", n.Stack6.Addr().String())
	if !strings.Contains(out, "3 received") {
		t.Errorf("IPv6 ping:\n%s", out)
	}
	// A larger payload crosses the full MTU (1500 - 28).
	out = n.Exec(t, "ping", "-c", "1", "-W", "2", "-s", "1472", "-M", "do", n.Stack4.Addr().String())
	if !strings.Contains(out, "1 received") {
		t.Errorf("IPv4 ping with 1472-byte payload:\n%s", out)
	}
	st := s.Stats()
	if st.ICMP.OutEchoReps != 4 || st.ICMP6.OutEchoReps != 3 {
		t.Errorf("echo replies v4 %d (want 4) v6 %d (want 3)", st.ICMP.OutEchoReps, st.ICMP6.OutEchoReps)
	}
	t.Logf("stats: IP %+v\nICMP %+v\nICMP6 %+v", st.IP, st.ICMP, st.ICMP6)
	s.Close()
	f.Close()
	checkCapture(t, capPath, 14)
	if t.Failed() {
		return
	}
	// The check must be able to fail: corrupt one reply's ICMP checksum.
	corrupt := filepath.Join(t.TempDir(), "corrupt.pcap")
	b, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the records (24-byte file header, 16-byte record headers) to the
	// first IPv4 ICMP packet and flip bits of its ICMP checksum.
	corrupted := false
	for off := 24; off+16 <= len(b) && !corrupted; {
		incl := int(binary.LittleEndian.Uint32(b[off+8:]))
		pkt := b[off+16 : off+16+incl]
		if len(pkt) > 24 && pkt[0] == 0x45 && pkt[9] == 1 {
			pkt[22] ^= 0x5a
			corrupted = true
		}
		off += 16 + incl
	}
	if !corrupted {
		t.Fatal("no IPv4 ICMP packet in the capture")
	}
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bad, _ := stdout("tshark", "-r", corrupt, "-n", "-Y", "_ws.expert.severity >= warning")
	if strings.TrimSpace(bad) == "" {
		t.Error("tshark did not flag a corrupted ICMP checksum: the capture check is blind")
	}
}

// checkCapture runs tshark over a capture with checksum validation on and
// fails on any malformed packet or bad checksum. minPackets guards against
// an empty capture passing.
func checkCapture(t *testing.T, path string, minPackets int) {
	t.Helper()
	requireTool(t, "tshark")
	// ICMP and ICMPv6 checksums are always verified by tshark.
	args := []string{"-r", path, "-n",
		"-o", "ip.check_checksum:TRUE",
		"-o", "tcp.check_checksum:TRUE",
	}
	list, err := stdout("tshark", args...)
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, list)
	}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) < minPackets {
		t.Errorf("capture has %d packets, want >= %d:\n%s", len(lines), minPackets, list)
	}
	// Malformed packets, bad checksums (status 0 = bad) and expert
	// warnings fail the check; RSTs are warnings for Wireshark but normal
	// (curl resets TLS connections it leaves with unread data).
	filter := "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0 || " +
		"icmp.checksum.status == 0 || icmpv6.checksum.status == 0 || " +
		"(_ws.expert.severity >= warning && !tcp.connection.rst)"
	bad, err := stdout("tshark", append(args, "-Y", filter)...)
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, bad)
	}
	if strings.TrimSpace(bad) != "" {
		t.Errorf("tshark flags packets as malformed or with warnings:\n%s\nfull capture:\n%s", bad, list)
	}
	expert, _ := stdout("tshark", append(args, "-q", "-z", "expert,warn")...)
	if strings.Contains(expert, "Bad checksum") || strings.Contains(expert, "Malformed") {
		t.Errorf("tshark expert info:\n%s", expert)
	}
}
