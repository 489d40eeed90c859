package sim

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tsharkPacket is what tshark says about one packet.
type tsharkPacket struct {
	Frame      string
	Flags      string // tcp.flags.str
	Retransmit bool   // tcp.analysis.retransmission (fast_, spurious_) or out_of_order
	DupAck     bool   // tcp.analysis.duplicate_ack
	BadSum     bool   // ip or tcp checksum bad
	Malformed  bool
}

// requireTshark returns tshark's path, or skips (fails under CI=true).
func requireTshark(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is required under CI=true (apt-get install tshark)")
		}
		t.Skip("SKIPPING: tshark not installed; the pcap is not checked by an independent dissector")
	}
	return p
}

// tsharkRead dissects pcap with checksum validation on.
func tsharkRead(t *testing.T, pcap []byte) []tsharkPacket {
	t.Helper()
	bin := requireTshark(t)
	f := filepath.Join(t.TempDir(), "trace.pcap")
	if err := os.WriteFile(f, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-r", f,
		"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tcp.desegment_tcp_streams:FALSE", "-o", "tcp.analyze_sequence_numbers:TRUE",
		"-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "tcp.flags.str",
		"-e", "tcp.analysis.retransmission", "-e", "tcp.analysis.fast_retransmission",
		"-e", "tcp.analysis.duplicate_ack", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
		"-e", "_ws.malformed", "-e", "_ws.expert.message",
		"-e", "tcp.analysis.out_of_order", "-e", "tcp.analysis.spurious_retransmission")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	var pkts []tsharkPacket
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		for len(f) < 11 {
			f = append(f, "")
		}
		p := tsharkPacket{
			Frame: f[0],
			Flags: f[1],
			// The capture is taken at the sender, so a retransmission sent
			// right after new data is "out-of-order" to tshark.
			Retransmit: f[2] != "" || f[3] != "" || f[9] != "" || f[10] != "",
			DupAck:     f[4] != "",
			BadSum:     f[5] == "0" || f[6] == "0",
			Malformed:  f[7] != "" || strings.Contains(strings.ToLower(f[8]), "malformed"),
		}
		pkts = append(pkts, p)
	}
	return pkts
}

// checkPcapClean fails if tshark finds a malformed packet or bad checksum.
func checkPcapClean(t *testing.T, pkts []tsharkPacket) {
	t.Helper()
	for _, p := range pkts {
		if p.BadSum {
			t.Errorf("tshark: frame %s has a bad checksum", p.Frame)
		}
		if p.Malformed {
			t.Errorf("tshark: frame %s is malformed", p.Frame)
		}
	}
}

func TestTsharkReadsResetPcap(t *testing.T) {
	requireTshark(t)
	e := NewEnv(1, Impairment{Delay: 5 * ms}, Impairment{Delay: 5 * ms})
	var pcap bytes.Buffer
	if err := e.Sim.CapturePcap(&pcap); err != nil {
		t.Fatal(err)
	}
	// A SYN built by the host itself (so it is captured) to a closed port.
	e.Sim.At(0, func() {
		p, err := parsePacket(synPacket(t, netipAP("10.0.0.1:40000"), netipAP("10.0.0.2:81"), 5))
		if err != nil {
			t.Fatal(err)
		}
		e.A.transmit(p.src, p.dst, &p.seg)
	})
	if err := e.Sim.Run(time.Minute); err != nil {
		t.Fatal(err)
	}
	pkts := tsharkRead(t, pcap.Bytes())
	if len(pkts) != 2 {
		t.Fatalf("tshark read %d packets, want SYN and RST", len(pkts))
	}
	checkPcapClean(t, pkts)
	if !strings.Contains(pkts[0].Flags, "S") || !strings.Contains(pkts[1].Flags, "R") {
		t.Errorf("tshark flags %q %q, want SYN then RST", pkts[0].Flags, pkts[1].Flags)
	}
}

// TestTsharkReadsPcapNG: the pcapng capture of a scenario holds the same
// packets as its pcap, tshark dissects them alike, and each packet's
// interface is the host that sent it.
func TestTsharkReadsPcapNG(t *testing.T) {
	bin := requireTshark(t)
	var pcap, ng bytes.Buffer
	if _, err := RunScenario("fast-retransmit", Options{Seed: 1, Pcap: &pcap}); err != nil {
		t.Fatal(err)
	}
	r, err := RunScenario("fast-retransmit", Options{Seed: 1, Pcap: &ng, PcapNG: true})
	if err != nil {
		t.Fatal(err)
	}
	a, b := tsharkRead(t, pcap.Bytes()), tsharkRead(t, ng.Bytes())
	checkPcapClean(t, b)
	if len(a) != len(b) || len(b) == 0 {
		t.Fatalf("pcap has %d packets, pcapng %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("packet %d: pcap %+v, pcapng %+v", i+1, a[i], b[i])
		}
	}
	f := filepath.Join(t.TempDir(), "trace.pcapng")
	if err := os.WriteFile(f, ng.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-r", f, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.time_epoch")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var sends []*Event
	for i := range r.Sim.Trace().Events {
		if e := &r.Sim.Trace().Events[i]; e.Kind == KindSend {
			sends = append(sends, e)
		}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(sends) {
		t.Fatalf("%d packets in the pcapng, %d send events", len(lines), len(sends))
	}
	for i, l := range lines {
		name, ts, _ := strings.Cut(l, "\t")
		want := Epoch.Add(sends[i].T)
		if name != sends[i].Host || ts != fmt.Sprintf("%d.%09d", want.Unix(), want.Nanosecond()) {
			t.Errorf("packet %d: interface %q at %s, want %s at %d.%09d", i+1, name, ts, sends[i].Host, want.Unix(), want.Nanosecond())
		}
	}
}
