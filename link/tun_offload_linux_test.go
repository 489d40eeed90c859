//go:build linux

package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tcp4 builds an IPv4/TCP packet with correct checksums.
func tcp4(src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8, win uint16, opts, payload []byte) []byte {
	thl := 20 + len(opts)
	p := make([]byte, 20+thl+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[6] = 0x40 // DF
	p[8] = 64
	p[9] = 6
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[10:], csum(p[:20], 0))
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(thl/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], win)
	copy(t[20:], opts)
	copy(t[thl:], payload)
	binary.BigEndian.PutUint16(t[16:], csum(t, tcpPseudo(p)))
	return p
}

func tcpPseudo(ip []byte) uint32 {
	var ph [12]byte
	copy(ph[:8], ip[12:20])
	ph[9] = 6
	binary.BigEndian.PutUint16(ph[10:], uint16(len(ip)-20))
	return sum16(ph[:], 0)
}

// nsTUN opens a TUN (with or without offload), moves it into a fresh
// namespace and gives the kernel side 10.77.0.1/24 there.
func nsTUN(t testing.TB, mtu int, offload bool) (*TUN, string) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root (creates a TUN device and a network namespace)")
	}
	for _, tool := range []string{"ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING: %s not installed", tool)
		}
	}
	ns := "ustack-link-" + randHex(4)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	name := "ustl" + randHex(4)
	tun, err := OpenTUNConfig(TUNConfig{Name: name, MTU: mtu, Offload: offload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tun.Close() })
	run(t, "ip", "link", "set", "dev", name, "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	return tun, ns
}

// kernelTCPSink makes the namespace's kernel TCP send total bytes to
// 10.77.0.2:5001 and plays a minimal receiver on the TUN: SYN-ACK, then a
// cumulative ACK after every batch of reads. It checks every packet read
// (size <= MTU, IPv4 and TCP checksums, zero payload).
func kernelTCPSink(t testing.TB, tun *TUN, ns string, total int) {
	mtu := tun.MTU()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/10.77.0.2/5001 && head -c %d /dev/zero >&3", total))
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { client.Process.Kill(); client.Wait() }()

	us, them := [4]byte{10, 77, 0, 2}, [4]byte{10, 77, 0, 1}
	const iss = 5000
	var rcvNxt uint32
	var cport uint16
	received := 0
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, mtu)
	}
	sizes := make([]int, 64)
	deadline := time.Now().Add(50 * time.Second)
	for received < total {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: received %d of %d bytes, stats %+v", received, total, tun.Stats())
		}
		n, err := tun.ReadPackets(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		ack := false
		for i := range n {
			p := bufs[i][:sizes[i]]
			if sizes[i] > mtu {
				t.Fatalf("segment of %d bytes exceeds MTU", sizes[i])
			}
			if len(p) < 40 || p[0] != 0x45 || p[9] != 6 {
				continue // IPv6 noise, ICMP ...
			}
			if csum(p[:20], 0) != 0 {
				t.Fatalf("bad IPv4 header checksum: % x", p[:20])
			}
			if csum(p[20:], tcpPseudo(p)) != 0 {
				t.Fatalf("bad TCP checksum in %d-byte segment", len(p))
			}
			tcp := p[20:]
			if binary.BigEndian.Uint16(tcp[2:]) != 5001 {
				continue
			}
			seq, flags := binary.BigEndian.Uint32(tcp[4:]), tcp[13]
			payload := tcp[int(tcp[12]>>4)*4:]
			switch {
			case flags&0x02 != 0: // SYN
				cport = binary.BigEndian.Uint16(tcp[0:])
				rcvNxt = seq + 1
				mss := []byte{2, 4, 0, 0}
				binary.BigEndian.PutUint16(mss[2:], uint16(mtu-40))
				if err := tun.WritePacket(tcp4(us, them, 5001, cport, iss, rcvNxt, 0x12, 65535, mss, nil)); err != nil {
					t.Fatal(err)
				}
			case len(payload) > 0:
				if !bytes.Equal(payload, zeros[:len(payload)]) {
					t.Fatal("payload corrupted")
				}
				if seq == rcvNxt {
					rcvNxt += uint32(len(payload))
					received += len(payload)
				}
				ack = true
			}
		}
		if ack {
			if err := tun.WritePacket(tcp4(us, them, 5001, cport, iss+1, rcvNxt, 0x10, 65535, nil, nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var zeros [65536]byte

// TestTUNOffload lets the namespace's kernel TCP send 1 MB to a minimal
// receiver on the TUN side. With offload on, the kernel hands over TCP
// super-packets; the endpoint must give back MTU-sized segments with valid
// checksums and contiguous sequence numbers.
func TestTUNOffload(t *testing.T) {
	tun, ns := nsTUN(t, 1400, true)
	kernelTCPSink(t, tun, ns, 1<<20)
	st := tun.Stats()
	t.Logf("stats %+v (%.1f segments per read)", st, float64(st.Segments)/float64(st.Reads))
	if st.GSOPackets == 0 || st.Segments <= st.Reads {
		t.Errorf("the kernel sent no super-packets: %+v", st)
	}
	if st.ChecksumsCompleted == 0 || st.Malformed != 0 {
		t.Errorf("checksum completion not exercised or malformed packets: %+v", st)
	}
}

// BenchmarkTUNKernelTCP measures kernel TCP -> TUN -> minimal receiver
// throughput (1 MB per op), with and without offload. Root only.
func BenchmarkTUNKernelTCP(b *testing.B) {
	for _, offload := range []bool{false, true} {
		b.Run(fmt.Sprintf("offload=%v", offload), func(b *testing.B) {
			tun, ns := nsTUN(b, 1500, offload)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			kernelTCPSink(b, tun, ns, b.N<<20)
		})
	}
}

// FuzzTUNOffloadProcess feeds arbitrary vnet-header packets to the splitter:
// it must never panic, and segments split from a TCP/IPv4 super-packet
// must carry valid checksums and contiguous sequence numbers.
func FuzzTUNOffloadProcess(f *testing.F) {
	us, them := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	big := tcp4(us, them, 1, 2, 1000, 1, 0x18|0x01, 100, []byte{1, 1, 1, 0}, make([]byte, 3000))
	hdr := make([]byte, vnetHdrLen)
	hdr[0], hdr[1] = vnetNeedsCsum, vnetGSOTCPv4
	binary.LittleEndian.PutUint16(hdr[2:], 44)
	binary.LittleEndian.PutUint16(hdr[4:], 1000)
	binary.LittleEndian.PutUint16(hdr[6:], 20)
	binary.LittleEndian.PutUint16(hdr[8:], 16)
	f.Add(append(append([]byte(nil), hdr...), big...))
	plain := make([]byte, vnetHdrLen)
	plain[0] = vnetNeedsCsum
	binary.LittleEndian.PutUint16(plain[6:], 20)
	binary.LittleEndian.PutUint16(plain[8:], 16)
	f.Add(append(plain, tcp4(us, them, 1, 2, 5, 6, 0x10, 100, nil, []byte("hi"))...))
	f.Add([]byte{0, 4, 0, 0, 1, 0, 40, 0, 16, 0, 0x60})
	f.Fuzz(func(t *testing.T, p []byte) {
		tun := &TUN{offload: true}
		tun.process(p)
		if len(p) <= vnetHdrLen || p[1]&^vnetGSOECN != vnetGSOTCPv4 || tun.stats.Malformed != 0 {
			return
		}
		orig := p[vnetHdrLen:]
		l4 := int(orig[0]&0xf) * 4
		next := binary.BigEndian.Uint32(orig[l4+4:])
		for _, seg := range tun.queue {
			if csum(seg[:l4], 0) != 0 {
				t.Fatal("bad IPv4 header checksum")
			}
			if int(binary.BigEndian.Uint16(seg[2:])) != len(seg) {
				t.Fatal("bad IPv4 total length")
			}
			if csum(seg[l4:], tcpPseudoLen(seg, l4)) != 0 {
				t.Fatal("bad TCP checksum")
			}
			seq := binary.BigEndian.Uint32(seg[l4+4:])
			if seq != next {
				t.Fatalf("seq %d, want %d", seq, next)
			}
			next += uint32(len(seg) - l4 - int(seg[l4+12]>>4)*4)
		}
	})
}

func tcpPseudoLen(ip []byte, l4 int) uint32 {
	var ph [12]byte
	copy(ph[:8], ip[12:20])
	ph[9] = 6
	binary.BigEndian.PutUint16(ph[10:], uint16(len(ip)-l4))
	return sum16(ph[:], 0)
}

// TestTUNHelperDiscard is not a test: TestTUNOffloadWrite runs the test
// binary inside its namespace with USTACK_LINK_HELPER set, and this
// function then serves as a kernel TCP receiver that counts bytes.
func TestTUNHelperDiscard(t *testing.T) {
	addr := os.Getenv("USTACK_LINK_HELPER")
	if addr == "" {
		t.Skip("helper process for TestTUNOffloadWrite")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println("ready")
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		fmt.Println("error", err)
		return
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c)
	fmt.Println("received", n, err)
}

// TestTUNOffloadWrite sends 4 MB from a minimal TCP sender on the TUN side
// to a kernel TCP receiver in the namespace, with WritePackets batches that
// the offload path merges into super-packets.
func TestTUNOffloadWrite(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			tun, ns := nsTUN(t, 1500, offload)
			sendToKernel(t, tun, ns, 4<<20)
			st := tun.Stats()
			t.Logf("stats %+v (%.1f segments per super-packet)", st, float64(st.CoalescedSegments)/float64(max(st.GSOWrites, 1)))
			if offload && st.GSOWrites == 0 {
				t.Error("no super-packets were written")
			}
		})
	}
}

// BenchmarkTUNKernelTCPWrite measures minimal sender -> TUN -> kernel TCP
// throughput (1 MB per op), with and without offload. Root only.
func BenchmarkTUNKernelTCPWrite(b *testing.B) {
	for _, offload := range []bool{false, true} {
		b.Run(fmt.Sprintf("offload=%v", offload), func(b *testing.B) {
			tun, ns := nsTUN(b, 1500, offload)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			sendToKernel(b, tun, ns, b.N<<20)
		})
	}
}

// sendToKernel plays a minimal TCP sender (no retransmission: the path is
// lossless) to a kernel receiver run in the namespace, and checks the
// receiver got total bytes.
func sendToKernel(t testing.TB, tun *TUN, ns string, total int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	helper := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestTUNHelperDiscard$", "-test.v")
	helper.Env = append(os.Environ(), "USTACK_LINK_HELPER=10.77.0.1:5002")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(prefix string) string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper exited before %q", prefix)
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("helper: %s", l)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("timed out waiting for helper %q", prefix)
			}
		}
	}
	waitLine("ready")

	us, them := [4]byte{10, 77, 0, 2}, [4]byte{10, 77, 0, 1}
	const sport, dport, iss = 40000, 5002, 1000
	mss := 1460
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, 64)
	// read handles incoming packets of our flow: it returns once something
	// arrived and reports the peer's SYN-ACK sequence, ACK and window.
	var irs, sndUna uint32 = 0, iss
	var wnd uint32
	gotSynAck := false
	read := func() {
		t.Helper()
		n, err := tun.ReadPackets(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			p := bufs[i][:sizes[i]]
			if len(p) < 40 || p[0] != 0x45 || p[9] != 6 || binary.BigEndian.Uint16(p[22:]) != sport {
				continue
			}
			tcp := p[20:]
			if tcp[13]&0x04 != 0 {
				t.Fatal("peer sent RST")
			}
			if tcp[13]&0x12 == 0x12 {
				irs, gotSynAck = binary.BigEndian.Uint32(tcp[4:]), true
			}
			if tcp[13]&0x10 != 0 {
				if a := binary.BigEndian.Uint32(tcp[8:]); int32(a-sndUna) > 0 {
					sndUna = a
				}
				wnd = uint32(binary.BigEndian.Uint16(tcp[14:]))
			}
		}
	}
	opt := []byte{2, 4, byte(mss >> 8), byte(mss)}
	if err := tun.WritePacket(tcp4(us, them, sport, dport, iss, 0, 0x02, 65535, opt, nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for !gotSynAck {
		if time.Now().After(deadline) {
			t.Fatal("no SYN-ACK")
		}
		read()
	}
	sndUna = iss + 1
	sndNxt := uint32(iss + 1)
	ack := irs + 1
	if err := tun.WritePacket(tcp4(us, them, sport, dport, sndNxt, ack, 0x10, 65535, nil, nil)); err != nil {
		t.Fatal(err)
	}
	end := uint32(iss+1) + uint32(total)
	var batch [][]byte
	for sndUna != end {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d of %d bytes acked, stats %+v", sndUna-iss-1, total, tun.Stats())
		}
		batch = batch[:0]
		for sndNxt != end && sndNxt-sndUna < wnd && len(batch) < 44 {
			n := min(uint32(mss), end-sndNxt, wnd-(sndNxt-sndUna))
			batch = append(batch, tcp4(us, them, sport, dport, sndNxt, ack, 0x10, 65535, nil, zeros[:n]))
			sndNxt += n
		}
		if len(batch) > 0 {
			if n, err := tun.WritePackets(batch); n != len(batch) || err != nil {
				t.Fatalf("WritePackets = %d, %v", n, err)
			}
		}
		read()
	}
	if err := tun.WritePacket(tcp4(us, them, sport, dport, sndNxt, ack, 0x11, 65535, nil, nil)); err != nil {
		t.Fatal(err)
	}
	l := waitLine("received")
	if l != fmt.Sprintf("received %d <nil>", total) {
		t.Fatalf("kernel receiver: %q, want %d bytes", l, total)
	}
}

// tcp6 builds an IPv6/TCP packet with a correct checksum.
func tcp6(seq uint32, flags uint8, payload []byte) []byte {
	p := make([]byte, 40+20+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(20+len(payload)))
	p[6], p[7] = 6, 64
	p[8], p[9], p[23] = 0xfd, 0, 1   // fd00::1
	p[24], p[25], p[39] = 0xfd, 0, 2 // fd00::2
	t := p[40:]
	binary.BigEndian.PutUint16(t[0:], 7)
	binary.BigEndian.PutUint16(t[2:], 8)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 99)
	t[12], t[13] = 5<<4, flags
	binary.BigEndian.PutUint16(t[14:], 1000)
	copy(t[20:], payload)
	binary.BigEndian.PutUint16(t[16:], csum(t, pseudo6(p)))
	return p
}

func pseudo6(p []byte) uint32 {
	var ph [40]byte
	copy(ph[:32], p[8:40])
	binary.BigEndian.PutUint32(ph[32:], uint32(len(p)-40))
	ph[39] = 6
	return sum16(ph[:], 0)
}

// TestOffloadRoundTrip merges segments into a super-packet the way
// WritePackets does, checks the partial checksum convention, and splits it
// back the way reads do: the segments must come back unchanged (IPv4 IDs
// aside, which segmentation numbers consecutively).
func TestOffloadRoundTrip(t *testing.T) {
	payload := func(i, n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		return b
	}
	for _, v6 := range []bool{false, true} {
		var segs [][]byte
		seq := uint32(0xfffff000) // wraps
		for i := range 12 {
			n, fl := 1000, uint8(0x10)
			if i == 11 {
				n, fl = 333, 0x18
			}
			if v6 {
				segs = append(segs, tcp6(seq, fl, payload(i, n)))
			} else {
				segs = append(segs, tcp4([4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 7, 8, seq, 99, fl, 1000, []byte{1, 1, 1, 0}, payload(i, n)))
			}
			seq += uint32(n)
		}
		l4, hdr, ok := tcpHeaderLens(segs[0])
		if !ok {
			t.Fatal("tcpHeaderLens")
		}
		for i := 1; i < len(segs); i++ {
			var off uint32
			for _, s := range segs[:i] {
				off += uint32(len(s) - hdr)
			}
			if !canCoalesce(segs[0], segs[i], l4, hdr, 1000, off) {
				t.Fatalf("v6=%v: segment %d not coalescible", v6, i)
			}
		}
		if canCoalesce(segs[0], segs[2], l4, hdr, 1000, 1000) {
			t.Fatal("a sequence gap was accepted")
		}
		size := vnetHdrLen + hdr
		for _, s := range segs {
			size += len(s) - hdr
		}
		super := buildSuper(make([]byte, size), segs, l4, hdr, 1000)
		// Completing the partial checksum must give a valid checksum over
		// the whole super-packet.
		p := append([]byte(nil), super[vnetHdrLen:]...)
		c := ^fold(sumBytes(p[l4:], 0))
		binary.BigEndian.PutUint16(p[l4+16:], c)
		var ps uint32
		if v6 {
			ps = pseudo6(p)
		} else {
			ps = tcpPseudoLen(p, l4)
			if csum(p[:20], 0) != 0 {
				t.Fatal("super-packet IPv4 header checksum")
			}
		}
		if csum(p[l4:], ps) != 0 {
			t.Fatalf("v6=%v: partial checksum convention broken", v6)
		}
		tun := &TUN{offload: true}
		tun.process(super)
		if len(tun.queue) != len(segs) || tun.stats.Malformed != 0 {
			t.Fatalf("v6=%v: split into %d segments, stats %+v", v6, len(tun.queue), tun.stats)
		}
		for i, got := range tun.queue {
			want := append([]byte(nil), segs[i]...)
			if !v6 {
				copy(want[4:6], got[4:6])
				binary.BigEndian.PutUint16(want[10:], 0)
				binary.BigEndian.PutUint16(want[10:], csum(want[:20], 0))
				if binary.BigEndian.Uint16(got[4:]) != uint16(i) {
					t.Fatalf("segment %d IPv4 ID %d", i, binary.BigEndian.Uint16(got[4:]))
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("v6=%v: segment %d differs after the round trip\n got % x\nwant % x", v6, i, got[:60], want[:60])
			}
		}
	}
}
