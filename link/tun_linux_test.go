//go:build linux

package link

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// icmpEcho builds an IPv4 ICMP echo request src -> dst.
func icmpEcho(src, dst [4]byte, id, seq uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = 1
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[10:], csum(p[:20], 0))
	p[20] = 8 // echo request
	binary.BigEndian.PutUint16(p[24:], id)
	binary.BigEndian.PutUint16(p[26:], seq)
	copy(p[28:], payload)
	binary.BigEndian.PutUint16(p[22:], csum(p[20:], 0))
	return p
}

func TestTUNInNamespace(t *testing.T) {
	t.Run("ReadPacket", func(t *testing.T) { testTUNInNamespace(t, false, false) })
	t.Run("ReadPackets", func(t *testing.T) { testTUNInNamespace(t, true, false) })
	t.Run("Offload/ReadPacket", func(t *testing.T) { testTUNInNamespace(t, false, true) })
	t.Run("Offload/ReadPackets", func(t *testing.T) { testTUNInNamespace(t, true, true) })
}

func testTUNInNamespace(t *testing.T, batch, offload bool) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING TUN test: needs root (creates a TUN device and a network namespace)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIPPING TUN test: iproute2 'ip' not installed")
	}
	ns := "ustack-link-" + randHex(4)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	name := "ustl" + randHex(4)
	const mtu = 1400
	var tun *TUN
	if offload {
		var err error
		if tun, err = OpenTUNConfig(TUNConfig{Name: name, MTU: mtu, Offload: true}); err != nil {
			t.Fatal(err)
		}
	} else {
		ep, err := OpenTUN(name, mtu)
		if err != nil {
			t.Fatal(err)
		}
		tun = ep.(*TUN)
	}
	t.Cleanup(func() { tun.Close() })
	if tun.Name() != name || tun.MTU() != mtu {
		t.Fatalf("Name %q MTU %d", tun.Name(), tun.MTU())
	}
	if b, err := os.ReadFile("/sys/class/net/" + name + "/mtu"); err != nil || strings.TrimSpace(string(b)) != "1400" {
		t.Fatalf("kernel MTU %q, %v", b, err)
	}
	// Move the device into the namespace; configure it only there.
	run(t, "ip", "link", "set", "dev", name, "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	if out := run(t, "ip", "-n", ns, "link", "show", name); !strings.Contains(out, "mtu 1400") {
		t.Fatalf("MTU not set in namespace: %s", out)
	}

	pkts := make(chan []byte, 64)
	readErr := make(chan error, 1)
	go func() {
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, mtu)
		}
		sizes := make([]int, 8)
		for {
			var n int
			var err error
			if batch {
				n, err = tun.ReadPackets(bufs, sizes)
			} else {
				sizes[0], err = tun.ReadPacket(bufs[0])
				n = 1
			}
			if err != nil {
				readErr <- err
				return
			}
			for i := range n {
				pkts <- append([]byte(nil), bufs[i][:sizes[i]]...)
			}
		}
	}()
	// waitFor returns the first IPv4 packet matching f, skipping others
	// (IPv6 router solicitations, MLD ...).
	waitFor := func(what string, f func(p []byte) bool) []byte {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case p := <-pkts:
				if len(p) >= 20 && p[0]>>4 == 4 && f(p) {
					return p
				}
			case err := <-readErr:
				t.Fatalf("read failed waiting for %s: %v", what, err)
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// 1. Kernel -> TUN: a ping from the namespace to the peer address.
	ping := exec.Command("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "10.77.0.2")
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	req := waitFor("the namespace's echo request", func(p []byte) bool {
		return p[9] == 1 && [4]byte(p[16:20]) == [4]byte{10, 77, 0, 2} && p[20] == 8
	})
	if [4]byte(req[12:16]) != [4]byte{10, 77, 0, 1} {
		t.Fatalf("echo request from %v", net.IP(req[12:16]))
	}
	ping.Process.Kill() // no reply will come
	ping.Wait()

	// 2. TUN -> kernel: our echo request is answered by the namespace.
	want := []byte("ustack link test " + randHex(4))
	echo := icmpEcho([4]byte{10, 77, 0, 2}, [4]byte{10, 77, 0, 1}, 0x4242, 7, want)
	if batch {
		if n, err := tun.WritePackets([][]byte{echo}); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	} else if err := tun.WritePacket(echo); err != nil {
		t.Fatal(err)
	}
	rep := waitFor("the namespace's echo reply", func(p []byte) bool {
		return p[9] == 1 && p[20] == 0 && len(p) >= 28 && binary.BigEndian.Uint16(p[24:]) == 0x4242
	})
	if [4]byte(rep[12:16]) != [4]byte{10, 77, 0, 1} || [4]byte(rep[16:20]) != [4]byte{10, 77, 0, 2} ||
		binary.BigEndian.Uint16(rep[26:]) != 7 || string(rep[28:]) != string(want) {
		t.Fatalf("bad echo reply % x", rep)
	}
	if csum(rep[:20], 0) != 0 || csum(rep[20:], 0) != 0 {
		t.Fatal("echo reply checksum invalid")
	}

	if err := tun.WritePacket(make([]byte, mtu+1)); !errors.Is(err, ErrPacketTooBig) {
		t.Fatalf("oversize write: %v", err)
	}

	// 3. Close unblocks the pending ReadPacket with net.ErrClosed.
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock ReadPacket")
	}
	if err := tun.WritePacket(want); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	// The non-persistent device is gone with its descriptor.
	if out, err := exec.Command("ip", "-n", ns, "link", "show", name).CombinedOutput(); err == nil {
		t.Fatalf("device still exists after Close:\n%s", out)
	}
}

func TestOpenTUNErrors(t *testing.T) {
	if _, err := OpenTUN(strings.Repeat("x", 20), 1500); err == nil {
		t.Fatal("long name accepted")
	}
	if _, err := OpenTUN("ustlbad", 0); err == nil {
		t.Fatal("MTU 0 accepted")
	}
}
