package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// systemsForBench are the systems the go test benchmarks cover; the kernel
// one needs root for its private namespace and falls back to 127.0.0.1.
var systemsForBench = []struct {
	name string
	new  func(NetConfig) (System, error)
}{
	{"kernel", newKernel},
	{"netstack", newNetstack},
	{"ustack", newUstack},
}

// connPair builds sys with cfg and returns one established connection.
func connPair(b testing.TB, newSys func(NetConfig) (System, error), cfg NetConfig) (client, server net.Conn) {
	b.Helper()
	sys, err := newSys(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := sys.Listen(basePort)
	if err != nil {
		sys.Close()
		b.Fatal(err)
	}
	client, server, err = dialAccept(sys, ln, basePort)
	ln.Close()
	if err != nil {
		sys.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		client.Close()
		server.Close()
		sys.Close()
	})
	return client, server
}

// BenchmarkBulk moves 64 KiB per iteration over one connection.
func BenchmarkBulk(b *testing.B) {
	for _, s := range systemsForBench {
		for _, mtu := range []int{1500, 9000, 65000} {
			b.Run(s.name+"/mtu="+itoa(mtu), func(b *testing.B) {
				client, server := connPair(b, s.new, NetConfig{MTU: mtu})
				const chunk = 64 << 10
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					server.SetReadDeadline(time.Now().Add(5 * time.Minute))
					io.Copy(io.Discard, server)
				}()
				buf := make([]byte, chunk)
				b.SetBytes(chunk)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := client.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if c, ok := client.(interface{ CloseWrite() error }); ok {
					c.CloseWrite()
				} else {
					client.Close()
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkRR measures one 1-byte request/response transaction per
// iteration.
func BenchmarkRR(b *testing.B) {
	for _, s := range systemsForBench {
		b.Run(s.name, func(b *testing.B) {
			client, server := connPair(b, s.new, NetConfig{MTU: 1500})
			go func() {
				p := make([]byte, 1)
				for {
					if _, err := io.ReadFull(server, p); err != nil {
						return
					}
					if _, err := server.Write(p); err != nil {
						return
					}
				}
			}()
			p := []byte{'x'}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(p); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnect measures one connection setup and teardown per
// iteration (dial, accept, both close).
func BenchmarkConnect(b *testing.B) {
	for _, s := range systemsForBench {
		b.Run(s.name, func(b *testing.B) {
			sys, err := s.new(NetConfig{MTU: 1500})
			if err != nil {
				b.Fatal(err)
			}
			defer sys.Close()
			ln, err := sys.Listen(basePort)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := sys.Dial(ctx, basePort)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

func TestSeriesMedian(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		s := &Series{Samples: tc.in}
		s.finish()
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max {
			t.Errorf("%v: got median %v min %v max %v, want %v %v %v", tc.in, s.Median, s.Min, s.Max, tc.med, tc.min, tc.max)
		}
	}
	s := &Series{Errors: []string{"boom"}}
	s.finish()
	if s.NA != "boom" || s.String() != "n/a (boom)" {
		t.Errorf("error-only series: NA %q String %q", s.NA, s.String())
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--runs", "5", "--only", "rr,loss,rr", "--losses", "0,1.5", "--mtus", "1500"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 5 || strings.Join(o.Only, ",") != "rr,loss" || len(o.Losses) != 2 || o.Losses[1] != 0.015 || len(o.MTUs) != 1 {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"--runs", "0"}, {"--only", "nope"}, {"--systems", "bsd"}, {"--mtus", "x"}, {"--losses", "200"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestRunSmoke runs every benchmark once with tiny durations on the
// in-process stacks and checks that each produced a positive figure.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke run takes ~20 s")
	}
	o, err := parseFlags([]string{"--runs", "1", "--systems", "netstack,ustack",
		"--only", "throughput,rr,connrate,memory,impaired",
		"--mtus", "1500", "--bulk-dur", "200ms", "--rr-dur", "200ms", "--conn-dur", "200ms",
		"--mem-conns", "200", "--impair-dur", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	rep := Run(o, makers(o.Systems))
	for _, f := range rep.Figures {
		for name, sr := range f.Values {
			if len(sr.Samples) != 1 || sr.Median < 0 || (sr.Median == 0 && f.Metric != "link_dropped") {
				t.Errorf("%s %s %s %s: %+v", f.Bench, f.Case, f.Metric, name, sr)
			}
		}
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	if !strings.Contains(buf.String(), "ustack/netstack") {
		t.Errorf("table lacks the ratio column:\n%s", buf.String())
	}
	if testing.Verbose() {
		os.Stdout.Write(buf.Bytes())
	}
}

func TestParseFlagsAliases(t *testing.T) {
	o, err := parseFlags([]string{"--only", "cpu,throughput,mem"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Only, ",") != "throughput,memory" {
		t.Errorf("--only cpu,throughput,mem gave %v", o.Only)
	}
}

// stuckSystem is a System whose benchmark blocks until it is closed.
type stuckSystem struct{ closed chan struct{} }

func (*stuckSystem) Name() string                                { return "stuck" }
func (*stuckSystem) Listen(int) (net.Listener, error)            { return nil, io.EOF }
func (*stuckSystem) Dial(context.Context, int) (net.Conn, error) { return nil, io.EOF }
func (s *stuckSystem) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

func TestWatchdogClosesStuckRun(t *testing.T) {
	sys := &stuckSystem{closed: make(chan struct{})}
	m := Maker{Name: "stuck", New: func(NetConfig) (System, error) { return sys, nil }}
	c := benchCase{limit: 50 * time.Millisecond, run: func(s System) (map[string]float64, error) {
		<-s.(*stuckSystem).closed
		return nil, io.ErrUnexpectedEOF
	}}
	_, err := runOne(m, NetConfig{}, c)
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("runOne: %v, want a watchdog error", err)
	}
	select {
	case <-sys.closed:
	default:
		t.Fatal("the stuck system was not closed")
	}
}
