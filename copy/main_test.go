package tcpcopy

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMainUsage(t *testing.T) {
	code, out, errOut := runMain("--help")
	if code != 0 || !strings.Contains(errOut, "usage: ustack copy") || !strings.Contains(errOut, "-concurrency") || out != "" {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"file.pcap"}, 2, "no target"},
		{[]string{"-x", "80-127.0.0.1:8080"}, 2, "give capture files or -i IFACE"},
		{[]string{"-x", "80-nonsense", "f.pcap"}, 2, "bad mapping"},
		{[]string{"-x", "127.0.0.1:1", "--filter", "port eighty", "f.pcap"}, 2, "bad port"},
		{[]string{"-x", "127.0.0.1:1", "--filter", "frobnicate 1", "f.pcap"}, 2, "unknown term"},
		{[]string{"-x", "127.0.0.1:1", "--copies", "0", "f.pcap"}, 2, "--copies"},
		{[]string{"-x", "127.0.0.1:1", "--no-such-flag", "f.pcap"}, 2, "flag provided but not defined"},
		{[]string{"-x", "127.0.0.1:1", filepath.Join(t.TempDir(), "missing.pcap")}, 1, "no such file"},
	} {
		code, _, errOut := runMain(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d stderr %q, want exit %d containing %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestMainCorruptFileStillReports(t *testing.T) {
	path := synthCapture(t)
	data, _ := os.ReadFile(path)
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	os.WriteFile(cut, data[:len(data)-30], 0o644)
	srv := startRecServer(t, "127.0.0.1:0", false)
	// Flags after the file name work too.
	code, out, errOut := runMain(cut, "-x", srv.addr(), "--fast")
	if code != 1 || !strings.Contains(errOut, cut+": packet ") || !strings.Contains(errOut, "truncated in the middle of the packet") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	// The sessions before the damage were still replayed and reported.
	if !strings.Contains(out, "replay: 4 sessions, 4 connections") {
		t.Errorf("report:\n%s", out)
	}
}

func TestMainFilterAndCopies(t *testing.T) {
	path := synthCapture(t)
	srv := startRecServer(t, "127.0.0.1:0", false)
	code, out, errOut := runMain("-x", "80-"+srv.addr(), "--filter", "port 80 and not client 10.0.0.3", "--copies", "2", "--fast", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Sessions: 1 (10.0.0.1 -> :80) and 3 (IPv6 -> :80) pass; 2 (:7000)
	// and 4 (client 10.0.0.3) are filtered out.
	if !strings.Contains(out, "2 sessions (2 filtered out)") || !strings.Contains(out, "replay: 2 sessions, 4 connections") || !strings.Contains(out, "identical 4, differs 0") {
		t.Errorf("report:\n%s", out)
	}
	sessions := readSessions(t, path)
	sameStreams(t, srv.recorded(t, 4), []*Session{sessions[0], sessions[2]}, 2)
	// Unmapped ports are skipped and said so.
	code, out, _ = runMain("-x", "80-"+srv.addr(), "--fast", "--fail-on-diff", path)
	if code != 3 || !strings.Contains(out, "skipped 1: no target for server port") {
		t.Errorf("exit %d report:\n%s", code, out)
	}
}

func TestParseFilter(t *testing.T) {
	c := netip.MustParseAddrPort("192.168.1.5:5000")
	s := netip.MustParseAddrPort("10.1.2.3:443")
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"", true},
		{"port 443", true},
		{"port 80", false},
		{"port 400-500", true},
		{"client 192.168.0.0/16", true},
		{"client 10.0.0.0/8", false},
		{"server 10.1.2.3", true},
		{"host 10.1.2.3 and port 443", true},
		{"port 80 or port 443", true},
		{"port 80 or port 81 and port 443", false},
		{"not port 80", true},
		{"not not port 80", false},
		{"port 443 and not client 192.168.1.5", false},
	} {
		f, err := ParseFilter(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := f(c, s); got != tc.want {
			t.Errorf("%q = %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{"port", "port x", "port 9-1", "client nope", "port 80 port 81", "not"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPortMap(t *testing.T) {
	var m PortMap
	if err := m.Set("80-127.0.0.1:8080, 443-[::1]:8443"); err != nil {
		t.Fatal(err)
	}
	if err := m.Set("localhost:9000"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		port uint16
		want string
	}{{80, "127.0.0.1:8080"}, {443, "[::1]:8443"}, {22, "localhost:9000"}} {
		got, ok := m.Target(&Session{Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), tc.port)})
		if !ok || got != tc.want {
			t.Errorf("port %d -> %q %v, want %q", tc.port, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"80-", "80-host", "x-1.2.3.4", "80-1.2.3.4:99999"} {
		var m PortMap
		if err := m.Set(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(timeMicro(i))
	}
	for _, tc := range []struct {
		q    float64
		want int
	}{{0.5, 500}, {0.9, 900}, {0.99, 990}} {
		got := h.quantile(tc.q)
		lo, hi := timeMicro(tc.want)*97/100, timeMicro(tc.want)*103/100
		if got < lo || got > hi {
			t.Errorf("q%.2f = %v, want %v within 3%%", tc.q, got, timeMicro(tc.want))
		}
	}
	if h.quantile(1) != timeMicro(1000) || h.summary().N != 1000 {
		t.Errorf("max %v n %d", h.quantile(1), h.summary().N)
	}
}

func timeMicro(i int) time.Duration { return time.Duration(i) * time.Microsecond }

func TestMainList(t *testing.T) {
	path := synthCapture(t)
	code, out, errOut := runMain("--list", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "1\t10.0.0.1:40001 -> 10.0.0.2:80\t") || !strings.Contains(lines[1], "3 exchanges") ||
		!strings.HasPrefix(lines[3], "3\t[fd00::1]:40003 -> [fd00::2]:80\t") {
		t.Errorf("list:\n%s", out)
	}
}

func TestSample(t *testing.T) {
	all := func(netip.AddrPort, netip.AddrPort) bool { return true }
	f := sampled(all, 25)
	kept := 0
	for i := 0; i < 4000; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(30000+i))
		if f(c, srv4) {
			kept++
		}
		if f(c, srv4) != f(c, srv4) {
			t.Fatal("sampling not deterministic")
		}
	}
	if kept < 850 || kept > 1150 {
		t.Errorf("kept %d of 4000 at 25%%", kept)
	}
	if code, _, errOut := runMain("-x", "127.0.0.1:1", "--sample", "0", "f.pcap"); code != 2 || !strings.Contains(errOut, "--sample") {
		t.Errorf("--sample 0: exit %d %q", code, errOut)
	}
}
