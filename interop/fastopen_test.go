package interop

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// tfoClientPy connects with sendto(MSG_FASTOPEN), like a Linux Fast Open
// client, and prints the response.
const tfoClientPy = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
s.sendto(sys.argv[3].encode(), socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
s.settimeout(10)
print(s.recv(100).decode())
s.close()
`

// tfoServerPy is a Linux listener with TCP_FASTOPEN (23) set: it answers
// each of argv[3] connections with "re:" + the request.
const tfoServerPy = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, 23, 16)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
for i in range(int(sys.argv[3])):
    c, _ = s.accept()
    c.settimeout(10)
    d = c.recv(100)
    c.sendall(b"re:" + d)
    c.close()
`

// nstat reads TcpExt counters of the namespace (absolute values, without
// touching nstat's history file).
func (n *Netns) nstat(t *testing.T, names ...string) map[string]uint64 {
	t.Helper()
	out := n.Exec(t, "nstat", append([]string{"-asz"}, names...)...)
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				m[f[0]] = v
			}
		}
	}
	for _, name := range names {
		if _, ok := m[name]; !ok {
			t.Fatalf("nstat has no %s:\n%s", name, out)
		}
	}
	return m
}

// synsWithData lists, in capture order, the SYNs (without ACK) from src
// in a pcap file: their TCP payload length and Fast Open option as tshark
// shows them ("cookie" hex, "request", or "").
func synsWithData(t *testing.T, capPath string, src netip.Addr) (lens []int, tfo []string) {
	t.Helper()
	tshark := requireTool(t, "tshark")
	out, err := stdout(tshark, "-r", capPath, "-Y", fmt.Sprintf("%s.src==%s && tcp.flags.syn==1 && tcp.flags.ack==0", map[bool]string{true: "ip", false: "ipv6"}[src.Is4()], src),
		"-T", "fields", "-E", "separator=|", "-e", "tcp.len", "-e", "tcp.options.tfo.cookie", "-e", "tcp.options.tfo.request")
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 {
			continue
		}
		l, _ := strconv.Atoi(f[0])
		lens = append(lens, l)
		switch {
		case f[1] != "":
			tfo = append(tfo, f[1])
		case f[2] != "":
			tfo = append(tfo, "request")
		default:
			tfo = append(tfo, "")
		}
	}
	return lens, tfo
}

// tfoNetns is a namespace with tcp_fastopen=3 and python3 for the
// kernel's Fast Open clients and servers.
func tfoNetns(t *testing.T) *Netns {
	t.Helper()
	n := NewNetns(t, NetnsConfig{})
	requireTool(t, "python3")
	n.Exec(t, "sysctl", "-w", "net.ipv4.tcp_fastopen=3")
	return n
}

// serveReEcho listens on addr with a Fast Open queue of 16 and answers
// the first read of each connection with "re:" and the bytes read, then
// discards the rest.
func serveReEcho(t *testing.T, s *ustack.Stack, addr string) {
	t.Helper()
	ln, err := s.ListenTCP("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.SetFastOpen(16); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 100)
				k, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(append([]byte("re:"), buf[:k]...))
				io.Copy(io.Discard, c)
			}()
		}
	}()
}

// checkMoved checks that the kernel counter name moved by want.
func checkMoved(t *testing.T, before, after map[string]uint64, name string, want uint64) {
	t.Helper()
	if d := after[name] - before[name]; d != want {
		t.Errorf("kernel %s moved by %d, want %d", name, d, want)
	}
}

// checkFastOpenSyns checks the SYNs from src in the capture: a cookie
// request without data, then a SYN with a cookie and the request req. It
// returns the Fast Open options of the SYNs.
func checkFastOpenSyns(t *testing.T, capPath string, src netip.Addr, who, req string) []string {
	t.Helper()
	lens, tfo := synsWithData(t, capPath, src)
	t.Logf("%s SYNs: payload lengths %v, Fast Open options %v", who, lens, tfo)
	if len(lens) != 2 || lens[0] != 0 || tfo[0] != "request" || lens[1] != len(req) || tfo[1] == "" || tfo[1] == "request" {
		t.Errorf("want a cookie request SYN without data, then a SYN with cookie and %d bytes", len(req))
	}
	return tfo
}

func tfoStackConfig() ustack.Config {
	cfg := tcp.DefaultConfig()
	cfg.FastOpen = tcp.FastOpenClient | tcp.FastOpenServer
	return ustack.Config{TCP: cfg}
}

// TestFastOpenKernelClient: a Linux client (tcp_fastopen=3 in the test's
// namespace only) connects twice with MSG_FASTOPEN to a ustack listener
// with TCP Fast Open: the first SYN asks for a cookie, the second carries
// the cookie and the request, which ustack acknowledges in its SYN-ACK.
// The kernel counts TcpExtTCPFastOpenActive, ustack TCPFastOpenPassive.
func TestFastOpenKernelClient(t *testing.T) {
	runFamilies(t, fastOpenKernelClient)
}

func fastOpenKernelClient(t *testing.T, v6 bool) {
	n := tfoNetns(t)
	requireTool(t, "nstat")
	kernel, stack := n.Addrs(v6)
	ep, capPath, f := n.Capture(t, "tfo-kernel-client.pcap")
	s := n.NewStack(t, ep, tfoStackConfig())
	serveReEcho(t, s, ":8080")
	before := n.nstat(t, "TcpExtTCPFastOpenActive", "TcpExtTCPFastOpenActiveFail")
	for i := 0; i < 2; i++ {
		req := fmt.Sprintf("hello-tfo-%d", i)
		out := n.Exec(t, "python3", "-c", tfoClientPy, stack.String(), "8080", req)
		if strings.TrimSpace(out) != "re:"+req {
			t.Fatalf("connection %d: kernel client got %q", i, out)
		}
	}
	after := n.nstat(t, "TcpExtTCPFastOpenActive", "TcpExtTCPFastOpenActiveFail")
	st := s.Stats().TCP
	t.Logf("kernel: TcpExtTCPFastOpenActive %d -> %d, ActiveFail %d -> %d; ustack: TCPFastOpenPassive %d CookieReqd %d PassiveFail %d",
		before["TcpExtTCPFastOpenActive"], after["TcpExtTCPFastOpenActive"],
		before["TcpExtTCPFastOpenActiveFail"], after["TcpExtTCPFastOpenActiveFail"],
		st.TCPFastOpenPassive, st.TCPFastOpenCookieReqd, st.TCPFastOpenPassiveFail)
	checkMoved(t, before, after, "TcpExtTCPFastOpenActive", 1)
	checkMoved(t, before, after, "TcpExtTCPFastOpenActiveFail", 0)
	if st.TCPFastOpenPassive != 1 || st.TCPFastOpenCookieReqd != 1 || st.TCPFastOpenPassiveFail != 0 {
		t.Errorf("ustack TCPFastOpenPassive %d CookieReqd %d PassiveFail %d, want 1 1 0",
			st.TCPFastOpenPassive, st.TCPFastOpenCookieReqd, st.TCPFastOpenPassiveFail)
	}
	s.Close()
	f.Close()
	checkFastOpenSyns(t, capPath, kernel, "kernel", "hello-tfo-1")
}

// TestFastOpenKernelServer: a ustack client dials a Linux listener with
// TCP_FASTOPEN twice with Dialer.FastOpen: the second SYN carries the
// cookie from the first connection and the request; the kernel counts
// TcpExtTCPFastOpenPassive, ustack TCPFastOpenActive.
func TestFastOpenKernelServer(t *testing.T) {
	runFamilies(t, fastOpenKernelServer)
}

func fastOpenKernelServer(t *testing.T, v6 bool) {
	n := tfoNetns(t)
	requireTool(t, "nstat")
	kernel, stack := n.Addrs(v6)
	ep, capPath, f := n.Capture(t, "tfo-kernel-server.pcap")
	s := n.NewStack(t, ep, tfoStackConfig())

	n.StartServer(t, "ready", "python3", "-c", tfoServerPy, kernel.String(), "9090", "2")
	before := n.nstat(t, "TcpExtTCPFastOpenPassive", "TcpExtTCPFastOpenPassiveFail", "TcpExtTCPFastOpenCookieReqd")
	d := ustack.Dialer{Stack: s, FastOpen: true, Timeout: 10 * time.Second}
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", netip.AddrPortFrom(kernel, 9090).String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		req := fmt.Sprintf("hello-kernel-%d", i)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "re:"+req {
			t.Fatalf("connection %d: got %q %v", i, b, err)
		}
		c.Close()
	}
	after := n.nstat(t, "TcpExtTCPFastOpenPassive", "TcpExtTCPFastOpenPassiveFail", "TcpExtTCPFastOpenCookieReqd")
	st := s.Stats().TCP
	t.Logf("kernel: TcpExtTCPFastOpenPassive %d -> %d, PassiveFail %d -> %d, CookieReqd %d -> %d; ustack: TCPFastOpenActive %d ActiveFail %d",
		before["TcpExtTCPFastOpenPassive"], after["TcpExtTCPFastOpenPassive"],
		before["TcpExtTCPFastOpenPassiveFail"], after["TcpExtTCPFastOpenPassiveFail"],
		before["TcpExtTCPFastOpenCookieReqd"], after["TcpExtTCPFastOpenCookieReqd"],
		st.TCPFastOpenActive, st.TCPFastOpenActiveFail)
	checkMoved(t, before, after, "TcpExtTCPFastOpenPassive", 1)
	checkMoved(t, before, after, "TcpExtTCPFastOpenCookieReqd", 1)
	if st.TCPFastOpenActive != 1 || st.TCPFastOpenActiveFail != 0 {
		t.Errorf("ustack TCPFastOpenActive %d ActiveFail %d, want 1 0", st.TCPFastOpenActive, st.TCPFastOpenActiveFail)
	}
	s.Close()
	f.Close()
	tfo := checkFastOpenSyns(t, capPath, stack, "ustack", "hello-kernel-1")
	// ustack computes cookies like Linux: with the namespace's key, the
	// cookie the kernel granted is the one ustack would grant.
	keyText := strings.TrimSpace(n.Exec(t, "sysctl", "-n", "net.ipv4.tcp_fastopen_key"))
	keys, err := tcp.ParseFastOpenKeys(keyText)
	if err != nil {
		t.Fatalf("kernel key %q: %v", keyText, err)
	}
	want := keys.Cookie(stack, kernel)
	if len(tfo) == 2 && strings.ReplaceAll(tfo[1], ":", "") != hex.EncodeToString(want[:]) {
		t.Errorf("kernel's cookie %s, ustack's computation with the kernel's key %x", tfo[1], want)
	} else {
		t.Logf("kernel cookie %s equals ustack's SipHash cookie with key %s", tfo[1], keyText)
	}
}

// TestFastOpenKernelServerRTT logs (real time, no assertion on it) the
// time from Dial to the first response byte against a Linux server with
// TCP_FASTOPEN, with ustack's packets to the kernel delayed by 25 ms (RTT
// about 25 ms): about two round trips without Fast Open and one with a
// cached cookie, since Linux answers the request in the SYN before the
// handshake completes.
func TestFastOpenKernelServerRTT(t *testing.T) {
	n := tfoNetns(t)
	const delay = 25 * time.Millisecond
	s := n.NewStack(t, link.Impair(n.TUN, link.Impairment{Delay: delay}), tfoStackConfig())
	kernel := n.Kernel4.Addr()
	n.StartServer(t, "ready", "python3", "-c", tfoServerPy, kernel.String(), "9091", "4")
	fetch := func(fastOpen bool) time.Duration {
		start := time.Now()
		d := ustack.Dialer{Stack: s, FastOpen: fastOpen, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", netip.AddrPortFrom(kernel, 9091).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 6)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "re:GET" {
			t.Fatalf("response %q %v", b, err)
		}
		return time.Since(start)
	}
	plain := fetch(false)
	first := fetch(true)
	cached := fetch(true)
	again := fetch(true)
	t.Logf("Linux server, ustack->kernel delay %v: Dial to response without Fast Open %v, cookie request %v, cached cookie %v and %v",
		delay, plain.Round(100*time.Microsecond), first.Round(100*time.Microsecond), cached.Round(100*time.Microsecond), again.Round(100*time.Microsecond))
	if st := s.Stats().TCP; st.TCPFastOpenActive != 2 {
		t.Errorf("TCPFastOpenActive %d, want 2", st.TCPFastOpenActive)
	}
}

// tfoTimedClientPy is tfoClientPy (argv[4] == "tfo") or a plain connect
// and send, printing the seconds from the start to the first response byte.
const tfoTimedClientPy = `
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
addr = (sys.argv[1], int(sys.argv[2]))
t0 = time.monotonic()
s = socket.socket(fam, socket.SOCK_STREAM)
if sys.argv[4] == "tfo":
    s.sendto(sys.argv[3].encode(), socket.MSG_FASTOPEN, addr)
else:
    s.connect(addr)
    s.send(sys.argv[3].encode())
s.settimeout(10)
d = s.recv(1)
print("%.6f" % (time.monotonic() - t0))
s.close()
`

// TestFastOpenKernelClientRTT logs (real time, no assertion on it) the
// time from connect to the first response byte for a Linux client and a
// ustack Fast Open server whose packets to the kernel are delayed by 25 ms:
// about two round trips without Fast Open, one with the cookie, as ustack
// answers the request carried in the SYN before the handshake completes.
func TestFastOpenKernelClientRTT(t *testing.T) {
	n := tfoNetns(t)
	const delay = 25 * time.Millisecond
	s := n.NewStack(t, link.Impair(n.TUN, link.Impairment{Delay: delay}), tfoStackConfig())
	serveReEcho(t, s, ":8081")
	fetch := func(mode string) string {
		out := n.Exec(t, "python3", "-c", tfoTimedClientPy, n.Stack4.Addr().String(), "8081", "GET", mode)
		sec, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			t.Fatalf("client output %q", out)
		}
		return (time.Duration(sec * float64(time.Second))).Round(100 * time.Microsecond).String()
	}
	plain := fetch("plain")
	first := fetch("tfo")
	cached := fetch("tfo")
	again := fetch("tfo")
	t.Logf("Linux client, ustack server, ustack->kernel delay %v: connect to response without Fast Open %s, cookie request %s, cached cookie %s and %s",
		delay, plain, first, cached, again)
	if st := s.Stats().TCP; st.TCPFastOpenPassive != 2 {
		t.Errorf("TCPFastOpenPassive %d, want 2", st.TCPFastOpenPassive)
	}
}
