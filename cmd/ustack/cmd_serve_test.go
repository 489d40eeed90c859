package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSelfTest: every mode of ustack serve against its built-in
// client over an in-memory link, clean and lossy.
func TestServeSelfTest(t *testing.T) {
	for _, tc := range [][]string{
		{"--mode", "echo"},
		{"--mode", "discard"},
		{"--mode", "http"},
		{"--mode", "https"},
		{"--mode", "echo", "--loss", "0.02", "--delay", "2ms", "--size", "200000"},
		{"--mode", "https", "--loss", "0.02", "--delay", "2ms", "--size", "200000", "--sysctl", "net.ipv4.tcp_congestion_control=reno"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"serve", "--pipe"}, tc...)
		if code := run(args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d: %s%s", args, code, out.String(), errb.String())
			continue
		}
		if !strings.Contains(out.String(), "self-test ok: "+tc[1]) {
			t.Errorf("%v: %s", args, out.String())
		}
		t.Logf("%v:\n%s", args, out.String())
	}
}

func TestDialPipe(t *testing.T) {
	in := strings.Repeat("hello ustack\n", 5000)
	old := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = old }()
	var out, errb bytes.Buffer
	if code := run([]string{"dial", "--pipe", "-v", "10.0.0.2:7"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if out.String() != in {
		t.Errorf("echoed %d bytes, want the %d sent", out.Len(), len(in))
	}
	if !strings.Contains(errb.String(), "10.0.0.1:") {
		t.Errorf("-v: no connection line in %q", errb.String())
	}
}

func TestGetPipe(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"http://10.0.0.2:8080/bytes/300000", "https://10.0.0.2/bytes/300000"} {
		var out, errb bytes.Buffer
		file := filepath.Join(dir, "body")
		if code := run([]string{"get", "--pipe", "-o", file, u}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", u, code, errb.String())
		}
		b, err := os.ReadFile(file)
		if err != nil || len(b) != 300000 || !bytes.Equal(b[:52], pattern(52)) {
			t.Errorf("%s: %d bytes, %v", u, len(b), err)
		}
		if !strings.Contains(errb.String(), "200 OK: 300000 bytes") {
			t.Errorf("%s: summary %q", u, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"get", "--pipe", "-q", "http://10.0.0.2/"}, &out, &errb); code != 0 || out.String() != helloBody {
		t.Errorf("GET /: exit %d body %q err %q", code, out.String(), errb.String())
	}
	if code := run([]string{"get", "--pipe", "-q", "http://10.0.0.2/nothing"}, &out, &errb); code != 1 {
		t.Errorf("GET 404: exit %d, want 1", code)
	}
}

// TestHelpAndUsage: every new subcommand's --help works, and bad flags
// are usage errors.
func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"serve", "dial", "get", "plot", "ss", "stat"} {
		var out, errb bytes.Buffer
		if code := run([]string{cmd, "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "usage: ustack "+cmd) {
			t.Errorf("%s --help: exit %d, %q", cmd, code, errb.String())
		}
		if code := run([]string{"help", cmd}, &out, &errb); code != 0 {
			t.Errorf("help %s: exit %d", cmd, code)
		}
	}
	for _, args := range [][]string{
		{"serve"},                               // neither --tun nor --pipe
		{"serve", "--pipe", "--tun", "x"},       // both
		{"serve", "--tun", "x"},                 // no --addr
		{"serve", "--pipe", "--mode", "gopher"}, // bad mode
		{"serve", "--pipe", "--loss", "2"},      // bad loss
		{"dial", "--pipe"},                      // no address
		{"get", "--pipe", "ftp://x/"},           // bad URL
		{"ss"},                                  // no --control
		{"stat"},                                // no --control
		{"plot"},                                // no trace
		{"serve", "--pipe", "--sysctl", "nonsense"}, // not name=value
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
}
