package interop

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/tcp"
)

// TestTLSHandshakeInPcap runs crypto/tls handshakes pinned to TLS 1.2 and
// TLS 1.3 between two ustack stacks joined by link.Pipe, captures one end
// with link.Pcap, and checks with tshark that the handshake messages are on
// the wire as each version defines them, with no malformed packets and no
// bad TCP or IP checksums. No root is needed.
func TestTLSHandshakeInPcap(t *testing.T) {
	tshark := requireTool(t, "tshark")
	for _, tc := range []struct {
		name    string
		version uint16
	}{
		{"TLS1.2", tls.VersionTLS12},
		{"TLS1.3", tls.VersionTLS13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pcap := tlsOverUstackPcap(t, tc.version)
			const port = "8443"
			fields := tsharkRun(t, tshark, "-r", pcap, "-d", "tcp.port=="+port+",tls",
				"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
				"-Y", "tls", "-T", "fields", "-E", "separator=|",
				"-e", "frame.number", "-e", "tls.record.content_type", "-e", "tls.record.opaque_type", "-e", "tls.handshake.type",
				"-e", "tls.record.version", "-e", "tls.handshake.extensions.supported_version",
				"-e", "_ws.col.Info")
			t.Logf("tshark fields (frame|content types|opaque types|handshake types|record versions|supported_versions|info):\n%s", fields)
			var hsTypes, contentTypes, supVersions []string
			for _, line := range strings.Split(strings.TrimSpace(fields), "\n") {
				f := strings.Split(line, "|")
				if len(f) < 7 {
					continue
				}
				contentTypes = append(contentTypes, splitList(f[1])...)
				contentTypes = append(contentTypes, splitList(f[2])...) // TLS 1.3 outer type of encrypted records
				hsTypes = append(hsTypes, splitList(f[3])...)
				supVersions = append(supVersions, splitList(f[5])...)
			}
			has := func(list []string, v string) bool {
				for _, x := range list {
					if x == v {
						return true
					}
				}
				return false
			}
			switch tc.version {
			case tls.VersionTLS12:
				// ClientHello, ServerHello, Certificate, ServerKeyExchange,
				// ServerHelloDone, ClientKeyExchange in clear.
				for _, ht := range []string{"1", "2", "11", "12", "14", "16"} {
					if !has(hsTypes, ht) {
						t.Errorf("TLS 1.2: handshake type %s not in the capture (types %v)", ht, hsTypes)
					}
				}
				// ChangeCipherSpec (20) from both sides, then the
				// encrypted Finished messages.
				if !has(contentTypes, "20") {
					t.Errorf("TLS 1.2: no ChangeCipherSpec record (content types %v)", contentTypes)
				}
				if n := strings.Count(fields, "Encrypted Handshake Message"); n < 2 {
					t.Errorf("TLS 1.2: %d encrypted handshake messages (Finished), want 2", n)
				}
				if has(supVersions, "0x0304") {
					t.Errorf("TLS 1.2 handshake offered or chose TLS 1.3: %v", supVersions)
				}
				if !strings.Contains(fields, "0x0303") {
					t.Errorf("TLS 1.2: no record with version 0x0303")
				}
			case tls.VersionTLS13:
				if !has(hsTypes, "1") || !has(hsTypes, "2") {
					t.Errorf("TLS 1.3: ClientHello/ServerHello not visible (types %v)", hsTypes)
				}
				// Everything after ServerHello is encrypted: no
				// Certificate or key exchange in clear.
				for _, ht := range []string{"11", "12", "14", "16"} {
					if has(hsTypes, ht) {
						t.Errorf("TLS 1.3: handshake type %s visible in clear", ht)
					}
				}
				if !has(supVersions, "0x0304") {
					t.Errorf("TLS 1.3: supported_versions never says 0x0304 (got %v)", supVersions)
				}
				// Both ClientHello and ServerHello carry 0x0304 (the
				// ServerHello's selected_version).
				sh := tsharkRun(t, tshark, "-r", pcap, "-d", "tcp.port=="+port+",tls",
					"-Y", "tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304",
					"-T", "fields", "-e", "frame.number")
				if strings.TrimSpace(sh) == "" {
					t.Errorf("TLS 1.3: no ServerHello selecting 0x0304")
				}
				if !has(contentTypes, "23") {
					t.Errorf("TLS 1.3: no application data records (content types %v)", contentTypes)
				}
			}
			// Application data in both directions.
			if n := strings.Count(fields, "Application Data"); n < 2 {
				t.Errorf("%d Application Data records, want at least 2", n)
			}

			t.Logf("tshark summary:\n%s", tsharkRun(t, tshark, "-r", pcap, "-d", "tcp.port=="+port+",tls"))

			if rst := tsharkRun(t, tshark, "-r", pcap, "-Y", "tcp.flags.reset == 1", "-T", "fields", "-e", "frame.number"); strings.TrimSpace(rst) != "" {
				t.Errorf("RST in the capture (frames %s); want a clean FIN close", strings.TrimSpace(rst))
			}

			// Expert info: no malformed packets, no bad checksums.
			expert := tsharkRun(t, tshark, "-r", pcap, "-q", "-d", "tcp.port=="+port+",tls",
				"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-z", "expert")
			t.Logf("tshark -z expert:\n%s", expert)
			low := strings.ToLower(expert)
			for _, bad := range []string{"malformed", "bad checksum", "checksum_bad", "incorrect", "exception"} {
				if strings.Contains(low, bad) {
					t.Errorf("tshark expert info mentions %q", bad)
				}
			}
			badCk := tsharkRun(t, tshark, "-r", pcap, "-d", "tcp.port=="+port+",tls",
				"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
				"-Y", "_ws.malformed || tcp.checksum.status == 0 || ip.checksum.status == 0",
				"-T", "fields", "-e", "frame.number")
			if s := strings.TrimSpace(badCk); s != "" {
				t.Errorf("malformed or bad-checksum frames: %s", s)
			}
			good := tsharkRun(t, tshark, "-r", pcap, "-o", "tcp.check_checksum:TRUE",
				"-Y", "tcp.checksum.status == 1", "-T", "fields", "-e", "frame.number")
			if n := len(strings.Fields(good)); n == 0 {
				t.Errorf("tshark verified no TCP checksum as good; checksum checking is not active")
			} else {
				t.Logf("%d frames with a verified-good TCP checksum", n)
			}
		})
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func tsharkRun(t *testing.T, tshark string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(tshark, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// tlsOverUstackPcap runs one TLS handshake and an echo exchange at the given
// version between two stacks over a pipe and returns the pcap file path.
func tlsOverUstackPcap(t *testing.T, version uint16) string {
	cert := newSelfSigned(t, "ustack.test", []string{"ustack.test"})
	a, b := link.Pipe(1500)
	pa, path, f := capture(t, a, "tls.pcap")
	sa, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.AddInterface("p0", pa, netip.MustParsePrefix("10.7.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInterface("p0", b, netip.MustParsePrefix("10.7.0.2/24")); err != nil {
		t.Fatal(err)
	}
	stacksClosed := false
	closeStacks := func() {
		if !stacksClosed {
			stacksClosed = true
			sa.Close()
			sb.Close()
		}
	}
	defer closeStacks()

	ln, err := sb.Listen("tcp", "10.7.0.2:8443")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version}
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		tc := tls.Server(c, srvCfg)
		if err := tc.Handshake(); err != nil {
			srvErr <- fmt.Errorf("server handshake: %w", err)
			return
		}
		// Echo until the client closes its side.
		_, err = io.Copy(tc, tc)
		if err == nil {
			err = tc.CloseWrite()
		}
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		srvErr <- err
	}()

	raw, err := sa.Dial("tcp", "10.7.0.2:8443")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	cc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "ustack.test", MinVersion: version, MaxVersion: version})
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if st := cc.ConnectionState(); st.Version != version {
		t.Fatalf("negotiated version %#x, want %#x", st.Version, version)
	}
	msg := make([]byte, 3000)
	r := mrand.NewChaCha8([32]byte{byte(version)})
	r.Read(msg)
	echoErr := make(chan error, 1)
	go func() {
		_, err := cc.Write(msg)
		if err == nil {
			err = cc.CloseWrite()
		}
		echoErr <- err
	}()
	got, err := io.ReadAll(cc)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-echoErr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(got), len(msg))
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	cc.Close()
	// Let both closes finish (the side that closed first in TIME-WAIT,
	// the other gone) so the capture ends with a clean FIN exchange
	// rather than a RST from closing the stacks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, ss := sa.Connections(), sb.Connections()
		done := true
		for _, ci := range append(cs, ss...) {
			if ci.State != tcp.TimeWait && ci.State != tcp.Listen {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("close did not finish: client %v, server %v", cs, ss)
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeStacks()
	if err := pa.(*link.PcapEndpoint).Err(); err != nil {
		t.Fatalf("pcap: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
