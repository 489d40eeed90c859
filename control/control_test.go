package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
)

// fake is a Source with fixed answers.
type fake struct{}

func (fake) Connections() []ustack.ConnInfo {
	return []ustack.ConnInfo{
		{Local: netip.MustParseAddrPort("10.0.0.2:80"), State: tcp.Listen, RecvQ: 0, SendQ: 128},
		{Local: netip.MustParseAddrPort("10.0.0.2:80"), Remote: netip.MustParseAddrPort("10.0.0.1:5000"), State: tcp.Established,
			Info: tcp.Info{State: tcp.Established, SndCwnd: 10, SndSsthresh: 1 << 30, RTT: 1500 * time.Microsecond, RTO: 201 * time.Millisecond, TotalRetrans: 3, BytesReceived: 42,
				CC: cc.Info{Name: "bbr", State: "PROBE_BW_UP", BwEstimate: 11_762_500, MinRTT: 20100 * time.Microsecond, PacingGain: 1.25, CwndGain: 2.25, InflightHi: 180}}},
	}
}

func (fake) Stats() ustack.Stats {
	var st ustack.Stats
	st.IP.InReceives = 7
	st.TCP.ActiveOpens = 1
	st.TCP.TCPFastRetrans = 2
	st.TCP.InCsumErrors = 5
	st.TCP.CurrEstab = -1 // a bug elsewhere must not wrap around
	st.ICMP6.InEchos = 4
	return st
}

func serve(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		srv, err := Listen(path, fake{})
		if err != nil {
			done <- err
			close(ready)
			return
		}
		close(ready)
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(); !errors.Is(err, net.ErrClosed) {
			done <- err
			return
		}
		done <- nil
	}()
	<-ready
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("socket file left behind: %v", err)
		}
	})
	return path
}

func TestConnectionsAndStats(t *testing.T) {
	path := serve(t)
	ctx := context.Background()
	conns, err := Connections(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || conns[0].State != "LISTEN" || conns[0].Remote != "" || conns[0].SendQ != 128 {
		t.Errorf("listener: %+v", conns)
	}
	c := conns[1]
	if c.State != "ESTAB" || c.Remote != "10.0.0.1:5000" || c.Cwnd != 10 || c.Ssthresh != 0 || c.RTT != 1.5 || c.RTO != 201 || c.TotalRetrans != 3 || c.BytesRecv != 42 {
		t.Errorf("connection: %+v", c)
	}
	if c.CC != "bbr" || c.CCState != "PROBE_BW_UP" || c.BwEstimate != 11_762_500 || c.CCMinRTT != 20.1 ||
		c.PacingGain != 1.25 || c.CwndGain != 2.25 || c.InflightHi != 180 || c.InflightLo != 0 {
		t.Errorf("connection's congestion control info: %+v", c)
	}
	ctrs, err := Stats(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, c := range ctrs {
		if _, dup := m[c.Name]; dup {
			t.Errorf("counter %s twice", c.Name)
		}
		m[c.Name] = c.Value
	}
	for name, want := range map[string]uint64{
		"IpInReceives": 7, "TcpActiveOpens": 1, "TcpExtTCPFastRetrans": 2, "TcpInCsumErrors": 5,
		"TcpCurrEstab": 0, "Icmp6InEchos": 4, "TcpExtListenOverflows": 0, "TcpRetransSegs": 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	path := serve(t)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, tc := range []struct{ req, want string }{
		{"not json\n", "bad request"},
		{`{"cmd":"reboot"}` + "\n", `unknown command`},
		{`{"cmd":"stats"}` + "\n", `"TcpActiveOpens"`}, // the connection survives bad requests
	} {
		if _, err := c.Write([]byte(tc.req)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(line, tc.want) {
			t.Errorf("%q -> %q, want %q", tc.req, line, tc.want)
		}
	}
	// An over-long line closes the connection instead of growing a buffer.
	c.Write([]byte(strings.Repeat("x", 2*maxRequest) + "\n"))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("over-long request answered")
	}
	if _, err := Query(context.Background(), path, "nope"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("Query error: %v", err)
	}
}

func TestConcurrentClients(t *testing.T) {
	path := serve(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Connections(context.Background(), path)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestServeContextAndStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// A stale socket file from a dead server is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, fake{}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := Stats(context.Background(), path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not answer within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second server on a live socket is refused.
	if _, err := Listen(path, fake{}); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second Listen: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// FuzzRequest: any request line gets one JSON answer and never a panic.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"cmd":"connections"}`))
	f.Add([]byte(`{"cmd":"stats"}`))
	f.Add([]byte(`{"cmd":1}`))
	f.Add([]byte(`[]`))
	s := &Server{src: fake{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req Request
		var resp Response
		if err := json.Unmarshal(b, &req); err != nil {
			return
		}
		resp = s.answer(req)
		if _, err := json.Marshal(resp); err != nil {
			t.Fatal(err)
		}
	})
}
