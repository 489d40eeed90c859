package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPingPipe(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"ping", "--pipe", "-c", "3", "-i", "0", "-s", "100", "10.0.0.2"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"PING 10.0.0.2: 100 data bytes", "108 bytes from 10.0.0.2: icmp_seq=3", "3 packets transmitted, 3 received, 0% packet loss", "rtt min/avg/max"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPingNoReply(t *testing.T) {
	var out, errb bytes.Buffer
	// 10.0.0.9 is on the pipe's subnet but nobody has it.
	if code := run([]string{"ping", "--pipe", "-c", "2", "-i", "0", "-W", "50ms", "10.0.0.9"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "2 packets transmitted, 0 received, 100% packet loss") {
		t.Errorf("unexpected output:\n%s", out.String())
	}
}

func TestPingUsage(t *testing.T) {
	for _, args := range [][]string{
		{"ping", "--pipe"},
		{"ping", "--pipe", "not-an-address"},
		{"ping", "--pipe", "-c", "0", "10.0.0.2"},
		{"ping", "10.0.0.2"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
