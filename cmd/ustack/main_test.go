package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/sim"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestDemo(t *testing.T) {
	code, out, errOut := runCmd("demo")
	if code != 0 {
		t.Fatalf("ustack demo exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"timeline",
		"A:49152  state  CLOSED -> SYN-SENT",
		"A:49152  state  SYN-SENT -> ESTABLISHED",
		"B:80     state  LISTEN -> SYN-RECEIVED",
		"[RETRANSMISSION]", // seed 1 loses data segments on the way
		"[random loss]",
		"transfer summary",
		"bytes received:   200088",
		"virtual duration:",
		"goodput:",
		"retransmissions:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Same seed, same output.
	_, again, _ := runCmd("demo")
	if again != out {
		t.Error("two demo runs with the default seed printed different output")
	}
}

func TestDemoPcapAndJSON(t *testing.T) {
	f := filepath.Join(t.TempDir(), "demo.pcap")
	code, out, errOut := runCmd("demo", "--json", "--pcap", f, "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, `{"t":0.000000,`) {
		t.Errorf("--json output does not start with a JSON event: %.100q", out)
	}
	st, err := os.Stat(f)
	if err != nil || st.Size() < 24 {
		t.Errorf("pcap not written: %v", err)
	}
}

// The real-time demo: net/http over two ustack stacks on an in-memory link.
func TestDemoReal(t *testing.T) {
	f := filepath.Join(t.TempDir(), "real.pcap")
	code, out, errOut := runCmd("demo", "--real", "--loss", "0", "--delay", "1ms", "--size", "100000", "--timeout", "30s", "--pcap", f)
	if code != 0 {
		t.Fatalf("ustack demo --real exited %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"200 OK, 100000 body bytes", "goodput:", "retransmissions:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --real output lacks %q:\n%s", want, out)
		}
	}
	if st, err := os.Stat(f); err != nil || st.Size() < 100000 {
		t.Errorf("--real --pcap: %v (want a capture of the transfer)", err)
	}
	if code, _, _ := runCmd("demo", "--real", "--json"); code != 2 {
		t.Errorf("demo --real --json: exit %d, want 2", code)
	}
}

func TestCopyRouted(t *testing.T) {
	code, out, errOut := runCmd("copy", "--help")
	if code == 1 || !strings.Contains(out+errOut, "ustack copy") {
		t.Errorf("copy --help: exit %d, output %q", code, out+errOut)
	}
}

func TestDrillRouted(t *testing.T) {
	code, out, errOut := runCmd("drill", "../../drill/testdata/drill/close-active.pkt")
	if !strings.Contains(out, "close-active.pkt") || code == 2 {
		t.Errorf("drill script: exit %d, %s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd("drill"); code != 2 || !strings.Contains(errOut, "usage: ustack drill") {
		t.Errorf("drill without scripts: exit %d, %q", code, errOut)
	}
}

func TestSimAll(t *testing.T) {
	code, out, errOut := runCmd("sim", "--all")
	if code != 0 {
		t.Fatalf("sim --all: exit %d %s", code, errOut)
	}
	for _, want := range []string{"syn-timeout           A:49152 CLOSED 127.000s ETIMEDOUT", "refused               A:49152 CLOSED 0.020s ECONNREFUSED"} {
		if !strings.Contains(out, want) {
			t.Errorf("sim --all lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != len(sim.Scenarios()) {
		t.Errorf("sim --all printed %d lines for %d scenarios", n, len(sim.Scenarios()))
	}
}

func TestSimSysctl(t *testing.T) {
	code, out, errOut := runCmd("sim", "syn-timeout", "--sysctl", "net.ipv4.tcp_syn_retries=3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "15.000000  A:49152  error  ETIMEDOUT (connection timed out)") {
		t.Errorf("with tcp_syn_retries=3 the connect should time out at 15 s:\n%s", out)
	}
	code, out, _ = runCmd("sim", "--brief", "syn-timeout")
	if code != 0 || strings.Contains(out, "recv") || !strings.Contains(out, "[RETRANSMISSION]") {
		t.Errorf("sim --brief: exit %d, want highlights only:\n%s", code, out)
	}
	code, out, _ = runCmd("sim", "close", "--delay", "50ms", "--brief")
	if code != 0 || !strings.Contains(out, "0.100000  A:49152  state  SYN-SENT -> ESTABLISHED") {
		t.Errorf("sim close --delay 50ms: exit %d, want the handshake done at 100 ms:\n%s", code, out)
	}
	code, out, _ = runCmd("sim", "close", "--ipv6", "--brief")
	if code != 0 || !strings.Contains(out, "connect [fd00::2]:80") || !strings.Contains(out, "mss 1440") {
		t.Errorf("sim close --ipv6: exit %d:\n%s", code, out)
	}
	if code, _, _ := runCmd("sim", "close", "--loss", "2"); code != 2 {
		t.Errorf("--loss 2: exit %d, want 2", code)
	}
	code, out, _ = runCmd("sim", "--seed", "2", "close", "--json")
	if code != 0 || !strings.Contains(out, `"to":"TIME-WAIT"`) {
		t.Errorf("sim close --json: exit %d, no TIME-WAIT in\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runCmd(); code != 2 || !strings.Contains(errOut, "usage: ustack") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and usage", code, errOut)
	}
	if code, _, errOut := runCmd("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q; want 2", code, errOut)
	}
	if code, out, _ := runCmd("help"); code != 0 || !strings.Contains(out, "demo") || !strings.Contains(out, "sim") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	for _, c := range []string{"demo", "sim", "copy", "ss", "stat"} {
		code, _, errOut := runCmd(c, "--help")
		if code != 0 || !strings.Contains(errOut, "usage: ustack "+c) {
			t.Errorf("%s --help: exit %d, %q", c, code, errOut)
		}
	}
	for _, bad := range [][]string{{"--size", "0"}, {"--size", "99999999999"}, {"--loss", "1.5"}, {"--delay", "-1s"}, {"--rate", "-5"}, {"extra"}} {
		if code, _, _ := runCmd(append([]string{"demo"}, bad...)...); code != 2 {
			t.Errorf("demo %v: exit %d, want 2", bad, code)
		}
	}
	if code, _, _ := runCmd("demo", "--bogus"); code != 2 {
		t.Errorf("demo --bogus: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd("sim", "no-such-scenario"); code != 2 || !strings.Contains(errOut, "unknown scenario") {
		t.Errorf("sim no-such-scenario: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCmd("sim"); code != 2 {
		t.Errorf("sim without scenario: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd("sim", "syn-timeout", "--sysctl", "net.ipv4.tcp_no_such=1"); code != 1 || errOut == "" {
		t.Errorf("bad sysctl: exit %d, %q; want 1 and an error", code, errOut)
	}
}

func TestSimList(t *testing.T) {
	code, out, _ := runCmd("sim", "--list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, sc := range sim.Scenarios() {
		if !strings.Contains(out, sc.Name) {
			t.Errorf("--list lacks %s", sc.Name)
		}
	}
	for _, name := range []string{"syn-timeout", "synack-loss", "ack-loss-keepalive", "ack-loss-retries2", "fast-retransmit", "zero-window", "close", "simultaneous-close"} {
		if _, ok := sim.Lookup(name); !ok {
			t.Errorf("scenario %s missing", name)
		}
	}
}

// TestSimEngineTrace: --engine-trace writes the engines' own events as
// JSON lines, starting with each side's constructor transition.
func TestSimEngineTrace(t *testing.T) {
	f := filepath.Join(t.TempDir(), "engine.jsonl")
	code, _, errOut := runCmd("sim", "fastopen", "--engine-trace", f)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		var e struct{ Time, Local, Kind, State, Prev, Reason string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if e.Kind == "state" {
			seen[e.Local+" "+e.Prev+" -> "+e.State] = true
		}
		if e.Kind == "send" || e.Kind == "fastopen" {
			seen[e.Reason] = true
		}
	}
	for _, want := range []string{
		"10.0.0.1:49152 CLOSED -> SYN-SENT", "10.0.0.2:80 LISTEN -> SYN-RECEIVED",
		"tfo-cookie", "tfo-syn-data", "tfo-syn-data-accepted", "tfo-data-acked",
	} {
		if !seen[want] {
			t.Errorf("engine trace lacks %q (%d lines)", want, len(lines))
		}
	}
	if !strings.HasPrefix(lines[0], `{"time":"2026-01-01T00:00:00Z"`) {
		t.Errorf("first line %s: want virtual time from the sim's epoch", lines[0])
	}
	if code, _, _ := runCmd("demo", "--real", "--engine-trace", f); code != 2 {
		t.Errorf("demo --real --engine-trace exited %d, want 2 (usage)", code)
	}
}

// TestSimScenarioFile: ustack sim runs a scenario file; --file-help shows
// the format; a bad file is a usage error naming the line.
func TestSimScenarioFile(t *testing.T) {
	code, out, errOut := runCmd("sim", "../../sim/testdata/scenarios/syn-timeout-3.scn", "--brief")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"every SYN from A is lost; A has tcp_syn_retries=3",
		"7.000000  A:49152  send   > S ",
		"15.000000  A:49152  error  ETIMEDOUT",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runCmd("sim", "--file-help"); code != 0 || !strings.Contains(out, "at T HOST ACTION") {
		t.Errorf("--file-help exited %d:\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.scn")
	os.WriteFile(bad, []byte("listen B 80 echo\nat 1s A fly\n"), 0o644)
	if code, _, errOut := runCmd("sim", bad); code != 2 || !strings.Contains(errOut, "line 2: unknown action") {
		t.Errorf("bad file: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCmd("sim", "no-such-scenario"); code != 2 || !strings.Contains(errOut, "not a readable scenario file") {
		t.Errorf("unknown name: exit %d, %s", code, errOut)
	}
}

// TestSimPcapNG: --pcapng writes the capture as pcapng (section header
// block magic first).
func TestSimPcapNG(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.pcapng")
	if code, _, errOut := runCmd("sim", "close", "--pcap", f, "--pcapng"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(f)
	if err != nil || len(b) < 100 || !bytes.HasPrefix(b, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		t.Fatalf("not pcapng (%d bytes, %v): % x", len(b), err, b[:min(len(b), 8)])
	}
	if code, _, _ := runCmd("demo", "--real", "--pcapng", "--pcap", f); code != 2 {
		t.Errorf("demo --real --pcapng exited %d, want 2", code)
	}
}
