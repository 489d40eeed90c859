//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestPingTUN: the stack on a TUN device pings the kernel on the device's
// host side, inside a namespace the test makes; the kernel's echo replies
// come back through the TUN.
func TestPingTUN(t *testing.T) {
	_, tun := netnsTUN(t, 9)
	var o, e bytes.Buffer
	if code := run([]string{"ping", "--tun", tun, "--addr", "10.91.0.2/24", "-c", "3", "-i", "0", "-W", "2s", "10.91.0.1"}, &o, &e); code != 0 {
		t.Fatalf("ping: exit %d\n%s%s", code, o.String(), e.String())
	}
	if !strings.Contains(o.String(), "3 packets transmitted, 3 received, 0% packet loss") {
		t.Errorf("unexpected output:\n%s", o.String())
	}
	t.Log(o.String())
}
