package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
)

// payload is a deterministic pseudo-random stream of n bytes.
func payload(n int64, seed byte) io.Reader {
	return io.LimitReader(mrand.NewChaCha8([32]byte{seed}), n)
}

func sha256Of(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

// transferSize is the size of the large transfers: 64 MiB by default,
// USTACK_INTEROP_BYTES overrides (e.g. 1073741824 for 1 GiB).
func transferSize(t testing.TB) int64 {
	if v := os.Getenv("USTACK_INTEROP_BYTES"); v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			t.Fatalf("bad USTACK_INTEROP_BYTES %q", v)
		}
		return n
	}
	return 64 << 20
}

// httpHandler serves "/" (a small page), "/bytes?n=N&seed=S" (N
// deterministic bytes) and POST "/sha256" (the hash of the body).
func httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<html><body>hello from ustack to %s</body></html>\n", r.RemoteAddr)
	})
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		var seed int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		fmt.Sscan(r.URL.Query().Get("seed"), &seed)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		io.Copy(w, payload(n, byte(seed)))
	})
	mux.HandleFunc("/sha256", func(w http.ResponseWriter, r *http.Request) {
		sum, n := sha256Of(r.Body)
		fmt.Fprintf(w, "%s %d\n", sum, n)
	})
	return mux
}

// serveHTTP serves httpHandler on a ustack listener until the test ends.
func serveHTTP(t *testing.T, s *ustack.Stack, addr string, tlsCfg *tls.Config) {
	t.Helper()
	ln, err := s.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{Handler: httpHandler(), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// selfSignedCert returns a certificate for the stack's addresses and the
// path of its PEM file for curl --cacert.
func selfSignedCert(t *testing.T, ips ...netip.Addr) (tls.Certificate, string) {
	t.Helper()
	cert := newSelfSigned(t, "ustack interop", nil, ips...)
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

func urlHost(a netip.Addr, port int) string {
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// TestCurlFetchesFromUstack: the kernel's curl fetches pages from net/http
// served on ustack, over HTTP and HTTPS, IPv4 and IPv6; the capture of the
// HTTP exchange is clean for tshark.
func TestCurlFetchesFromUstack(t *testing.T) {
	n := NewNetns(t, NetnsConfig{})
	requireTool(t, "curl")
	ep, capPath, f := n.Capture(t, "http.pcap")
	s := n.NewStack(t, ep, ustack.Config{})
	serveHTTP(t, s, ":80", nil)
	cert, caPath := selfSignedCert(t, n.Stack4.Addr(), n.Stack6.Addr())
	serveHTTP(t, s, ":443", &tls.Config{Certificates: []tls.Certificate{cert}})

	for _, a := range []netip.Addr{n.Stack4.Addr(), n.Stack6.Addr()} {
		for _, scheme := range []string{"http", "https"} {
			port := 80
			if scheme == "https" {
				port = 443
			}
			url := fmt.Sprintf("%s://%s/", scheme, urlHost(a, port))
			out := n.Exec(t, "curl", "-sS", "--max-time", "20", "--cacert", caPath, url)
			if !strings.Contains(out, "hello from ustack") {
				t.Errorf("%s: %q", url, out)
			}
			t.Logf("%s -> %s", url, strings.TrimSpace(out))
		}
	}
	// A closed port: the kernel's connect gets ECONNREFUSED from our RST
	// (curl exit status 7, "Couldn't connect").
	for _, a := range []netip.Addr{n.Stack4.Addr(), n.Stack6.Addr()} {
		out, err := runErr("ip", "netns", "exec", n.Name, "curl", "-sS", "--max-time", "5", "http://"+urlHost(a, 81)+"/")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(out, "connect") {
			t.Errorf("curl to a closed port: %v %q, want exit 7 connection refused", err, out)
		}
	}
	st := s.Stats()
	if st.TCP.OutRsts != 2 || st.TCP.NoPort != 2 {
		t.Errorf("OutRsts %d NoPort %d, want 2 and 2", st.TCP.OutRsts, st.TCP.NoPort)
	}
	t.Logf("TCP: InSegs %d OutSegs %d RetransSegs %d PassiveOpens %d OutRsts %d", st.TCP.InSegs, st.TCP.OutSegs, st.TCP.RetransSegs, st.TCP.PassiveOpens, st.TCP.OutRsts)
	if st.TCP.PassiveOpens != 4 {
		t.Errorf("PassiveOpens %d, want 4", st.TCP.PassiveOpens)
	}
	s.Close()
	f.Close()
	checkCapture(t, capPath, 40)
}

// TestLargeTransfersWithKernel moves transferSize bytes each way between
// ustack and the kernel, over IPv4 and IPv6, and compares SHA-256 sums:
// the kernel's curl downloads from and uploads to net/http on ustack, and a
// ustack client downloads from a kernel HTTP server and streams to a kernel
// TCP sink.
func TestLargeTransfersWithKernel(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) { largeTransfers(t, offload) })
	}
}

func largeTransfers(t *testing.T, offload bool) {
	n := NewNetns(t, NetnsConfig{Offload: offload})
	requireTool(t, "curl")
	requireTool(t, "python3")
	size := transferSize(t)
	s := n.NewStack(t, n.TUN, ustack.Config{})
	serveHTTP(t, s, ":80", nil)
	dir := t.TempDir()

	// A kernel-side HTTP server (python) with a file to download, and a
	// kernel-side TCP sink that answers with the SHA-256 of what it got.
	file := filepath.Join(dir, "big.bin")
	fw, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(fw, payload(size, 7))
	fw.Close()
	wantFile, _ := sha256Of(payload(size, 7))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	startKernel := func(name string, args ...string) {
		cmd := n.Command(ctx, name, args...)
		cmd.Dir = dir
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			cmd.Wait()
		})
	}
	startKernel("python3", "-m", "http.server", "--bind", "::", "8000", "--directory", dir)
	startSink(t, n)

	for _, fam := range []struct {
		name          string
		stack, kernel netip.Addr
	}{{"v4", n.Stack4.Addr(), n.Kernel4.Addr()}, {"v6", n.Stack6.Addr(), n.Kernel6.Addr()}} {
		t.Run(fam.name, func(t *testing.T) {
			// kernel curl <- ustack net/http
			out := filepath.Join(dir, "dl-"+fam.name)
			url := fmt.Sprintf("http://%s/bytes?n=%d&seed=3", urlHost(fam.stack, 80), size)
			start := time.Now()
			n.Exec(t, "curl", "-sS", "--max-time", "300", "-o", out, url)
			d := time.Since(start)
			fr, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			got, gotN := sha256Of(fr)
			fr.Close()
			want, _ := sha256Of(payload(size, 3))
			if got != want || gotN != size {
				t.Errorf("curl download: %d bytes sha %s, want %d %s", gotN, got, size, want)
			}
			t.Logf("kernel curl <- ustack: %d MiB in %v (%.0f Mbit/s)", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)

			// kernel curl -> ustack net/http
			start = time.Now()
			// -T streams the file (PUT); --data-binary would load it in memory.
			res := n.Exec(t, "curl", "-sS", "--max-time", "300", "-T", file,
				"-H", "Content-Type: application/octet-stream", fmt.Sprintf("http://%s/sha256", urlHost(fam.stack, 80)))
			d = time.Since(start)
			if res != fmt.Sprintf("%s %d\n", wantFile, size) {
				t.Errorf("curl upload: ustack got %q, want %s %d", res, wantFile, size)
			}
			t.Logf("kernel curl -> ustack: %d MiB in %v (%.0f Mbit/s)", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)

			// ustack http.Client <- kernel python http.server
			client := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}, Timeout: 300 * time.Second}
			url = fmt.Sprintf("http://%s/big.bin", urlHost(fam.kernel, 8000))
			var resp *http.Response
			waitUntil(t, "kernel HTTP server", 20*time.Second, func() bool {
				resp, err = client.Get(url)
				return err == nil
			})
			start = time.Now()
			got, gotN = sha256Of(resp.Body)
			resp.Body.Close()
			d = time.Since(start)
			if got != wantFile || gotN != size {
				t.Errorf("ustack download: %d bytes sha %s, want %d %s", gotN, got, size, wantFile)
			}
			t.Logf("ustack client <- kernel: %d MiB in %v (%.0f Mbit/s)", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)

			// ustack raw TCP -> kernel sink
			var c net.Conn
			waitUntil(t, "kernel sink", 20*time.Second, func() bool {
				c, err = s.Dial("tcp", urlHost(fam.kernel, 9000))
				return err == nil
			})
			start = time.Now()
			c.SetDeadline(time.Now().Add(300 * time.Second))
			if _, err := io.Copy(c, payload(size, 5)); err != nil {
				t.Fatalf("send to kernel: %v", err)
			}
			c.(*ustack.TCPConn).CloseWrite()
			reply, err := io.ReadAll(c)
			c.Close()
			d = time.Since(start)
			want, _ = sha256Of(payload(size, 5))
			if err != nil || string(reply) != fmt.Sprintf("%s %d\n", want, size) {
				t.Errorf("kernel sink: %q %v, want %s %d", reply, err, want, size)
			}
			t.Logf("ustack -> kernel sink: %d MiB in %v (%.0f Mbit/s)", size>>20, d.Round(time.Millisecond), float64(size)*8/d.Seconds()/1e6)
		})
	}
	st := s.Stats()
	t.Logf("TCP: InSegs %d OutSegs %d RetransSegs %d ActiveOpens %d PassiveOpens %d", st.TCP.InSegs, st.TCP.OutSegs, st.TCP.RetransSegs, st.TCP.ActiveOpens, st.TCP.PassiveOpens)
	t.Logf("IP: %+v", st.IP)
	if tun, ok := n.TUN.(*link.TUN); ok && offload {
		t.Logf("TUN offload: %+v", tun.Stats())
	}
}

// startSink runs sinkPy on port 9000 in the namespace until the test ends.
func startSink(t *testing.T, n *Netns) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := n.Command(ctx, "python3", "-c", sinkPy, "9000")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
}

// sinkPy accepts TCP connections on [::]:port (dual stack) and answers each
// with "<sha256 hex> <bytes>\n" of what it read until EOF.
const sinkPy = `
import socket, hashlib, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
def serve(c):
    h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b); n += len(b)
    c.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

// waitUntil polls cond (which may block) until it returns true or fails
// the test after timeout.
func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
