package tcpcopy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Test helpers run as re-executions of the test binary (inside a network
// namespace via "ip netns exec"), selected by USTACK_COPY_HELPER.
func TestMain(m *testing.M) {
	switch os.Getenv("USTACK_COPY_HELPER") {
	case "":
		os.Exit(m.Run())
	case "server":
		os.Exit(helperServer(strings.Split(os.Getenv("USTACK_COPY_ADDRS"), ",")))
	case "echoclient":
		var sizes []int
		for _, f := range strings.Split(os.Getenv("USTACK_COPY_SIZES"), ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
		if err := echoClient(os.Getenv("USTACK_COPY_ADDRS"), sizes); err != nil {
			fmt.Fprintln(os.Stderr, "echoclient:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "livecap":
		os.Exit(helperLiveCapture())
	}
	fmt.Fprintln(os.Stderr, "unknown helper")
	os.Exit(2)
}

// helperServer serves the test protocols on addrs, prints "ready" and
// runs until its stdin closes.
func helperServer(addrs []string) int {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			return 1
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					serveConn(bufio.NewReader(c), c, false)
					c.Close()
				}()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, ln := range lns {
		ln.Close()
	}
	return 0
}

// helperLiveCapture captures on lo with OpenLive until it has seen
// USTACK_COPY_SESSIONS finished sessions, and writes the packets to
// USTACK_COPY_OUT as a raw-IP pcap.
func helperLiveCapture() int {
	want, _ := strconv.Atoi(os.Getenv("USTACK_COPY_SESSIONS"))
	var ports []uint16
	for _, f := range strings.Split(os.Getenv("USTACK_COPY_PORTS"), ",") {
		n, _ := strconv.Atoi(f)
		ports = append(ports, uint16(n))
	}
	ls, err := OpenLive("lo", ports, 60*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "livecap:", err)
		return 1
	}
	defer ls.Close()
	f, err := os.Create(os.Getenv("USTACK_COPY_OUT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "livecap:", err)
		return 1
	}
	defer f.Close()
	w, _ := NewCaptureWriter(f, LinkRaw, false)
	done := 0
	a := NewAssembler(AssemblerConfig{ServerPorts: ports}, func(*Session) { done++ })
	go func() { io.Copy(io.Discard, os.Stdin); ls.Stop() }()
	fmt.Println("ready")
	for done < want {
		p, err := ls.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "livecap:", err)
			return 1
		}
		w.Write(p.Time, p.Data)
		a.Packet(p)
	}
	if done < want {
		fmt.Fprintf(os.Stderr, "livecap: saw %d finished sessions, want %d\n", done, want)
		return 1
	}
	os.WriteFile(os.Getenv("USTACK_COPY_OUT")+".userdrop", []byte(strconv.FormatInt(ls.UserspaceDropped(), 10)), 0o644)
	return 0
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (network namespaces, tcpdump) and CI=true: it must run")
		}
		t.Skip("SKIPPED: needs root to create a network namespace and capture with tcpdump; run as root to test capture+replay end to end")
	}
	for _, tool := range []string{"ip", "tcpdump", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: %v", tool, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// waitLine reads lines from r until one contains want, with a deadline.
func waitLine(t *testing.T, r io.Reader, want string, what string) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- nil
				io.Copy(io.Discard, r)
				return
			}
		}
		found <- fmt.Errorf("%s ended without printing %q", what, want)
	}()
	tm := time.NewTimer(15 * time.Second)
	defer tm.Stop()
	select {
	case err := <-found:
		if err != nil {
			t.Fatal(err)
		}
	case <-tm.C:
		t.Fatalf("%s: no %q within 15 s", what, want)
	}
}

// waitExit waits for cmd with a deadline, killing it if it overruns.
func waitExit(t *testing.T, cmd *exec.Cmd, what string, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case err := <-done:
		return err
	case <-tm.C:
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit within %v", what, d)
		return nil
	}
}

// completeSessions counts the sessions of a capture file that ended with
// FINs from both sides (so all their packets are in the file).
func completeSessions(path string) int {
	src, err := OpenFile(path)
	if err != nil {
		return 0
	}
	defer src.Close()
	n := 0
	a := NewAssembler(AssemblerConfig{}, func(s *Session) {
		if s.ClientFIN && s.ServerFIN && len(s.Gaps) == 0 {
			n++
		}
	})
	for {
		p, err := src.Next()
		if err != nil {
			break
		}
		a.Packet(p)
	}
	a.Flush()
	return n
}

// TestNetnsCaptureReplay captures real HTTP (curl) and binary echo traffic
// with tcpdump in a fresh network namespace, replays the capture with
// "ustack copy" to a recording server on loopback, and checks the server
// got exactly the captured client bytes of every session, and that a
// server with one changed response is reported at the right offset.
func TestNetnsCaptureReplay(t *testing.T) {
	requireRoot(t)
	var rb [4]byte
	rand.Read(rb[:])
	ns := "ustack-copy-" + hex.EncodeToString(rb[:])
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")

	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := func(kind string, env ...string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), append([]string{"USTACK_COPY_HELPER=" + kind}, env...)...)
		return cmd
	}

	// The original server, inside the namespace.
	srvCmd := helper("server", "USTACK_COPY_ADDRS=127.0.0.1:8080,127.0.0.1:9090,[::1]:8080")
	srvIn, _ := srvCmd.StdinPipe()
	srvOut, _ := srvCmd.StdoutPipe()
	srvCmd.Stderr = os.Stderr
	if err := srvCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvIn.Close(); waitExit(t, srvCmd, "server helper", 10*time.Second) })
	waitLine(t, srvOut, "ready", "server helper")

	// tcpdump, and our own AF_PACKET live capture, both on lo.
	pcapFile := filepath.Join(dir, "capture.pcap")
	dump := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", "lo", "-w", pcapFile, "-U", "--immediate-mode", "-B", "32768", "-n", "tcp port 8080 or tcp port 9090")
	dumpErr, _ := dump.StderrPipe()
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	stopDump := func() {
		dump.Process.Signal(syscall.SIGINT)
		waitExit(t, dump, "tcpdump", 10*time.Second)
	}
	dumpStopped := false
	t.Cleanup(func() {
		if !dumpStopped {
			stopDump()
		}
	})
	waitLine(t, dumpErr, "listening on lo", "tcpdump")

	const sessions = 6
	liveFile := filepath.Join(dir, "live.pcap")
	live := helper("livecap", "USTACK_COPY_OUT="+liveFile, "USTACK_COPY_PORTS=8080,9090", "USTACK_COPY_SESSIONS="+strconv.Itoa(sessions))
	liveIn, _ := live.StdinPipe()
	liveOut, _ := live.StdoutPipe()
	live.Stderr = os.Stderr
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liveIn.Close() })
	waitLine(t, liveOut, "ready", "live capture helper")

	// Clients: curl (keep-alive with three requests, a POST, IPv6,
	// HTTP/1.0) and the binary echo protocol.
	curl := func(args ...string) {
		run(t, "ip", append([]string{"netns", "exec", ns, "curl", "-sS", "--max-time", "10"}, args...)...)
	}
	curl("-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "http://127.0.0.1:8080/a", "http://127.0.0.1:8080"+changedPath, "http://127.0.0.1:8080/missing")
	curl("-o", "/dev/null", "-d", "name=value&other=1", "http://127.0.0.1:8080/post")
	curl("-o", "/dev/null", "-g", "http://[::1]:8080/v6")
	curl("-o", "/dev/null", "-0", "http://127.0.0.1:8080/old")
	// Traffic on other ports must stay out of both captures (the live
	// capture's BPF filter drops it in the kernel).
	if out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:9999/").CombinedOutput(); err == nil {
		t.Fatalf("curl to a closed port succeeded: %s", out)
	}
	for _, sizes := range []string{"10,70000,1,300", "5,5,5"} {
		c := helper("echoclient", "USTACK_COPY_ADDRS=127.0.0.1:9090", "USTACK_COPY_SIZES="+sizes)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("echo client: %v\n%s", err, out)
		}
	}

	// Wait until the capture file holds every session to its end, then
	// stop tcpdump.
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for completeSessions(pcapFile) < sessions {
		if time.Now().After(deadline) {
			var list bytes.Buffer
			listSessions([]string{pcapFile}, AssemblerConfig{}, &list, &list)
			t.Fatalf("capture holds %d complete sessions after 15 s, want %d:\n%s", completeSessions(pcapFile), sessions, list.String())
		}
		<-tick.C // poll the condition until the deadline
	}
	stopDump()
	dumpStopped = true
	if err := waitExit(t, live, "live capture helper", 15*time.Second); err != nil {
		t.Fatalf("live capture helper: %v", err)
	}

	if b, err := os.ReadFile(liveFile + ".userdrop"); err != nil || string(b) != "0" {
		t.Errorf("live capture: userspace port check dropped %q packets (err %v), want 0: the BPF filter should have", b, err)
	}

	captured := readSessions(t, pcapFile)
	if len(captured) != sessions {
		t.Fatalf("capture has %d sessions, want %d", len(captured), sessions)
	}
	for _, s := range captured {
		if !s.Handshake || len(s.Gaps) != 0 || len(s.ClientData) == 0 {
			t.Errorf("session %v: handshake %v gaps %v client bytes %d", s, s.Handshake, s.Gaps, len(s.ClientData))
		}
	}
	// Our live capture saw the same streams as tcpdump.
	liveSessions := readSessions(t, liveFile)
	if len(liveSessions) != sessions {
		t.Errorf("live capture: %d sessions, want %d", len(liveSessions), sessions)
	} else {
		for i := range liveSessions {
			a, b := liveSessions[i], captured[i]
			if a.Client != b.Client || !bytes.Equal(a.ClientData, b.ClientData) || !bytes.Equal(a.ServerData, b.ServerData) || len(a.Gaps) != 0 {
				t.Errorf("live capture session %v differs from tcpdump's %v", a, b)
			}
		}
	}

	// Replay with the command-line entry point to a recording server on
	// the root namespace's loopback.
	rec := startRecServer(t, "127.0.0.1:0", false)
	var out, errb bytes.Buffer
	code := Main([]string{"-x", "8080-" + rec.addr(), "-x", "9090-" + rec.addr(), "--fast", "--json", pcapFile}, &out, &errb)
	if code != 0 {
		t.Fatalf("ustack copy exit %d: %s", code, errb.String())
	}
	var rep struct {
		Connections int            `json:"connections"`
		Status      map[string]int `json:"status"`
		TTFB        struct {
			N   int   `json:"n"`
			P50 int64 `json:"p50_ns"`
		} `json:"ttfb_replayed"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	if rep.Connections != sessions || rep.Status["identical"] != sessions {
		t.Fatalf("replay report: %s", out.String())
	}
	sameStreams(t, rec.recorded(t, sessions), captured, 1)
	t.Logf("replayed %d sessions identical; replayed TTFB p50 %v over %d exchanges", sessions, time.Duration(rep.TTFB.P50), rep.TTFB.N)

	// A server with the /b response changed: exactly the session that
	// asked for it differs, at the changed byte.
	changed := startRecServer(t, "127.0.0.1:0", true)
	out.Reset()
	errb.Reset()
	code = Main([]string{"-x", "8080-" + changed.addr() + ",9090-" + changed.addr(), "--fast", pcapFile}, &out, &errb)
	if code != 0 {
		t.Fatalf("ustack copy exit %d: %s", code, errb.String())
	}
	var target *Session
	for _, s := range captured {
		if bytes.Contains(s.ClientData, []byte("GET "+changedPath+" ")) {
			target = s
		}
	}
	if target == nil {
		t.Fatal("no captured session asked for " + changedPath)
	}
	e := target.Exchanges[1]
	wantOff := e.RespOff + bytes.Index(target.ServerData[e.RespOff:e.RespOff+e.RespLen], httpBody(changedPath, false)) + changedAt
	text := out.String()
	wantLine := fmt.Sprintf("session %d %v -> %v (replayed to %s): response differs at offset %d", target.ID, target.Client, target.Server, changed.addr(), wantOff)
	if !strings.Contains(text, wantLine) || !strings.Contains(text, fmt.Sprintf("identical %d, differs 1,", sessions-1)) {
		t.Fatalf("report does not show exactly session %d differing at %d:\n%s", target.ID, wantOff, text)
	}
	t.Logf("changed server report:\n%s", text)
}

// TestNetnsPythonHTTPServer captures curl against a third-party server
// (python3 -m http.server) in a namespace and replays it to another
// instance on loopback: identical once the Date header is ignored, and
// without that, any difference lies inside a Date line.
func TestNetnsPythonHTTPServer(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIPPED: python3 not installed")
	}
	var rb [4]byte
	rand.Read(rb[:])
	ns := "ustack-copy-" + hex.EncodeToString(rb[:])
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs")
	os.Mkdir(docs, 0o755)
	os.WriteFile(filepath.Join(docs, "a.txt"), bytes.Repeat([]byte("alpha\n"), 1000), 0o644)
	os.WriteFile(filepath.Join(docs, "b.txt"), []byte("beta\n"), 0o644)

	startPy := func(args ...string) (*exec.Cmd, string) {
		cmd := exec.Command(args[0], args[1:]...)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			waitExit(t, cmd, "python http.server", 10*time.Second)
		})
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "Serving HTTP") {
					line <- sc.Text()
					io.Copy(io.Discard, out)
					return
				}
			}
			close(line)
		}()
		tm := time.NewTimer(15 * time.Second)
		defer tm.Stop()
		select {
		case l, ok := <-line:
			if !ok {
				t.Fatal("python http.server exited")
			}
			return cmd, l
		case <-tm.C:
			t.Fatal("python http.server not serving within 15 s")
		}
		return nil, ""
	}
	startPy("ip", "netns", "exec", ns, "python3", "-u", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", docs)

	pcapFile := filepath.Join(dir, "py.pcap")
	dump := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", "lo", "-w", pcapFile, "-U", "--immediate-mode", "-B", "32768", "-n", "tcp port 8000")
	dumpErr, _ := dump.StderrPipe()
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			dump.Process.Signal(syscall.SIGINT)
			waitExit(t, dump, "tcpdump", 10*time.Second)
		}
	}
	t.Cleanup(stop)
	waitLine(t, dumpErr, "listening on lo", "tcpdump")
	run(t, "ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
		"http://127.0.0.1:8000/a.txt", "http://127.0.0.1:8000/b.txt", "http://127.0.0.1:8000/missing")
	const sessions = 3 // http.server speaks HTTP/1.0: one connection per request
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for completeSessions(pcapFile) < sessions {
		if time.Now().After(deadline) {
			t.Fatalf("capture holds %d complete sessions, want %d", completeSessions(pcapFile), sessions)
		}
		<-tick.C // poll the condition until the deadline
	}
	stop()

	// A second instance on the root namespace's loopback, same files.
	_, serving := startPy("python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", docs)
	f := strings.Fields(serving) // Serving HTTP on 127.0.0.1 port N (http://...) ...
	port := ""
	for i, w := range f {
		if w == "port" && i+1 < len(f) {
			port = f[i+1]
		}
	}
	if port == "" {
		t.Fatalf("cannot find the port in %q", serving)
	}
	target := "8000-127.0.0.1:" + port

	code, out, errOut := runMain("-x", target, "--fast", "--json", pcapFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	captured := readSessions(t, pcapFile)
	for _, p := range rep.Problems {
		s := captured[p.Session-1]
		if p.Status != StatusDiffers {
			t.Errorf("session %d: %s, want identical or differing in the Date header", p.Session, p.Status)
			continue
		}
		lineStart := bytes.LastIndexByte(s.ServerData[:p.DiffOffset], '\n') + 1
		if !bytes.HasPrefix(s.ServerData[lineStart:], []byte("Date: ")) {
			t.Errorf("session %d differs at %d outside a Date line: %q", p.Session, p.DiffOffset, s.ServerData[lineStart:p.DiffOffset+1])
		}
	}
	code, out, errOut = runMain("-x", target, "--fast", "--http-ignore", "Date", pcapFile)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("identical %d, differs 0", sessions)) {
		t.Fatalf("with --http-ignore Date: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("python http.server replay:\n%s", out)
}
