package stackdial

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	tcpcopy "github.com/ustack/ustack/copy"
	"github.com/ustack/ustack/wire"
)

func TestMain(m *testing.M) {
	if os.Getenv("USTACK_STACKDIAL_HELPER") == "server" {
		// PING/PONG server on all addresses; prints "ready", then one
		// "peer ADDR" line per finished connection; runs until stdin closes.
		ln, err := net.Listen("tcp", ":8080")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					br := bufio.NewReader(c)
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							break
						}
						c.Write([]byte(strings.Replace(line, "PING", "PONG", 1)))
					}
					c.Close()
					fmt.Println("peer", netip.MustParseAddrPort(c.RemoteAddr().String()).Addr())
				}()
			}
		}()
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writePingCapture writes a raw-IP pcap of PING/PONG sessions.
func writePingCapture(t *testing.T, path string, sessions map[string][]string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeRaw)
	ts := time.Unix(1000, 0)
	server := netip.MustParseAddrPort("192.0.2.1:80")
	for client, pings := range sessions {
		c := netip.MustParseAddrPort(client)
		cseq, sseq := uint32(1000), uint32(5000)
		emit := func(fromClient bool, flags uint8, payload []byte) {
			src, dst, seq, ack := c, server, cseq, sseq
			if !fromClient {
				src, dst, seq, ack = server, c, sseq, cseq
			}
			buf := make([]byte, 60+len(payload))
			hl, _ := wire.BuildIPv4(buf, &wire.IPv4Header{Protocol: wire.ProtoTCP, Src: src.Addr(), Dst: dst.Addr(), PayloadLen: 20 + len(payload)})
			n, err := wire.BuildTCP(buf[hl:], &wire.TCPHeader{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: 65535}, payload,
				wire.PseudoHeaderSum(src.Addr(), dst.Addr(), wire.ProtoTCP, 20+len(payload)))
			if err != nil {
				t.Fatal(err)
			}
			ts = ts.Add(time.Millisecond)
			w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: hl + n, Length: hl + n}, buf[:hl+n])
			adv := uint32(len(payload))
			if flags&(wire.TCPFlagSYN|wire.TCPFlagFIN) != 0 {
				adv++
			}
			if fromClient {
				cseq += adv
			} else {
				sseq += adv
			}
		}
		emit(true, wire.TCPFlagSYN, nil)
		emit(false, wire.TCPFlagSYN|wire.TCPFlagACK, nil)
		emit(true, wire.TCPFlagACK, nil)
		for _, p := range pings {
			emit(true, wire.TCPFlagACK|wire.TCPFlagPSH, []byte("PING "+p+"\n"))
			emit(false, wire.TCPFlagACK|wire.TCPFlagPSH, []byte("PONG "+p+"\n"))
		}
		emit(true, wire.TCPFlagACK|wire.TCPFlagFIN, nil)
		emit(false, wire.TCPFlagACK|wire.TCPFlagFIN, nil)
		emit(true, wire.TCPFlagACK, nil)
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCopyOverTUNKeepsClientAddresses runs "ustack copy --tun": the
// replay goes through the ustack stack on a TUN device moved into a
// network namespace where a kernel server answers; the server sees the
// captured client addresses.
func TestCopyOverTUNKeepsClientAddresses(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (TUN device, network namespace) and CI=true: it must run")
		}
		t.Skip("SKIPPED: needs root to create a TUN device and a network namespace")
	}
	var rb [4]byte
	rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	ns, dev := "ustack-copy-"+id, "uscp"+id
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")

	self, _ := os.Executable()
	srv := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
	srv.Env = append(os.Environ(), "USTACK_STACKDIAL_HELPER=server")
	srvIn, _ := srv.StdinPipe()
	srvOut, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(srvOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() { srvIn.Close(); srv.Wait() })
	next := func() string {
		tm := time.NewTimer(15 * time.Second)
		defer tm.Stop()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("server helper exited")
			}
			return l
		case <-tm.C:
			t.Fatal("server helper: no output within 15 s")
		}
		return ""
	}
	if l := next(); l != "ready" {
		t.Fatalf("server helper said %q", l)
	}

	path := filepath.Join(t.TempDir(), "ping.pcap")
	writePingCapture(t, path, map[string][]string{"10.9.0.11:40001": {"a", "b"}, "10.9.0.12:40002": {"c"}})
	// The device is created in this namespace, then moved; addresses and
	// routes exist only inside the test namespace.
	setup := fmt.Sprintf("ip link set $DEV netns %[1]s && ip -n %[1]s addr add 10.77.0.1/24 dev $DEV && ip -n %[1]s link set $DEV up && ip -n %[1]s route add 10.9.0.0/24 dev $DEV", ns)
	var out, errb bytes.Buffer
	code := tcpcopy.Main([]string{"--tun", dev, "--tun-setup", setup, "-x", "80-10.77.0.1:8080", "--fast", path}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "identical 2, differs 0") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	peers := map[string]bool{}
	for len(peers) < 2 {
		l := next()
		if a, ok := strings.CutPrefix(l, "peer "); ok {
			peers[a] = true
		}
	}
	if !peers["10.9.0.11"] || !peers["10.9.0.12"] {
		t.Errorf("kernel server saw peers %v, want the captured clients 10.9.0.11 and 10.9.0.12", peers)
	}
	t.Logf("report:\n%s", out.String())
}
