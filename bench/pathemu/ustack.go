//go:build linux

package pathemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
)

// DiscardEnv names the environment variable that turns a program calling
// MaybeServeDiscard into a one-off discard server listening on its value
// (host:port).
const DiscardEnv = "PATHEMU_DISCARD_ADDR"

// DiscardResult is what the discard server prints (one JSON line).
type DiscardResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"` // from accept to EOF
	Error   string  `json:"error,omitempty"`
}

// MaybeServeDiscard serves one discard connection and exits the process if
// DiscardEnv is set; otherwise it returns at once. Call it first thing in
// main (or TestMain) of a binary used as UstackFlow.Helper.
func MaybeServeDiscard() {
	addr := os.Getenv(DiscardEnv)
	if addr == "" {
		return
	}
	r := serveDiscard(addr, 5*time.Minute)
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Error != "" {
		os.Exit(1)
	}
	os.Exit(0)
}

func serveDiscard(addr string, limit time.Duration) DiscardResult {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return DiscardResult{Error: err.Error()}
	}
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(limit))
	c, err := ln.Accept()
	if err != nil {
		return DiscardResult{Error: err.Error()}
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return DiscardResult{Bytes: n, Seconds: time.Since(start).Seconds(), Error: err.Error()}
		}
	}
	return DiscardResult{Bytes: n, Seconds: time.Since(start).Seconds()}
}

// UstackFlow is a bulk transfer from a ustack Stack owning AddrA on side A
// (the Path must have Config.StackA) to a Go discard server run by the
// Linux kernel in namespace B.
type UstackFlow struct {
	CC       string        // tcp.Config.CongestionControl: cubic, reno, bbr
	Port     int           // default 5301
	Addr     netip.Addr    // the stack's address on side A; default AddrA
	Duration time.Duration // default 20 s
	// Helper is the program run in namespace B as the discard server (it
	// must call MaybeServeDiscard); default: this executable.
	Helper string
	// Trace, if set, gets a line of the sender's state (tcp.Info: cwnd,
	// pacing and delivery rate, RTT, recovery state, retransmits) every
	// 250 ms.
	Trace io.Writer

	stack   *ustack.Stack
	server  *discardServer
	done    chan error
	retrans int64
	rtt     time.Duration
	note    string
}

// Name implements Flow.
func (f *UstackFlow) Name() string { return "ustack-" + f.CC }

// Start implements Flow.
func (f *UstackFlow) Start(ctx context.Context, p *Path) error {
	if !f.Addr.IsValid() {
		f.Addr = AddrA
	}
	ep, err := p.StackEndpoint(f.Addr)
	if err != nil {
		return fmt.Errorf("pathemu: ustack flow needs a Path with StackA: %w", err)
	}
	if f.Port == 0 {
		f.Port = 5301
	}
	if f.Duration == 0 {
		f.Duration = 20 * time.Second
	}
	cfg := tcp.DefaultConfig()
	cfg.CongestionControl = f.CC
	s, err := ustack.New(ustack.Config{TCP: cfg})
	if err != nil {
		return fmt.Errorf("pathemu: ustack: %w", err)
	}
	if err := s.AddInterface("pa", ep, netip.PrefixFrom(f.Addr, Prefix.Bits())); err != nil {
		s.Close()
		return fmt.Errorf("pathemu: ustack: %w", err)
	}
	f.stack = s
	dst := netip.AddrPortFrom(AddrB, uint16(f.Port))
	if f.server, err = startDiscard(ctx, p, f.Helper, dst); err != nil {
		s.Close()
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := s.DialContext(dctx, "tcp", dst.String())
	cancel()
	if err != nil {
		f.server.kill()
		s.Close()
		return fmt.Errorf("pathemu: ustack dial %s: %w", dst, err)
	}
	f.done = make(chan error, 1)
	go func() { f.done <- f.send(c.(*ustack.TCPConn)) }()
	return nil
}

func (f *UstackFlow) send(c *ustack.TCPConn) error {
	buf := make([]byte, 128<<10)
	end := time.Now().Add(f.Duration)
	c.SetWriteDeadline(end)
	var err error
	if f.Trace != nil {
		stop := make(chan struct{})
		defer close(stop)
		go f.trace(c, stop)
	}
	for time.Now().Before(end) {
		if _, err = c.Write(buf); err != nil {
			break
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	in := c.Info()
	f.retrans = int64(in.TotalRetrans)
	f.rtt = in.RTT
	f.note = fmt.Sprintf("cwnd=%d ssthresh=%d pacing=%.1fMbit/s delivery=%.1fMbit/s minrtt=%v sndwnd=%dB notsent=%dB ca=%v",
		in.SndCwnd, in.SndSsthresh, float64(in.PacingRate)*8/1e6, float64(in.DeliveryRate)*8/1e6, in.MinRTT, in.SndWnd, in.NotsentBytes, in.CAState)
	c.SetWriteDeadline(time.Time{})
	if cerr := c.CloseWrite(); err == nil {
		err = cerr
	}
	return err
}

func (f *UstackFlow) trace(c *ustack.TCPConn, stop chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var last uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		in := c.Info()
		fmt.Fprintf(f.Trace, "%s t=%5.2fs acked=%6.1fMbit/s cwnd=%4d inflight=%4d pacing=%6.1fMbit/s delivery=%6.1fMbit/s srtt=%5.1fms minrtt=%5.1fms ca=%v retrans=%d\n",
			f.Name(), time.Since(start).Seconds(), float64(in.BytesAcked-last)*8/0.25/1e6, in.SndCwnd, in.Unacked-in.Lost-in.Sacked+in.Retrans,
			float64(in.PacingRate)*8/1e6, float64(in.DeliveryRate)*8/1e6, float64(in.RTT)/1e6, float64(in.MinRTT)/1e6, in.CAState, in.TotalRetrans)
		last = in.BytesAcked
	}
}

// Result implements Flow.
func (f *UstackFlow) Result() (Result, error) {
	r := Result{Name: f.Name(), Retransmits: -1}
	if f.done == nil {
		return r, errors.New("pathemu: flow not started")
	}
	serr := <-f.done
	f.server.wait(30 * time.Second)
	f.stack.Close()
	r.Retransmits = f.retrans
	r.MeanRTTms, r.Note = float64(f.rtt)/1e6, f.note
	return r, f.server.fill(&r, serr)
}
