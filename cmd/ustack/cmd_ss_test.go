package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/control"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// twoStacks joins two stacks over an in-memory pipe: 10.0.0.1 and 10.0.0.2.
func twoStacks(t *testing.T) (a, b *ustack.Stack) {
	t.Helper()
	pa, pb := link.Pipe(1500)
	var err error
	if a, err = ustack.New(ustack.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = ustack.New(ustack.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.AddInterface("eth0", pa, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInterface("eth0", pb, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSSAndStat(t *testing.T) {
	client, server := twoStacks(t)
	ln, err := server.Listen("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		buf := make([]byte, 5000)
		_, err = io.ReadFull(c, buf)
		accepted <- err
		// keep c open: the test inspects the established connection
	}()
	c, err := client.Dial("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte("x"), 5000)); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}

	sock := serveControl(t, server)

	var out, errb bytes.Buffer
	if code := run([]string{"ss", "--control", sock, "--all"}, &out, &errb); code != 0 {
		t.Fatalf("ss: exit %d: %s", code, errb.String())
	}
	t.Logf("ustack ss:\n%s", out.String())
	s := out.String()
	if strings.Contains(s, "\x1b[") {
		t.Errorf("colour escape codes in non-terminal output")
	}
	var estab string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "ESTAB") {
			estab = line
		}
	}
	if estab == "" || !strings.Contains(estab, "10.0.0.2:7") || !strings.Contains(estab, "10.0.0.1:") {
		t.Errorf("no ESTAB line for 10.0.0.2:7 <- 10.0.0.1 in:\n%s", s)
	}
	for _, want := range []string{"LISTEN", "cwnd:", "rtt:", "bytes_received:5000"} {
		if !strings.Contains(s, want) {
			t.Errorf("ss output lacks %q", want)
		}
	}

	out.Reset()
	if code := run([]string{"ss", "--control", sock, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("ss --json: exit %d: %s", code, errb.String())
	}
	var conns []control.Conn
	if err := json.Unmarshal(out.Bytes(), &conns); err != nil {
		t.Fatalf("ss --json: %v\n%s", err, out.String())
	}
	if len(conns) != 1 || conns[0].State != "ESTAB" || conns[0].BytesRecv != 5000 || conns[0].Cwnd <= 0 {
		t.Errorf("ss --json = %+v, want one ESTAB connection with 5000 bytes received", conns)
	}

	out.Reset()
	if code := run([]string{"stat", "--control", sock}, &out, &errb); code != 0 {
		t.Fatalf("stat: exit %d: %s", code, errb.String())
	}
	t.Logf("ustack stat:\n%s", out.String())
	for _, want := range []string{"TcpPassiveOpens", "TcpCurrEstab", "TcpInSegs", "IpInReceives"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stat output lacks %s", want)
		}
	}
	out.Reset()
	if code := run([]string{"stat", "--control", sock, "--json", "--zeros"}, &out, &errb); code != 0 {
		t.Fatalf("stat --json: exit %d: %s", code, errb.String())
	}
	var m map[string]uint64
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["TcpPassiveOpens"] != 1 || m["TcpCurrEstab"] != 1 || m["TcpActiveOpens"] != 0 {
		t.Errorf("stat --json: PassiveOpens %d CurrEstab %d ActiveOpens %d, want 1 1 0", m["TcpPassiveOpens"], m["TcpCurrEstab"], m["TcpActiveOpens"])
	}
	if _, ok := m["TcpExtTCPFastRetrans"]; !ok {
		t.Errorf("stat --json --zeros lacks TcpExtTCPFastRetrans")
	}

	// A missing socket is a clear failure, not a hang.
	errb.Reset()
	if code := run([]string{"ss", "--control", filepath.Join(t.TempDir(), "none")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no such file") {
		t.Errorf("ss on a missing socket: exit %d, %q", code, errb.String())
	}
}

func TestSSColour(t *testing.T) {
	conns := []control.Conn{{Local: "10.0.0.2:80", State: "LISTEN"}, {Local: "10.0.0.2:80", Remote: "10.0.0.1:9", State: "ESTAB", Cwnd: 10}}
	var plain, colour bytes.Buffer
	writeSS(&plain, conns, false)
	writeSS(&colour, conns, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without a terminal")
	}
	if !strings.Contains(colour.String(), "\x1b[32mESTAB") || !strings.Contains(colour.String(), "\x1b[0m") {
		t.Errorf("no colour on a terminal: %q", colour.String())
	}
	if isTerminal(&plain) {
		t.Error("a bytes.Buffer is not a terminal")
	}
}

// The bbr:(...) part of the info line, spelled like ss prints Linux's
// INET_DIAG_BBRINFO, with the state after it; CUBIC adds nothing.
func TestSSCCInfo(t *testing.T) {
	c := control.Conn{State: "ESTAB", Cwnd: 10, CC: "bbr", CCState: "PROBE_BW_UP", BwEstimate: 11_762_500,
		CCMinRTT: 20.1, PacingGain: 1.25, CwndGain: 2, InflightHi: 180, BwLo: 8_250_000}
	const want = " bbr:(bw:94.1Mbps,mrtt:20.1,pacing_gain:1.25,cwnd_gain:2) bbr_state:PROBE_BW_UP bw_lo:66.0Mbps inflight_hi:180"
	if got := infoLine(c); !strings.HasSuffix(got, want) {
		t.Errorf("info line\n%s\ndoes not end in\n%s", got, want)
	}
	if got := infoLine(control.Conn{State: "ESTAB", CC: "cubic"}); strings.Contains(got, "cubic") {
		t.Errorf("cubic info line %q shows a cc part", got)
	}
	for v, want := range map[int64]string{900: "900bps", 812_000: "812.0kbps", 94_100_000: "94.1Mbps", 2_500_000_000: "2.5Gbps"} {
		if got := bps(v); got != want {
			t.Errorf("bps(%d) = %s, want %s", v, got, want)
		}
	}
}

// ss against a running stack whose connection runs BBR: the sender's
// info line carries bbr:(bw,mrtt,pacing_gain,cwnd_gain) and bbr_state, and
// --json the same fields.
func TestSSBBR(t *testing.T) {
	tc := tcp.DefaultConfig()
	if err := tc.Set("net.ipv4.tcp_congestion_control", "bbr"); err != nil {
		t.Fatal(err)
	}
	pa, pb := link.Pipe(1500)
	client, err := ustack.New(ustack.Config{TCP: tc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if err := client.AddInterface("eth0", pa, netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := server.AddInterface("eth0", pb, netip.MustParsePrefix("10.0.0.2/24")); err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 4 << 20
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		_, err = io.ReadFull(c, make([]byte, size))
		got <- err
		// keep c open: the test inspects the established connection
	}()
	c, err := client.Dial("tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte("x"), size)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	sock := serveControl(t, client)
	var out, errb bytes.Buffer
	if code := run([]string{"ss", "--control", sock}, &out, &errb); code != 0 {
		t.Fatalf("ss: exit %d: %s", code, errb.String())
	}
	t.Logf("ustack ss:\n%s", out.String())
	re := regexp.MustCompile(` bbr:\(bw:[0-9.]+[kMG]?bps,mrtt:[0-9.]+,pacing_gain:[0-9.]+,cwnd_gain:[0-9.]+\) bbr_state:(STARTUP|DRAIN|PROBE_BW_(DOWN|CRUISE|REFILL|UP)|PROBE_RTT)`)
	if !re.MatchString(out.String()) {
		t.Errorf("ss output has no bbr:(...) bbr_state: field matching %s", re)
	}
	out.Reset()
	if code := run([]string{"ss", "--control", sock, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("ss --json: exit %d: %s", code, errb.String())
	}
	var conns []control.Conn
	if err := json.Unmarshal(out.Bytes(), &conns); err != nil {
		t.Fatalf("ss --json: %v\n%s", err, out.String())
	}
	if len(conns) != 1 {
		t.Fatalf("ss --json: %d connections, want 1", len(conns))
	}
	cj := conns[0]
	if cj.CC != "bbr" || cj.CCState == "" || cj.BwEstimate <= 0 || cj.CCMinRTT <= 0 || cj.PacingGain <= 0 || cj.CwndGain <= 0 || cj.PacingRate <= 0 {
		t.Errorf("ss --json: %+v, want cc bbr with a state, bw estimate, min RTT, gains and a pacing rate", cj)
	}
	for _, k := range []string{`"cc": "bbr"`, `"cc_state":`, `"bw_estimate":`, `"pacing_gain":`, `"cwnd_gain":`, `"cc_minrtt_ms":`} {
		if !strings.Contains(out.String(), k) {
			t.Errorf("ss --json lacks %s", k)
		}
	}
}

// serveControl serves s's control socket until the test ends and returns
// the socket's path.
func serveControl(t *testing.T, s *ustack.Stack) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	srv, err := control.Listen(sock, s)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return sock
}
