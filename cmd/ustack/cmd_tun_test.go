//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/control"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netnsTUN makes a network namespace for the test and arranges for the
// next TUN device ustack opens to be moved into it with the host side at
// 10.91.0.1/24 (ustack uses 10.91.0.2/24). Needs root.
func netnsTUN(t *testing.T, id int) (ns, tun string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING TUN TEST: needs root (creates a network namespace and a TUN device)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("SKIPPING TUN TEST: no /dev/net/tun")
	}
	ns = fmt.Sprintf("ustk-cmd-%d-%d", os.Getpid(), id)
	tun = fmt.Sprintf("ustk%d%d", os.Getpid()%100000, id)
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	afterTUNOpen = func(name string) error {
		for _, c := range [][]string{
			{"ip", "link", "set", "dev", name, "netns", ns},
			{"ip", "-n", ns, "addr", "add", "10.91.0.1/24", "dev", name},
			{"ip", "-n", ns, "link", "set", name, "up"},
		} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
			}
		}
		return nil
	}
	t.Cleanup(func() { afterTUNOpen = nil })
	return ns, tun
}

// waitControl waits (bounded) until the control socket answers.
func waitControl(t *testing.T, sock string, exited <-chan int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := control.Connections(ctx, sock)
		cancel()
		if err == nil {
			return
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited with %d before its control socket answered", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("control socket %s did not answer within 10 s: %v", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeTUNCurl: `ustack serve --tun` in http and https mode; the
// kernel's curl, inside the test's network namespace, fetches from it;
// `ustack ss` and `ustack stat` read its control socket.
func TestServeTUNCurl(t *testing.T) {
	for i, mode := range []string{"http", "https"} {
		t.Run(mode, func(t *testing.T) {
			ns, tun := netnsTUN(t, i)
			dir := t.TempDir()
			sock := filepath.Join(dir, "ctl.sock")
			args := []string{"serve", "--tun", tun, "--addr", "10.91.0.2/24", "--listen", ":8080", "--mode", mode, "--control", sock}
			cert := filepath.Join(dir, "cert.pem")
			if mode == "https" {
				args = append(args, "--cert-out", cert)
			}
			ctx, cancel := context.WithCancel(context.Background())
			baseContext = func() context.Context { return ctx }
			defer func() { baseContext = context.Background }()
			var out, errb syncBuffer
			exited := make(chan int, 1)
			go func() { exited <- run(args, &out, &errb) }()
			defer func() {
				cancel()
				select {
				case code := <-exited:
					if code != 0 {
						t.Errorf("serve exit %d: %s", code, errb.String())
					}
				case <-time.After(10 * time.Second):
					t.Error("serve did not stop within 10 s of cancel")
				}
			}()
			waitControl(t, sock, exited)

			curl := []string{"ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "20"}
			url := "http://10.91.0.2:8080"
			if mode == "https" {
				curl = append(curl, "--cacert", cert)
				url = "https://10.91.0.2:8080"
			}
			if got := sh(t, append(curl, url+"/")...); got != helloBody {
				t.Errorf("curl %s/ = %q", url, got)
			}
			body := sh(t, append(curl, url+"/bytes/2000000")...)
			if len(body) != 2000000 || body[:26] != string(pattern(26)) {
				t.Errorf("curl /bytes/2000000: %d bytes", len(body))
			}

			// An idle kernel connection (bash's /dev/tcp) stays open
			// while ss looks at it; the process is killed afterwards.
			idle := exec.Command("ip", "netns", "exec", ns, "bash", "-c", "exec 3<>/dev/tcp/10.91.0.2/8080; read -t 30 line <&3")
			if err := idle.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { idle.Process.Kill(); idle.Wait() }()
			var o, e bytes.Buffer
			deadline := time.Now().Add(10 * time.Second)
			for {
				o.Reset()
				if code := run([]string{"ss", "--control", sock, "--all"}, &o, &e); code != 0 {
					t.Fatalf("ss: %d %s", code, e.String())
				}
				if strings.Contains(o.String(), "ESTAB") || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("ustack ss:\n%s", o.String())
			if !strings.Contains(o.String(), "LISTEN") || !strings.Contains(o.String(), "ESTAB") || !strings.Contains(o.String(), "10.91.0.1:") {
				t.Errorf("ss lacks the listener or the kernel's idle connection:\n%s", o.String())
			}
			o.Reset()
			if code := run([]string{"stat", "--control", sock, "--json"}, &o, &e); code != 0 {
				t.Fatalf("stat: %d %s", code, e.String())
			}
			var m map[string]uint64
			if err := json.Unmarshal(o.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m["TcpPassiveOpens"] != 3 || m["TcpOutSegs"] < 1000 {
				t.Errorf("stat: TcpPassiveOpens %d (want 3), TcpOutSegs %d", m["TcpPassiveOpens"], m["TcpOutSegs"])
			}
			t.Logf("serve output:\n%s", out.String())
		})
	}
}

// TestGetTUN: `ustack get --tun` fetches a file from python's http.server
// running in the namespace, behind the kernel's TCP.
func TestGetTUN(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIPPING: no python3 for the kernel-side HTTP server")
	}
	ns, tun := netnsTUN(t, 7)
	dir := t.TempDir()
	want := bytes.Repeat([]byte("0123456789abcdef"), 50000)
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	// The server needs the address, which exists once the TUN is moved:
	// bind to any address of the namespace instead.
	srv := exec.Command("ip", "netns", "exec", ns, "python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for exec.Command("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8000/").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("python http.server did not come up within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := filepath.Join(dir, "got")
	var o, e bytes.Buffer
	if code := run([]string{"get", "--tun", tun, "--addr", "10.91.0.2/24", "-o", out, "--timeout", "30s", "http://10.91.0.1:8000/f.bin"}, &o, &e); code != 0 {
		t.Fatalf("get: exit %d: %s", code, e.String())
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("got %d bytes (%v), want %d identical", len(got), err, len(want))
	}
	t.Log(e.String())
}

// TestDialTUN: `ustack dial --tun` to a kernel TCP echo server (python)
// in the test's namespace: what goes in comes back.
func TestDialTUN(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIPPING: no python3 for the kernel-side echo server")
	}
	ns, tun := netnsTUN(t, 8)
	const echo = `import socketserver
class H(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(65536)
            if not b:
                return
            self.request.sendall(b)
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("0.0.0.0", 7007), H).serve_forever()
`
	srv := exec.Command("ip", "netns", "exec", ns, "python3", "-c", echo)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for exec.Command("ip", "netns", "exec", ns, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7007").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("python echo server did not come up within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	in := strings.Repeat("through the kernel and back\n", 20000)
	old := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = old }()
	var o, e bytes.Buffer
	if code := run([]string{"dial", "--tun", tun, "--addr", "10.91.0.2/24", "-v", "10.91.0.1:7007"}, &o, &e); code != 0 {
		t.Fatalf("dial: exit %d: %s", code, e.String())
	}
	if o.String() != in {
		t.Errorf("got %d bytes back, want the %d sent", o.Len(), len(in))
	}
	t.Log(e.String())
}
