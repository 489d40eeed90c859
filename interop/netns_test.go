package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
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

// requireRoot skips loudly when not root, and fails under CI=true: CI must
// run the interop tests.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("interop tests need root (CI=true: refusing to skip)")
	}
	t.Skip("SKIPPING Linux interop test: needs root to create network namespaces and TUN devices")
}

// requireTool fails (CI) or skips when a command-line tool is missing.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true: %v", name, err)
	}
	t.Skipf("SKIPPING: %s not installed", name)
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// run runs a command and fails the test on error, showing its output.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

// stdout runs a command and returns its standard output only (standard
// error is appended to the error).
func stdout(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), nil
}

// Netns is a network namespace created by a test, with a TUN device whose
// kernel side lives in the namespace and whose file descriptor (the ustack
// side) stays in the test process.
type Netns struct {
	Name             string
	Dev              string
	TUN              link.Endpoint
	Kernel4, Kernel6 netip.Prefix // kernel addresses on the TUN in the namespace
	Stack4, Stack6   netip.Prefix // ustack addresses
}

// NetnsConfig sets up a namespace; zero fields take the defaults below.
type NetnsConfig struct {
	MTU int // default 1500
	// Offload opens the TUN with IFF_VNET_HDR checksum and segmentation
	// offload (link.TUNConfig.Offload).
	Offload bool
}

// NewNetns creates a namespace "ustack-<random>", opens a TUN device in the
// root namespace, moves it into the namespace and configures addresses and
// routes only inside the namespace. Everything is removed in t.Cleanup.
func NewNetns(t testing.TB, cfg NetnsConfig) *Netns {
	t.Helper()
	requireRoot(t)
	requireTool(t, "ip")
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	id := randHex(4)
	n := &Netns{
		Name:    "ustack-" + id,
		Dev:     "ust" + id,
		Kernel4: netip.MustParsePrefix("10.99.0.1/24"),
		Kernel6: netip.MustParsePrefix("fd00:99::1/64"),
		Stack4:  netip.MustParsePrefix("10.99.0.2/24"),
		Stack6:  netip.MustParsePrefix("fd00:99::2/64"),
	}
	run(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := runErr("ip", "netns", "del", n.Name); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", n.Name, err, out)
		}
	})
	tun, err := link.OpenTUNConfig(link.TUNConfig{Name: n.Dev, MTU: cfg.MTU, Offload: cfg.Offload})
	if err != nil {
		t.Fatalf("OpenTUN %s: %v", n.Dev, err)
	}
	n.TUN = tun
	t.Cleanup(func() { tun.Close() }) // also closed by Stack.Close; closing twice is harmless
	run(t, "ip", "link", "set", "dev", n.Dev, "netns", n.Name)
	ns := func(args ...string) { run(t, "ip", append([]string{"-n", n.Name}, args...)...) }
	ns("link", "set", "lo", "up")
	ns("link", "set", "dev", n.Dev, "mtu", fmt.Sprint(cfg.MTU))
	ns("addr", "add", n.Kernel4.String(), "dev", n.Dev)
	ns("-6", "addr", "add", n.Kernel6.String(), "dev", n.Dev, "nodad")
	ns("link", "set", "dev", n.Dev, "up")
	return n
}

// Exec runs a command inside the namespace and fails the test on error.
func (n *Netns) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Command returns a command that runs inside the namespace.
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// NewStack starts a ustack Stack on the TUN endpoint ep (n.TUN or a tap of
// it) with the stack addresses and default routes via the kernel side.
func (n *Netns) NewStack(t testing.TB, ep link.Endpoint, cfg ustack.Config) *ustack.Stack {
	t.Helper()
	s, err := ustack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddInterface("tun0", ep, n.Stack4, n.Stack6); err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addrs returns the kernel and the ustack address of the namespace's IPv4
// (v6 false) or IPv6 (v6 true) subnet.
func (n *Netns) Addrs(v6 bool) (kernel, stack netip.Addr) {
	if v6 {
		return n.Kernel6.Addr(), n.Stack6.Addr()
	}
	return n.Kernel4.Addr(), n.Stack4.Addr()
}

// runFamilies runs fn as the subtests "IPv4" (v6 false) and "IPv6".
func runFamilies(t *testing.T, fn func(t *testing.T, v6 bool)) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { fn(t, v6) })
	}
}

// Capture wraps the TUN with link.Pcap writing to the file name in
// t.TempDir(), like capture.
func (n *Netns) Capture(t testing.TB, name string) (link.Endpoint, string, *os.File) {
	t.Helper()
	return capture(t, n.TUN, name)
}

// capture wraps ep with link.Pcap writing to the file name in t.TempDir().
// It returns the endpoint, the file's path and the file, which t.Cleanup
// closes too (close it early to read a complete capture).
func capture(t testing.TB, ep link.Endpoint, name string) (link.Endpoint, string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pep, err := link.Pcap(ep, f)
	if err != nil {
		t.Fatal(err)
	}
	return pep, path, f
}

// newSelfSigned makes a self-signed ECDSA P-256 CA certificate for the
// common name cn, the DNS names and the IP addresses, valid from an hour
// ago to an hour from now, with Leaf set.
func newSelfSigned(t testing.TB, cn string, dnsNames []string, ips ...netip.Addr) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              dnsNames,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// StartServer starts a command inside the namespace and waits until the
// first line of its standard output is ready; t.Cleanup stops it.
func (n *Netns) StartServer(t testing.TB, ready string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	srv := n.Command(ctx, name, args...)
	srvOut, err := srv.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var srvErr strings.Builder
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Wait()
	})
	if line, err := bufio.NewReader(srvOut).ReadString('\n'); err != nil || strings.TrimSpace(line) != ready {
		t.Fatalf("%s server did not start: %q %v %s", name, line, err, srvErr.String())
	}
}
